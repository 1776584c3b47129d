"""Rule bench_md: wall time of one melt-quench replica per dataset, LAMMPS vs Python (mdshortcut.pipeline.bench.md)."""

from mdshortcut.io import write_csv
from mdshortcut.md.protocol import MeltQuench
from mdshortcut.pipeline.bench.md import md_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

melt_quenches = [MeltQuench.from_config(name, cfg) for name, cfg in snakemake.params.datasets.items()]
table = md_benchmark(melt_quenches, seed=snakemake.params.seed)
write_csv(snakemake.output[0], table)
log.info(table.to_string())
