# mdshortcut: one DAG from LAMMPS melt-quench datasets to the paper's tables and figures.
#   snakemake --cores 8 all                              (default config: config/config.yaml)
#   snakemake --configfile config/test.yaml --cores 2 all (CI scale)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/properties.smk"
include: "workflow/rules/train.smk"


rule all:
    input:
        all_targets(),
    default_target: True
