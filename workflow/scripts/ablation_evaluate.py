"""Rule ablation_evaluate: one recipe variant sampled and scored (mdshortcut.pipeline.ablation)."""

import json
from pathlib import Path

from mdshortcut.config import resolve_device
from mdshortcut.io import write_csv
from mdshortcut.pipeline.ablation import evaluate_variant
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.structure import StructureConfig

to_rule_log(snakemake.log[0])
ab = snakemake.params.ablation
rows = evaluate_variant(
    snakemake.input.model,
    snakemake.input.structures,
    json.loads(Path(snakemake.input.reference).read_text()),
    variant=snakemake.wildcards.variant,
    n_steps=ab["n_steps"],
    flow_steps=ab["flow_steps"],
    n_samples=ab["n_samples"],
    seed=snakemake.params.seed,
    cfg=StructureConfig(**snakemake.params.structure),
    device=resolve_device(snakemake.params.device),
)
write_csv(snakemake.output[0], rows)
