"""Rule melt_quench: the replicas of one shard of a dataset (see mdshortcut.md.melt_quench)."""

from mdshortcut.md.melt_quench import run_shard
from mdshortcut.md.protocol import MeltQuench

run_shard(
    MeltQuench.from_config(snakemake.params.dataset, snakemake.params.cfg),  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    structures=snakemake.output.structures,  # noqa: F821
    failures=snakemake.output.failures,  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
)
