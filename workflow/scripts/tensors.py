"""Rule tensors: ghost-atom padded training tensors of a dataset (mdshortcut.data.build)."""

from pathlib import Path

from mdshortcut.data.build import write_dataset_tensors

n = write_dataset_tensors(
    snakemake.input.structures,  # noqa: F821
    snakemake.input.labels[0] if snakemake.input.labels else None,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    dataset=snakemake.params.dataset,  # noqa: F821
    potential=snakemake.params.potential,  # noqa: F821
    label_names=snakemake.params.labels,  # noqa: F821
    rho_max=snakemake.params.rho_max,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
Path(snakemake.log[0]).write_text(f"{n} samples\n")  # noqa: F821
