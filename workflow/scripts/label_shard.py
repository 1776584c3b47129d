"""Rule label_shard: properties of one shard of a dataset's frames (mdshortcut.properties.labels)."""

import logging

from mdshortcut.properties.labels import PropertiesConfig, label_shard

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
label_shard(
    snakemake.input.structures,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    potential=snakemake.params.potential,  # noqa: F821
    cfg=PropertiesConfig(**snakemake.params.cfg),  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
)
