"""File I/O shared by every stage: atomic writes and validated extxyz structures."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.data import chemical_symbols
from ase.io import iread, write

GHOST = "X"  # the element of ghost atoms (mdshortcut.data.ghost)


class StructureError(ValueError):
    """A structure file or frame that cannot be used; the message names file and frame."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A job killed at any moment leaves either the old file or none, never a partial one. The
    temporary file does not exist yet: the writer creates it, with the permissions of the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | os.PathLike) -> None:
    """OSError naming ``path`` unless a file can be written there: checked before any work by
    creating (and removing) a file in the nearest existing folder, which also catches what
    permission bits do not show (``/proc``, a read-only mount, root's access)."""
    path = Path(path)
    if path.is_dir():
        raise OSError(f"{path}: is a folder, not a file to write")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(f"{path}: cannot be written ({folder} is not a writable folder: {exc.strerror or exc})") from None


def read_table(path: str | os.PathLike, columns: Sequence[str] = (), text: Sequence[str] = ()) -> pd.DataFrame:
    """A CSV table whose empty fields read as NaN (and only those: "NA" stays a string), with
    every one of ``columns``; ``text`` columns read as strings, an empty field as ''. Raises
    StructureError naming the file."""
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in text})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise StructureError(f"{path}: not a readable table ({exc})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise StructureError(f"{path}: missing column(s) {', '.join(missing)}")
    for c in text:
        table[c] = table[c].fillna("")
    return table


def write_csv(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically, without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def write_structures(path: str | os.PathLike, frames: Iterable[Atoms]) -> None:
    """Write frames to an extxyz file atomically (an empty list gives an empty file)."""
    frames = list(frames)
    with atomic_path(path) as tmp:
        if frames:
            write(tmp, frames, format="extxyz")
        else:
            tmp.write_text("")


def validate_frame(atoms: Atoms, where: str, elements: Iterable[str] | None = None) -> None:
    """Raise StructureError (naming ``where``) for a frame no stage can use.

    Checks: a periodic, non-degenerate cell; finite positions; known elements (or those in
    ``elements`` when given).
    """
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise StructureError(f"{where}: no periodic 3D cell")
    if abs(atoms.cell.volume) < 1e-6:
        raise StructureError(f"{where}: degenerate cell (volume {atoms.cell.volume:.3g} Å^3)")
    if not np.isfinite(atoms.positions).all():
        raise StructureError(f"{where}: non-finite positions")
    symbols = set(atoms.get_chemical_symbols())
    allowed = set(elements) if elements is not None else set(chemical_symbols[1:])
    unknown = sorted(symbols - allowed)
    if unknown:
        raise StructureError(f"{where}: element(s) {', '.join(unknown)} not in {sorted(allowed)}")


def read_structures(
    path: str | os.PathLike, elements: Iterable[str] | None = None, require_atoms: bool = False
) -> list[Atoms]:
    """Read every frame of an extxyz file and validate each (see ``validate_frame``).

    An empty file holds no frames. Errors name the file and the frame index (for a file that
    cannot be parsed, the first frame that could not be read). ``require_atoms``: an empty file
    and a frame without atoms other than ghosts (``X``) are errors too (a user's input; the
    DAG's generated samples may be empty).
    """
    path = Path(path)
    if not path.is_file():
        raise StructureError(f"{path}: no such file")
    if path.stat().st_size == 0:
        if require_atoms:
            raise StructureError(f"{path}: no structures (empty file)")
        return []
    frames = []
    try:
        for atoms in iread(path, index=":", format="extxyz"):
            frames.append(atoms)
    except Exception as exc:  # ASE raises many types for malformed files
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise StructureError(f"{path} frame {len(frames)}: not readable as extxyz ({reason})") from None
    elements = list(elements) if elements is not None else None
    for i, atoms in enumerate(frames):
        validate_frame(atoms, f"{path} frame {i}", elements)
        if require_atoms and all(s == GHOST for s in atoms.get_chemical_symbols()):
            raise StructureError(f"{path} frame {i}: no atoms" + (" (only ghosts X)" if len(atoms) else ""))
    return frames
