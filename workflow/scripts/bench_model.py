"""Rule bench_model: sampling-step speed, optimised vs straightforward (mdshortcut.pipeline.bench.model)."""

from mdshortcut.pipeline.bench.common import BenchConfig
from mdshortcut.pipeline.bench.model import write_model_benchmark
from mdshortcut.pipeline.rulelog import to_rule_log

to_rule_log(snakemake.log[0])

bench = BenchConfig.from_dict(snakemake.params.bench)
write_model_benchmark(
    snakemake.output[0],
    bench.model,
    bench,
    device=snakemake.params.device,
    threads=bench.threads,
    seed=snakemake.params.seed,
    log=snakemake.log[0],
)
