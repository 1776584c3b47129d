"""Rule merge_evaluation: concatenate the evaluated shards of a run in order (mdshortcut.evaluate)."""

from pathlib import Path

from mdshortcut.evaluate import merge_evaluations

n = merge_evaluations(snakemake.input, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(f"{len(snakemake.input)} shards, {n} samples\n")  # noqa: F821
