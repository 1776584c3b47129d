"""Rule bench_sampler: sampling throughput of every process at each size (mdshortcut.pipeline.bench)."""

from pathlib import Path

import torch

from mdshortcut.pipeline.bench import BenchConfig, sampler_benchmark
from mdshortcut.generative import ProcessConfig
from mdshortcut.io import write_csv
from mdshortcut.model import ModelConfig

bench = BenchConfig.from_dict(snakemake.params.bench)  # noqa: F821
networks = {"config": ModelConfig.from_dict(snakemake.params.model), "bench": bench.model}  # noqa: F821
torch.set_num_threads(bench.threads)
table = sampler_benchmark(
    [(size.name, size.n_atoms, networks[size.model]) for size in bench.sampler.sizes],
    bench.sampler,
    ProcessConfig.from_dict(snakemake.params.process),  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
)
write_csv(snakemake.output[0], table)  # noqa: F821
Path(snakemake.log[0]).write_text(table.to_string() + "\n")  # noqa: F821
