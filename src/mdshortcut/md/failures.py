"""The failures table of a melt-quench shard (merged with ``mdshortcut.pipeline.shards``).

A shard is ``{k}.extxyz`` (its frames) plus ``{k}.failures.csv``: one row per failed attempt
of a replica, with columns ``FAILURE_FIELDS``; ``outcome`` is ``retried`` (a new seed was
tried next) or ``dropped`` (the replica exhausted its retries and contributes no frame).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields

import pandas as pd
from ase import Atoms

from mdshortcut.io import StructureError, atomic_path


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


def read_failures(path: str | os.PathLike) -> pd.DataFrame:
    """Read a failures table (columns ``FAILURE_FIELDS``); raises StructureError naming the file
    for a wrong header or row."""
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
    return pd.DataFrame([astuple(f) for f in failures], columns=list(FAILURE_FIELDS))


def require_frames(frames: Sequence[Atoms]) -> None:
    """A dataset merge's check: raise StructureError when no shard holds a single frame."""
    if not frames:
        raise StructureError("no frame in any shard: every replica failed (see the failures table)")
