"""Rule sampling_cells: draw the sampling cells of an unconditional dataset (mdshortcut.pipeline.sweep)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.sweep import SamplingConfig, write_cells

to_rule_log(snakemake.log[0])
write_cells(
    snakemake.input.structures,
    SamplingConfig.from_config(snakemake.params.cfg),
    snakemake.params.seed,
    snakemake.output[0],
)
