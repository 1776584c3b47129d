"""Rule train: one model (process × conditioning set) on a dataset's tensors (mdshortcut.train)."""

from mdshortcut.train import train_model

train_model(
    snakemake.input.tensors,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    snakemake.params.checkpoints,  # noqa: F821
    process=snakemake.wildcards.process,  # noqa: F821
    conditioning=snakemake.wildcards.conditioning,  # noqa: F821
    config=snakemake.params.config,  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
