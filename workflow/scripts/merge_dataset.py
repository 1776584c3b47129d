"""Rule merge_dataset: concatenate a dataset's shards in order (see mdshortcut.md.shards)."""

from pathlib import Path

from mdshortcut.md.shards import merge_shards

n_frames, n_failures = merge_shards(
    snakemake.input.structures,  # noqa: F821
    snakemake.input.failures,  # noqa: F821
    snakemake.output.structures,  # noqa: F821
    snakemake.output.failures,  # noqa: F821
)
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(snakemake.input.structures)} shards: {n_frames} frames, {n_failures} failed attempts\n"  # noqa: F821
)
