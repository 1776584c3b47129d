"""Rule merge_dataset: concatenate a dataset's shards and failures tables in order (mdshortcut.pipeline.shards)."""

from mdshortcut.md.failures import read_failures, require_frames
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.shards import merge_shards

log = to_rule_log(snakemake.log[0])

failures = merge_shards(snakemake.input.failures, snakemake.output.failures, read=read_failures)
frames = merge_shards(snakemake.input.structures, snakemake.output.structures, check=require_frames)
log.info(f"{len(snakemake.input.structures)} shards: {len(frames)} frames, {len(failures)} failed attempts")
