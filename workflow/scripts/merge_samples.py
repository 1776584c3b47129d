"""Rule merge_samples: concatenate a run's shards and write its timing sidecar (mdshortcut.pipeline.sweep)."""

import logging

from mdshortcut.pipeline.shards import merge_shards
from mdshortcut.pipeline.sweep import write_run_timing

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
frames = merge_shards(snakemake.input.structures, snakemake.output.structures)  # noqa: F821
write_run_timing(
    snakemake.wildcards.run,  # noqa: F821
    dataset=snakemake.wildcards.dataset,  # noqa: F821
    n_steps=int(snakemake.wildcards.n_s),  # noqa: F821
    timings=snakemake.input.timings,  # noqa: F821
    n_frames=len(frames),
    out=snakemake.output.timing,  # noqa: F821
)
