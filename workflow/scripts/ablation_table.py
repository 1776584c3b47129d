"""Rule ablation_table: the variants' rows as one table (mdshortcut.pipeline.ablation) and a figure."""

from mdshortcut.pipeline.ablation import ablation_table
from mdshortcut.pipeline.figures import ablation_figure
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])
ablation_figure(ablation_table(snakemake.input, snakemake.output.table), snakemake.output.figure)
