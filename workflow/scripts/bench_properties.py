"""Rule bench_properties: relaxations and labels per minute on dataset structures (mdshortcut.pipeline.bench)."""

from pathlib import Path

from mdshortcut.pipeline.bench import BenchConfig, properties_benchmark
from mdshortcut.io import write_csv
from mdshortcut.properties.labels import PropertiesConfig

datasets = dict(zip(snakemake.params.datasets, zip(snakemake.input, snakemake.params.potentials)))  # noqa: F821
table = properties_benchmark(
    datasets,
    PropertiesConfig(**snakemake.params.cfg),  # noqa: F821
    BenchConfig.from_dict(snakemake.params.bench).structures,  # noqa: F821
)
write_csv(snakemake.output[0], table)  # noqa: F821
Path(snakemake.log[0]).write_text(table.to_string() + "\n")  # noqa: F821
