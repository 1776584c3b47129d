"""Rule structure_run: RDF/ADF of one unconditional run and their RMSD to the training set (mdshortcut.evaluate)."""

import logging

from mdshortcut.evaluate import structure_run
from mdshortcut.properties.structure import StructureConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
structure_run(
    snakemake.input.samples,  # noqa: F821
    snakemake.input.reference,  # noqa: F821
    model=snakemake.wildcards.run,  # noqa: F821
    n_steps=int(snakemake.wildcards.n_s),  # noqa: F821
    cfg=StructureConfig(**snakemake.params.cfg),  # noqa: F821
    out=snakemake.output[0],  # noqa: F821
)
