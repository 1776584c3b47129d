"""Rule reference: a run's tables, figures, benchmarks and provenance to results/reference (mdshortcut.pipeline.provenance)."""

from pathlib import Path

from mdshortcut.pipeline.provenance import publish_reference

provenance = publish_reference(
    snakemake.input,  # noqa: F821
    results=Path(snakemake.output[0]).parent,  # noqa: F821  (the reference folder sits in the results folder)
    out=snakemake.output[0],  # noqa: F821
    config=snakemake.params.config,  # noqa: F821
    repo=snakemake.params.repo,  # noqa: F821
    metadata_dir=Path(".snakemake/metadata"),
    log_dir=Path(".snakemake/log"),
)
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(snakemake.input)} files, commit {provenance['git_commit']}, pipeline {provenance['pipeline']}\n"  # noqa: F821
)
