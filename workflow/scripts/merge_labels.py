"""Rule merge_labels: one labels table from the shards, one row per frame (mdshortcut.properties.labels)."""

from pathlib import Path

from mdshortcut.properties.labels import merge_label_shards

table = merge_label_shards(snakemake.input.shards, snakemake.input.structures, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(table)} rows, {int((~table['converged'].astype(bool)).sum())} not converged\n"
)
