"""Rule label_shard: properties of one shard of a dataset's frames (mdshortcut.properties.labels)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.labels import PropertiesConfig, label_shard

to_rule_log(snakemake.log[0])
label_shard(
    snakemake.input.structures,
    snakemake.output[0],
    potential=snakemake.params.potential,
    cfg=PropertiesConfig(**snakemake.params.cfg),
    shard=int(snakemake.wildcards.shard),
)
