"""Rule ablation_evaluate: one recipe variant sampled and scored (mdshortcut.pipeline.ablation)."""

import json
import logging

from mdshortcut.config import resolve_device
from mdshortcut.io import write_csv
from mdshortcut.pipeline.ablation import evaluate_variant
from mdshortcut.properties.structure import StructureConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
ab = snakemake.params.ablation  # noqa: F821
rows = evaluate_variant(
    snakemake.input.model,  # noqa: F821
    snakemake.input.structures,  # noqa: F821
    json.loads(open(snakemake.input.reference).read()),  # noqa: F821
    variant=snakemake.wildcards.variant,  # noqa: F821
    n_steps=ab["n_steps"],
    flow_steps=ab["flow_steps"],
    n_samples=ab["n_samples"],
    seed=snakemake.params.seed,  # noqa: F821
    cfg=StructureConfig(**snakemake.params.structure),  # noqa: F821
    device=resolve_device(snakemake.params.device),  # noqa: F821
)
write_csv(snakemake.output[0], rows)  # noqa: F821
