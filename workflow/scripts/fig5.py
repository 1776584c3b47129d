"""Rule fig5: a-Si RDF/ADF RMSD vs generation time (mdshortcut.pipeline.figures)."""

from mdshortcut.pipeline.figures import write_fig5
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

write_fig5(snakemake.input.table, snakemake.output.png)
log.info("done")
