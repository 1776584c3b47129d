"""Rule merge_samples: concatenate a run's shards and write its timing sidecar (mdshortcut.sweep)."""

import logging

from mdshortcut.sweep import merge_shards

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
merge_shards(
    snakemake.wildcards.run,  # noqa: F821
    dataset=snakemake.wildcards.dataset,  # noqa: F821
    n_steps=int(snakemake.wildcards.n_s),  # noqa: F821
    shards=snakemake.input.structures,  # noqa: F821
    timings=snakemake.input.timings,  # noqa: F821
    out_structures=snakemake.output.structures,  # noqa: F821
    out_timing=snakemake.output.timing,  # noqa: F821
)
