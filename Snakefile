# mdshortcut: one DAG from LAMMPS melt-quench datasets to the paper's tables and figures.
#   snakemake --cores 8 all                              (default config: config/config.yaml)
#   snakemake --configfile config/test.yaml --cores 2 all (CI scale)
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from mdshortcut.config import check_config, describe_validation_error

min_version("9.0")


# The default scale, unless the command line names its own config file(s): a --configfile
# replaces this one instead of being merged into it (keys of the default never leak into a run).
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


try:
    validate(config, "config/schema.yaml")
except WorkflowError as exc:
    raise WorkflowError(describe_validation_error(exc)) from None
check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/properties.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/bench.smk"


rule all:
    input:
        all_targets(),
    default_target: True
