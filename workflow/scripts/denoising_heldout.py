"""Rule denoising_heldout: a dataset's held-out frames, new replicas of its melt-quench (mdshortcut.md.tethered)."""

from mdshortcut.md.tethered import write_heldout
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

n = write_heldout(
    snakemake.wildcards.dataset,
    snakemake.params.cfg,
    replicas=snakemake.params.replicas,
    frames=snakemake.params.frames,
    seed=snakemake.params.seed,
    structures=snakemake.output.structures,
    failures=snakemake.output.failures,
    log_file=snakemake.log[0],
)
log.info(f"{n} held-out frames")
