"""Rule melt_quench: the replicas of one shard of a dataset (see mdshortcut.md.melt_quench)."""

from mdshortcut.md.melt_quench import run_shard
from mdshortcut.md.protocol import MeltQuench
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])

run_shard(
    MeltQuench.from_config(snakemake.params.dataset, snakemake.params.cfg),
    seed=snakemake.params.seed,
    shard=int(snakemake.wildcards.shard),
    structures=snakemake.output.structures,
    failures=snakemake.output.failures,
    log=snakemake.log[0],
)
