"""Rule fig4: target vs measured property of the generated a-SiO2 structures (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_fig4
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_fig4(snakemake.input.runs, snakemake.output.png)
log.info(f"{len(snakemake.input.runs)} runs")
