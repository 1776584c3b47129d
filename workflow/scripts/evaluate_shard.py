"""Rule evaluate_shard: relax, shear and rings of one shard of generated structures (mdshortcut.evaluate)."""

from mdshortcut.evaluate import evaluate_shard
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.labels import PropertiesConfig

to_rule_log(snakemake.log[0])
evaluate_shard(
    snakemake.input.samples,
    shard=int(snakemake.wildcards.shard),
    potential=snakemake.params.potential,
    cfg=PropertiesConfig(**snakemake.params.cfg),
    out=snakemake.output[0],
)
