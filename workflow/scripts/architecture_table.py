"""Rule architecture_table: the denoiser variants' rows as one table, a figure, and the ranking
that picks the default denoiser (mdshortcut.pipeline.architecture)."""

from mdshortcut.pipeline.ablation import ablation_table, write_ranking
from mdshortcut.pipeline.architecture import COLUMNS, captured_fractions, rank_architectures
from mdshortcut.pipeline.figures import architecture_figure
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])
table = ablation_table(snakemake.input.parts, snakemake.output.table, COLUMNS)
architecture_figure(table, snakemake.output.figure)
out, variants = snakemake.output, snakemake.params.variants
captured = captured_fractions(dict(zip(variants, snakemake.input.probes))) if snakemake.input.probes else {}
write_ranking(table, variants, snakemake.input.structures, out.ranking, rank_architectures, captured=captured)
