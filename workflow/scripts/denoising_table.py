"""Rule denoising_table: the denoising probe's table of every probed model (mdshortcut.pipeline.denoising)."""

from mdshortcut.pipeline.denoising import denoising_table
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])

denoising_table(
    snakemake.input.models,
    heldout=dict(zip(snakemake.params.datasets, snakemake.input.heldout)),
    bayes=dict(zip(snakemake.params.datasets, snakemake.input.bayes)),
    seed=snakemake.params.seed,
    device=snakemake.params.device,
    out=snakemake.output[0],
)
