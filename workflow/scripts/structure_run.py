"""Rule structure_run: RDF/ADF of one unconditional run and their RMSD to the training set (mdshortcut.evaluate)."""

from mdshortcut.evaluate import structure_run
from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.properties.structure import StructureConfig

to_rule_log(snakemake.log[0])
structure_run(
    snakemake.input.samples,
    snakemake.input.reference,
    model=snakemake.wildcards.run,
    n_steps=int(snakemake.wildcards.n_s),
    cfg=StructureConfig(**snakemake.params.cfg),
    out=snakemake.output[0],
)
