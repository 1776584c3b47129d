"""Rule fig4: target vs measured property of the generated a-SiO2 structures (mdshortcut.report)."""

from pathlib import Path

from mdshortcut.report import write_fig4

write_fig4(snakemake.input.runs, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input.runs)} runs\n")  # noqa: F821
