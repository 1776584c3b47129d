"""Rule denoising_bayes: the Bayes-optimal denoiser of held-out frames by tethered MD (mdshortcut.md.tethered)."""

from mdshortcut.md.tethered import write_bayes_file
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])

write_bayes_file(
    snakemake.input.structures,
    snakemake.output[0],
    snakemake.wildcards.dataset,
    snakemake.params.cfg,
    sigmas=snakemake.params.sigmas,
    md=snakemake.params.md,
    temperature=snakemake.params.temperature,
    seed=snakemake.params.seed,
)
