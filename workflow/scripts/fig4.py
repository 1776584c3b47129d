"""Rule fig4: target vs measured property of the generated a-SiO2 structures (mdshortcut.pipeline.figures)."""

from pathlib import Path

from mdshortcut.pipeline.figures import write_fig4

write_fig4(snakemake.input.runs, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input.runs)} runs\n")  # noqa: F821
