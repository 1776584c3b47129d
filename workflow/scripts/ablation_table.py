"""Rule ablation_table: the variants' rows as one table and a figure (mdshortcut.pipeline.ablation)."""

from mdshortcut.pipeline.ablation import ablation_figure, ablation_table

ablation_figure(ablation_table(snakemake.input, snakemake.output.table), snakemake.output.figure)  # noqa: F821
