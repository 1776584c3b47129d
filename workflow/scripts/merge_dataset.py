"""Rule merge_dataset: concatenate a dataset's shards and failures tables in order (mdshortcut.pipeline.shards)."""

from pathlib import Path

from mdshortcut.md.failures import read_failures, require_frames
from mdshortcut.pipeline.shards import merge_shards

failures = merge_shards(snakemake.input.failures, snakemake.output.failures, read=read_failures)  # noqa: F821
frames = merge_shards(snakemake.input.structures, snakemake.output.structures, check=require_frames)  # noqa: F821
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(snakemake.input.structures)} shards: {len(frames)} frames, {len(failures)} failed attempts\n"  # noqa: F821
)
