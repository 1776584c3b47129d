"""Shard files of a melt-quench dataset: the failures table, and merging shards in order.

A shard is ``{k}.extxyz`` (its frames) plus ``{k}.failures.csv``: one row per failed attempt
of a replica, with columns ``FAILURE_FIELDS``; ``outcome`` is ``retried`` (a new seed was
tried next) or ``dropped`` (the replica exhausted its retries and contributes no frame).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields

from mdshortcut.io import StructureError, atomic_path, read_structures, write_structures


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a replica; ``reason`` is a single line."""

    dataset: str
    replica: int
    attempt: int
    seed: int
    outcome: str
    reason: str


FAILURE_FIELDS = tuple(f.name for f in fields(Failure))


def write_failures(path: str | os.PathLike, failures: Iterable[Failure]) -> None:
    """Write the failures table atomically (a header only when there are none)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FAILURE_FIELDS)
        writer.writerows(astuple(f) for f in failures)


def read_failures(path: str | os.PathLike) -> list[Failure]:
    """Read a failures table; raises StructureError naming the file for a wrong header or row."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != FAILURE_FIELDS:
        raise StructureError(f"{path}: not a failures table (header must be {','.join(FAILURE_FIELDS)})")
    failures = []
    for line, row in enumerate(rows[1:], start=2):
        try:
            dataset, replica, attempt, seed, outcome, reason = row
            failures.append(Failure(dataset, int(replica), int(attempt), int(seed), outcome, reason))
        except ValueError as exc:
            raise StructureError(f"{path} line {line}: malformed failure row ({exc})") from None
    return failures


def merge_shards(
    structure_files: Sequence[str | os.PathLike],
    failure_files: Sequence[str | os.PathLike],
    structures_out: str | os.PathLike,
    failures_out: str | os.PathLike,
) -> tuple[int, int]:
    """Concatenate shards, in the order given, into one structures file and one failures table
    (both written atomically). Every frame is validated on the way (errors name file and
    frame). Returns (number of frames, number of failure rows).

    Raises StructureError when no shard holds a single frame (every replica failed).
    """
    frames = [atoms for path in structure_files for atoms in read_structures(path)]
    failures = [f for path in failure_files for f in read_failures(path)]
    if not frames:
        raise StructureError(
            f"{structures_out}: no frame in any of {len(structure_files)} shard(s); "
            f"{len(failures)} failed attempt(s) are listed in the shards' failures tables"
        )
    write_structures(structures_out, frames)
    write_failures(failures_out, failures)
    return len(frames), len(failures)
