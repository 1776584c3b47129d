"""Rule figure: one of the paper's figures from its input files (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_figure
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_figure(snakemake.wildcards.fig, snakemake.input, snakemake.output.png)
log.info(f"{snakemake.wildcards.fig}: {len(snakemake.input)} inputs")
