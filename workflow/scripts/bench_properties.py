"""Rule bench_properties: relaxations and labels per minute on dataset structures (mdshortcut.pipeline.bench)."""

from mdshortcut.io import write_csv
from mdshortcut.pipeline.bench import BenchConfig, properties_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.labels import PropertiesConfig

log = to_rule_log(snakemake.log[0])

datasets = dict(zip(snakemake.params.datasets, zip(snakemake.input.structures, snakemake.params.potentials)))
table = properties_benchmark(
    datasets,
    PropertiesConfig(**snakemake.params.cfg),
    BenchConfig.from_dict(snakemake.params.bench).structures,
)
write_csv(snakemake.output[0], table)
log.info(table.to_string())
