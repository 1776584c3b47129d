"""Rule evaluate_shard: relax, shear and rings of one shard of generated structures (mdshortcut.evaluate)."""

import logging

from mdshortcut.evaluate import evaluate_shard
from mdshortcut.properties.labels import PropertiesConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
evaluate_shard(
    snakemake.input.samples,  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    potential=snakemake.params.potential,  # noqa: F821
    cfg=PropertiesConfig(**snakemake.params.cfg),  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
)
