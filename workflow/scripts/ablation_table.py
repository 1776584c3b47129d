"""Rule ablation_table: the variants' rows as one table, a figure, and the ranking that picks
the default recipe (mdshortcut.pipeline.ablation)."""

from mdshortcut.pipeline.ablation import ablation_table, write_ranking
from mdshortcut.pipeline.figures import ablation_figure
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])
table = ablation_table(snakemake.input.parts, snakemake.output.table)
ablation_figure(table, snakemake.output.figure)
write_ranking(table, snakemake.params.variants, snakemake.input.structures, snakemake.output.ranking)
