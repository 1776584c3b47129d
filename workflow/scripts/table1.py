"""Rule table1: Table 1 (a-Si structural accuracy) as CSV and Markdown (mdshortcut.pipeline.tables)."""

from pathlib import Path

from mdshortcut.pipeline.tables import write_table

n = write_table(1, snakemake.input.summary, snakemake.output.csv, snakemake.output.md)  # noqa: F821
Path(snakemake.log[0]).write_text(f"{n} rows\n")  # noqa: F821
