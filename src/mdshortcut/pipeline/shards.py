"""Merging a sharded stage: one helper for every rule that joins its shards (datasets and their
failures tables, labels, samples, evaluations).

Shards are separate jobs over consecutive slices of the work; the merged file holds their
contents in the order given (the rules list shards in index order), so it is the same whatever
the number of shards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from mdshortcut.io import read_structures, read_table, write_csv, write_structures


def merge_shards(
    shards: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    read: Callable[[str | os.PathLike], list | pd.DataFrame] | None = None,
    check: Callable[[list | pd.DataFrame], None] | None = None,
) -> list | pd.DataFrame:
    """Concatenate ``shards`` in the order given into ``out`` (written atomically) and return
    the merged content: a DataFrame for tables, a list of Atoms for frames.

    ``read`` reads one shard (it validates and names the file in its errors); by default
    ``read_table`` for a ``.csv`` ``out``, else ``read_structures`` (extxyz frames, each
    validated). ``check(merged)`` may raise before anything is written.
    """
    table = Path(out).suffix == ".csv"
    read = read or (read_table if table else read_structures)
    parts = [read(p) for p in shards]
    merged = pd.concat(parts, ignore_index=True) if table else [atoms for part in parts for atoms in part]
    if check is not None:
        check(merged)
    (write_csv if table else write_structures)(out, merged)
    return merged
