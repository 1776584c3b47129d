"""Rule fig5: a-Si RDF/ADF RMSD vs generation time (mdshortcut.pipeline.figures)."""

from pathlib import Path

from mdshortcut.pipeline.figures import write_fig5

write_fig5(snakemake.input.table, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text("done\n")  # noqa: F821
