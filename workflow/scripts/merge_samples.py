"""Rule merge_samples: concatenate a run's shards and write its timing sidecar (mdshortcut.pipeline.sweep)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.shards import merge_shards
from mdshortcut.pipeline.sweep import write_run_timing

to_rule_log(snakemake.log[0])
frames = merge_shards(snakemake.input.structures, snakemake.output.structures)
write_run_timing(
    snakemake.wildcards.run,
    dataset=snakemake.wildcards.dataset,
    n_steps=int(snakemake.wildcards.n_s),
    timings=snakemake.input.timings,
    n_frames=len(frames),
    out=snakemake.output.timing,
)
