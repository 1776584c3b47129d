"""Rule bench_model: sampling-step speed of the denoiser, optimised vs straightforward (mdshortcut.pipeline.bench)."""

from mdshortcut.pipeline.bench import BenchConfig, write_model_benchmark

bench = BenchConfig.from_dict(snakemake.params.bench)  # noqa: F821
write_model_benchmark(
    snakemake.output[0],  # noqa: F821
    bench.model,
    bench,
    device=snakemake.params.device,  # noqa: F821
    threads=bench.threads,
    seed=snakemake.params.seed,  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
)
