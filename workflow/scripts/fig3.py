"""Rule fig3: training vs generated property distributions (mdshortcut.pipeline.figures)."""

from pathlib import Path

from mdshortcut.pipeline.figures import write_fig3

write_fig3(snakemake.input.labels, snakemake.input.runs, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input.runs)} runs\n")  # noqa: F821
