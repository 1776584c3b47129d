"""Rule table2: Table 2 (a-SiO2 inverse design) as CSV and Markdown (mdshortcut.pipeline.tables)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.pipeline.tables import write_table

log = to_rule_log(snakemake.log[0])

n = write_table(2, snakemake.input.summary, snakemake.output.csv, snakemake.output.md)
log.info(f"{n} rows")
