"""Rule fig6: a-SiO2 MAPE vs generation time (mdshortcut.pipeline.figures)."""

from pathlib import Path

from mdshortcut.pipeline.figures import write_fig6

write_fig6(snakemake.input.summary, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text("done\n")  # noqa: F821
