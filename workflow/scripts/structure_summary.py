"""Rule structure_summary: RDF/ADF RMSD and generation time per unconditional run (mdshortcut.evaluate)."""

from mdshortcut.evaluate import structure_summary
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

summary = structure_summary(snakemake.input.runs, snakemake.input.timings, snakemake.output[0])
log.info(f"{len(summary)} runs")
