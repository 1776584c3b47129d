"""Rule merge_evaluation: concatenate the evaluated shards of a run in order (mdshortcut.pipeline.shards)."""

from pathlib import Path

from mdshortcut.pipeline.shards import merge_shards

merged = merge_shards(snakemake.input, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input)} shards, {len(merged)} samples\n")  # noqa: F821
