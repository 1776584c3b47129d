"""Rule fig6: a-SiO2 MAPE vs generation time (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_fig6
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_fig6(snakemake.input.summary, snakemake.output.png)
log.info("done")
