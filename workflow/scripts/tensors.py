"""Rule tensors: a dataset's training tensors, ghost-padded unless ghosts: false (mdshortcut.data.build)."""

from mdshortcut.data.build import write_dataset_tensors
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

n = write_dataset_tensors(
    snakemake.input.structures,
    snakemake.input.labels[0] if snakemake.input.labels else None,
    snakemake.output[0],
    dataset=snakemake.params.dataset,
    potential=snakemake.params.potential,
    label_names=snakemake.params.labels,
    rho_max=snakemake.params.rho_max,
    seed=snakemake.params.seed,
    ghosts=snakemake.params.ghosts,
)
log.info(f"{n} samples")
