"""Rule table2: Table 2 (a-SiO2 inverse design) as CSV and Markdown (mdshortcut.pipeline.tables)."""

from pathlib import Path

from mdshortcut.pipeline.tables import write_table

n = write_table(2, snakemake.input.summary, snakemake.output.csv, snakemake.output.md)  # noqa: F821
Path(snakemake.log[0]).write_text(f"{n} rows\n")  # noqa: F821
