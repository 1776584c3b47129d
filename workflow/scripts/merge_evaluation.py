"""Rule merge_evaluation: concatenate the evaluated shards of a run in order (mdshortcut.pipeline.shards)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.shards import merge_shards

log = to_rule_log(snakemake.log[0])

merged = merge_shards(snakemake.input.shards, snakemake.output[0])
log.info(f"{len(snakemake.input.shards)} shards, {len(merged)} samples")
