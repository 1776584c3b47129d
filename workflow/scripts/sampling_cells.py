"""Rule sampling_cells: draw the sampling cells of an unconditional dataset (mdshortcut.sweep)."""

from mdshortcut.sweep import write_cells

write_cells(
    snakemake.input.structures,  # noqa: F821
    snakemake.params.cfg,  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    snakemake.output[0],  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
)
