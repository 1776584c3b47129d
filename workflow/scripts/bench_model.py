"""Rule bench: sampling-step speed of the denoiser, optimised vs straightforward (mdshortcut.bench)."""

from mdshortcut.bench import BenchConfig, write_model_benchmark
from mdshortcut.model import ModelConfig

write_model_benchmark(
    snakemake.output[0],  # noqa: F821
    ModelConfig.from_dict(snakemake.params.model),  # noqa: F821
    BenchConfig.from_dict(snakemake.params.bench),  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    log=snakemake.log[0],  # noqa: F821
)
