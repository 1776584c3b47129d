"""Rule merge_labels: one labels table from the shards, one row per frame (mdshortcut.pipeline.shards)."""

from functools import partial

from mdshortcut.io import read_structures
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.shards import merge_shards
from mdshortcut.properties.labels import check_indices, read_labels

log = to_rule_log(snakemake.log[0])

n_frames = len(read_structures(snakemake.input.structures))
table = merge_shards(
    snakemake.input.shards, snakemake.output[0], read=read_labels, check=partial(check_indices, n_frames=n_frames)
)
log.info(f"{len(table)} rows, {int((~table['converged'].astype(bool)).sum())} not converged")
