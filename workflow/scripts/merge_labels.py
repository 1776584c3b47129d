"""Rule merge_labels: one labels table from the shards, one row per frame (mdshortcut.pipeline.shards)."""

from functools import partial
from pathlib import Path

from mdshortcut.io import read_structures
from mdshortcut.pipeline.shards import merge_shards
from mdshortcut.properties.labels import check_indices, read_table

n_frames = len(read_structures(snakemake.input.structures))  # noqa: F821
table = merge_shards(
    snakemake.input.shards, snakemake.output[0], read=read_table, check=partial(check_indices, n_frames=n_frames)  # noqa: F821
)
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(table)} rows, {int((~table['converged'].astype(bool)).sum())} not converged\n"
)
