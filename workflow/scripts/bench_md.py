"""Rule bench_md: wall time of one melt-quench replica per dataset, LAMMPS vs Python (mdshortcut.pipeline.bench)."""

from pathlib import Path

from mdshortcut.pipeline.bench import md_benchmark
from mdshortcut.io import write_csv
from mdshortcut.md.protocol import MeltQuench

melt_quenches = [MeltQuench.from_config(name, cfg) for name, cfg in snakemake.params.datasets.items()]  # noqa: F821
table = md_benchmark(melt_quenches, seed=snakemake.params.seed)  # noqa: F821
write_csv(snakemake.output[0], table)  # noqa: F821
Path(snakemake.log[0]).write_text(table.to_string() + "\n")  # noqa: F821
