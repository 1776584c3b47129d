"""Rule bench_train: training samples per CPU second, fused vs straightforward (mdshortcut.pipeline.bench.train)."""

import torch

from mdshortcut.generative import ProcessConfig
from mdshortcut.io import write_csv
from mdshortcut.model import ModelConfig
from mdshortcut.pipeline.bench.common import BenchConfig
from mdshortcut.pipeline.bench.train import train_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.train import TrainingConfig

log = to_rule_log(snakemake.log[0])

bench = BenchConfig.from_dict(snakemake.params.bench)
networks = {"config": ModelConfig.from_dict(snakemake.params.model), "bench": bench.model}
torch.set_num_threads(bench.threads)
table = train_benchmark(
    [(size.name, size.n_atoms, networks[size.model]) for size in bench.sampler.sizes],
    bench,
    ProcessConfig.from_dict(snakemake.params.process),
    TrainingConfig.from_dict(snakemake.params.training),
    seed=snakemake.params.seed,
)
write_csv(snakemake.output[0], table)
log.info(table.to_string())
