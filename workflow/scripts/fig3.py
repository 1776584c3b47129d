"""Rule fig3: training vs generated property distributions (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_fig3
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_fig3(snakemake.input.labels, snakemake.input.runs, snakemake.output.png)
log.info(f"{len(snakemake.input.runs)} runs")
