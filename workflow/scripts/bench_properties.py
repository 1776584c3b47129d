"""Rule bench_properties: relaxations and labels per minute (mdshortcut.pipeline.bench.properties)."""

from mdshortcut.io import write_csv
from mdshortcut.pipeline.bench.properties import properties_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.labels import PropertiesConfig

log = to_rule_log(snakemake.log[0])

datasets = dict(zip(snakemake.params.datasets, zip(snakemake.input.structures, snakemake.params.potentials)))
table = properties_benchmark(
    datasets,
    PropertiesConfig(**snakemake.params.cfg),
    snakemake.params.bench["structures"],
)
write_csv(snakemake.output[0], table)
log.info(table.to_string())
