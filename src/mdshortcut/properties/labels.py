"""One row of properties per structure: the labels of the training data and the measurements
of generated samples, computed the same way.

Row: one column per property of ``catalogue.PROPERTIES`` (shear_modulus GPa, ring_size Si atoms
per ring, density g/cm³), ``converged``, ``reason``. Ghost atoms are removed first; the structure
is relaxed (variable cell) and every property is measured on the relaxed structure by its
measuring function. A structure whose relaxation
does not converge, or on which LAMMPS fails, keeps its row with NaN properties, ``converged``
False and the reason. When only a strained re-relaxation fails, the shear modulus alone is NaN
(``converged`` stays True: it refers to the relaxation) and ``reason`` says why; likewise a
network without rings has a NaN ring size.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ase import Atoms
from vesin import NeighborList

from mdshortcut.data.ghost import GHOST, remove_ghosts
from mdshortcut.io import StructureError, read_structures, read_table, write_csv
from mdshortcut.md.potentials import get_potential
from mdshortcut.properties.catalogue import PROPERTIES
from mdshortcut.properties.elastic import relax

log = logging.getLogger(__name__)

COLUMNS = ["index", *PROPERTIES, "converged", "reason"]
MIN_DISTANCE = 0.5  # Å; closer atoms overlap (far below any bond, Si-O 1.6 Å)


@dataclass(frozen=True)
class PropertiesConfig:
    """The ``properties`` config section.

    fmax (eV/Å) and max_steps: the variable-cell relaxation; shear_strain: engineering
    strain of the ± shears; strain_fmax (eV/Å): re-relaxation of the strained states (tight,
    see ``mdshortcut.properties.elastic``), with at most max_steps each;
    structures_per_shard: structures per DAG job.
    """

    fmax: float = 0.05
    max_steps: int = 1500
    shear_strain: float = 0.02
    structures_per_shard: int = 32
    strain_fmax: float = 1e-3


def check_overlaps(atoms: Atoms, where: str, min_distance: float = MIN_DISTANCE) -> None:
    """Raise StructureError naming ``where`` and the atoms if two (real) atoms are closer
    than ``min_distance`` (Å), periodic images included."""
    atoms = remove_ghosts(atoms)
    if len(atoms) == 0:
        return
    nl = NeighborList(cutoff=min_distance, full_list=False)
    i, j, d = nl.compute(atoms.positions, atoms.cell.array, True, quantities="ijd")
    if len(d):
        k = int(np.argmin(d))
        raise StructureError(f"{where}: atoms {i[k]} and {j[k]} overlap ({d[k]:.3f} Å apart, minimum {min_distance} Å)")


def read_checked(path: str | os.PathLike, potential: str) -> list[Atoms]:
    """Frames of an extxyz file that ``potential`` can relax: at least one, periodic cells, atoms
    of the potential's elements (ghosts allowed), no overlapping atoms. Errors name the file and frame."""
    elements = [*get_potential(potential).elements, GHOST]
    frames = read_structures(path, elements, require_atoms=True)
    for k, atoms in enumerate(frames):
        check_overlaps(atoms, f"{path} frame {k}")
    return frames


def _failed(reason: str) -> dict:
    return {**{p: math.nan for p in PROPERTIES}, "converged": False, "reason": reason}


def label_structure(atoms: Atoms, potential: str, cfg: PropertiesConfig) -> dict:
    """Properties of one structure (module doc); never raises for a failed relaxation."""
    atoms = remove_ghosts(atoms)
    try:
        relaxed = relax(atoms, potential, cfg.fmax, cfg.max_steps)
        if not relaxed.converged:
            return _failed(f"relaxation {relaxed.reason}")
        # The relaxed structure stands: a property that cannot be measured costs only its value.
        measured = {name: p.measure(relaxed.atoms, potential, cfg) for name, p in PROPERTIES.items()}
    except Exception as exc:  # LAMMPS reports lost atoms etc. as plain Exceptions
        return _failed(f"LAMMPS failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    reasons = [why for _, why in measured.values() if why]
    return {**{name: value for name, (value, _) in measured.items()}, "converged": True, "reason": "; ".join(reasons)}


def label_frames(frames: Sequence[Atoms], potential: str, cfg: PropertiesConfig, first_index: int = 0) -> pd.DataFrame:
    """One row per frame (columns ``COLUMNS``), ``index`` counting from ``first_index``."""
    rows = []
    for k, atoms in enumerate(frames):
        row = {"index": first_index + k, **label_structure(atoms, potential, cfg)}
        values = ", ".join(f"{name} {row[name]:.4g} {p.unit}" for name, p in PROPERTIES.items())
        log.info("structure %d: %s, converged %s %s", row["index"], values, row["converged"], row["reason"])
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """A labels table (``COLUMNS``); raises StructureError naming the file if malformed."""
    return read_table(path, COLUMNS, text=("reason",))


def label_shard(
    structures: str | os.PathLike, out: str | os.PathLike, potential: str, cfg: PropertiesConfig, shard: int
) -> int:
    """Label frames [shard·S, (shard+1)·S) of ``structures`` (S = cfg.structures_per_shard)
    into the CSV ``out``; a shard past the last frame writes an empty table. Returns the row count."""
    frames = read_checked(structures, potential)
    start = shard * cfg.structures_per_shard
    table = label_frames(frames[start : start + cfg.structures_per_shard], potential, cfg, first_index=start)
    write_csv(out, table)
    return len(table)


def check_indices(table: pd.DataFrame, n_frames: int) -> None:
    """A labels merge's check: one row per frame, in frame order; raises StructureError."""
    if table["index"].tolist() != list(range(n_frames)):
        seen = set(table["index"].tolist())
        missing = sorted(set(range(n_frames)) - seen)[:5]
        raise StructureError(
            f"{n_frames} frames but labels with missing indices {missing}, "
            f"{len(table) - len(seen)} duplicated, indices beyond {n_frames - 1} or out of order"
        )
