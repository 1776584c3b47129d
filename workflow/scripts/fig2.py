"""Rule fig2: RDF and ADF of every a-Si run against the training set (mdshortcut.pipeline.figures)."""

from pathlib import Path

from mdshortcut.pipeline.figures import write_fig2

write_fig2(snakemake.input.reference, snakemake.input.runs, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input.runs)} runs\n")  # noqa: F821
