"""Rule sample: generate and time one shard of a sampling run (mdshortcut.pipeline.sweep)."""

import logging
import sys

from mdshortcut.pipeline.sweep import SamplingConfig, sample_shard

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821  (progress bar and errors into the log)
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
sample_shard(
    snakemake.input.model,  # noqa: F821
    run=snakemake.wildcards.run,  # noqa: F821
    n_steps=int(snakemake.wildcards.n_s),  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    cfg=SamplingConfig.from_config(snakemake.params.cfg),  # noqa: F821
    cells=snakemake.input.cells or None,  # noqa: F821
    seed=snakemake.params.seed,  # noqa: F821
    device=snakemake.params.device,  # noqa: F821
    out_structures=snakemake.output.structures,  # noqa: F821
    out_timing=snakemake.output.timing,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    progress=True,
)
