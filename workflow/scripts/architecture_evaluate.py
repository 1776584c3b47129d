"""Rule architecture_evaluate: one baseline of a denoiser variant sampled and scored
(mdshortcut.pipeline.architecture)."""

import json
from pathlib import Path

from mdshortcut.config import resolve_device
from mdshortcut.io import write_csv
from mdshortcut.pipeline.architecture import evaluate_variant
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.structure import StructureConfig

to_rule_log(snakemake.log[0])
arch = snakemake.params.architecture
rows = evaluate_variant(
    snakemake.input.model,
    snakemake.input.structures,
    json.loads(Path(snakemake.input.reference).read_text()),
    variant=snakemake.wildcards.arch,
    process=snakemake.wildcards.process,
    n_steps=arch["n_steps"],
    n_samples=arch["n_samples"],
    seed=snakemake.params.seed,
    cfg=StructureConfig(**snakemake.params.structure),
    device=resolve_device(snakemake.params.device),
)
write_csv(snakemake.output[0], rows)
