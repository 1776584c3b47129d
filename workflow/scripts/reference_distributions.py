"""Rule reference_distributions: averaged RDF and ADF of a training set (mdshortcut.evaluate)."""

from mdshortcut.evaluate import write_reference
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.structure import StructureConfig

to_rule_log(snakemake.log[0])
write_reference(
    snakemake.input.structures,
    StructureConfig(**snakemake.params.cfg),
    snakemake.output[0],
)
