"""Rule reference: a run's tables, figures, benchmarks and provenance to its reference folder, file by
file (mdshortcut.pipeline.provenance); the rule's output lists what was written."""

from pathlib import Path

from mdshortcut.io import atomic_path
from mdshortcut.pipeline.provenance import publish_reference
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])
written = publish_reference(
    snakemake.input.files,
    results=snakemake.params.results,
    out=snakemake.params.reference,
    config=snakemake.params.config,
    repo=snakemake.params.repo,
    metadata_dir=Path(".snakemake/metadata"),
    log_dir=Path(".snakemake/log"),
)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text("".join(f"{path}\n" for path in written))
log.info(f"{len(written)} files written to {snakemake.params.reference}")
