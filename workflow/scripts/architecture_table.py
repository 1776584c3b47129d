"""Rule architecture_table: the denoiser variants' rows as one table, a figure, and the ranking
that picks the default denoiser (mdshortcut.pipeline.architecture)."""

from mdshortcut.pipeline.architecture import architecture_table, write_ranking
from mdshortcut.pipeline.figures import architecture_figure
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])
table = architecture_table(snakemake.input.parts, snakemake.output.table)
architecture_figure(table, snakemake.output.figure)
write_ranking(table, snakemake.params.variants, snakemake.input.structures, snakemake.output.ranking)
