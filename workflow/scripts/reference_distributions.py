"""Rule reference_distributions: averaged RDF and ADF of a training set (mdshortcut.evaluate)."""

import logging

from mdshortcut.evaluate import write_reference
from mdshortcut.properties.structure import StructureConfig

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")  # noqa: F821
write_reference(
    snakemake.input.structures,  # noqa: F821
    StructureConfig(**snakemake.params.cfg),  # noqa: F821
    snakemake.output[0],  # noqa: F821
)
