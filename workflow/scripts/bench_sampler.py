"""Rule bench_sampler: sampling throughput of every process at each size (mdshortcut.pipeline.bench.sampler)."""

import torch

from mdshortcut.generative import ProcessConfig
from mdshortcut.io import write_csv
from mdshortcut.model import ModelConfig
from mdshortcut.pipeline.bench.common import BenchConfig
from mdshortcut.pipeline.bench.sampler import sampler_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

bench = BenchConfig.from_dict(snakemake.params.bench)
networks = {"config": ModelConfig.from_dict(snakemake.params.model), "bench": bench.model}
torch.set_num_threads(bench.threads)
table = sampler_benchmark(
    [(size.name, size.n_atoms, networks[size.model]) for size in bench.sampler.sizes],
    bench.sampler,
    ProcessConfig.from_dict(snakemake.params.process),
    device=snakemake.params.device,
    seed=snakemake.params.seed,
)
write_csv(snakemake.output[0], table)
log.info(table.to_string())
