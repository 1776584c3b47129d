"""Rule structure_summary: RDF/ADF RMSD and generation time per unconditional run (mdshortcut.evaluate)."""

from pathlib import Path

from mdshortcut.evaluate import structure_summary

summary = structure_summary(snakemake.input.runs, snakemake.input.timings, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(summary)} runs\n")  # noqa: F821
