"""Rule sample: generate and time one shard of a sampling run (mdshortcut.pipeline.sweep)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.sweep import SamplingConfig, sample_shard

to_rule_log(snakemake.log[0])

sample_shard(
    snakemake.input.model,
    run=snakemake.wildcards.run,
    n_steps=int(snakemake.wildcards.n_s),
    shard=int(snakemake.wildcards.shard),
    cfg=SamplingConfig.from_config(snakemake.params.cfg),
    cells=snakemake.input.cells or None,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    out_structures=snakemake.output.structures,
    out_timing=snakemake.output.timing,
    dataset=snakemake.wildcards.dataset,
    potential=snakemake.params.potential,
    labels=snakemake.params.labels,
    ghosts=snakemake.params.ghosts,
    threads=snakemake.threads,
    progress=True,
)
