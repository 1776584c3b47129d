"""Rule sampling_cells: draw the sampling cells of an unconditional dataset (mdshortcut.pipeline.sweep)."""

import logging

from mdshortcut.pipeline.sweep import SamplingConfig, write_cells

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
write_cells(
    snakemake.input.structures,  # noqa: F821
    SamplingConfig.from_config(snakemake.params.cfg),  # noqa: F821
    snakemake.params.seed,  # noqa: F821
    snakemake.output[0],  # noqa: F821
)
