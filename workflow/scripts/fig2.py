"""Rule fig2: RDF and ADF of every a-Si run against the training set (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_fig2
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_fig2(snakemake.input.reference, snakemake.input.runs, snakemake.output.png)
log.info(f"{len(snakemake.input.runs)} runs")
