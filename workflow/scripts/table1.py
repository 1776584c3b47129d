"""Rule table1: Table 1 (a-Si structural accuracy) as CSV and Markdown (mdshortcut.pipeline.tables)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.tables import write_table

log = to_rule_log(snakemake.log[0])

n = write_table(1, snakemake.input.summary, snakemake.output.csv, snakemake.output.md)
log.info(f"{n} rows")
