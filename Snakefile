# mdshortcut: one DAG from LAMMPS melt-quench datasets to the paper's tables and figures.
#   snakemake --cores 8 all                              (default config: config/config.yaml)
#   snakemake --configfile config/test.yaml --cores 2 all (CI scale)
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from mdshortcut.config import ConfigError, yaml_problem
from mdshortcut.pipeline.validation import validate_config

min_version("9.0")

# Snakemake runs a rule's script through the shell as `{sys.executable} {script}` without quoting
# the interpreter (snakemake/script/__init__.py, 9.x): with a .venv under a path holding a space,
# every job exited 127 ("bash: /path/with: No such file"). Quoted here, once, for every job.
sys.executable = shlex.quote(sys.executable)

DEFAULT_CONFIG = f"{workflow.basedir}/config/config.yaml"

# The default scale, unless the command line names its own config file(s): a --configfile
# replaces this one instead of being merged into it (keys of the default never leak into a run).
# A config error ends the run before any job, in one line naming the file and the line (YAML)
# or the key (schema): sys.exit, because Snakemake adds a traceback line to a WorkflowError.
# (Snakemake itself reads a --configfile, before this file: its YAML errors name no line.)
if not workflow.overwrite_configfiles:
    try:

        configfile: DEFAULT_CONFIG

    except WorkflowError:
        sys.exit(f"invalid config: {yaml_problem(DEFAULT_CONFIG) or DEFAULT_CONFIG}")


try:
    validate_config(config, f"{workflow.basedir}/config/schema.yaml", workflow.overwrite_configfiles or [DEFAULT_CONFIG])
except ConfigError as exc:
    sys.exit(str(exc))


# Under the slurm executor, a job that no node of its partition can ever run (more CPUs, memory
# or GPUs than any node has, a runtime over MaxTime) ends the run before the first submission,
# one line per rule, instead of waiting in the queue for ever (mdshortcut.pipeline.partition_fit).
onstart:
    if workflow.executor_plugin.name == "slurm":
        from mdshortcut.pipeline.partition_fit import PartitionError, read_nodes, unfit_jobs

        jobs = [j for j in workflow.dag.needrun_jobs() if not j.is_local]
        try:
            problems = unfit_jobs(
                [(j.rule.name, j.wildcards_dict, j.threads, dict(j.resources.items())) for j in jobs], *read_nodes()
            )
        except PartitionError as exc:
            problems = [f"SLURM: cannot check the jobs against the partitions: {exc}"]
        if problems:
            sys.exit("\n".join(problems))


include: "workflow/rules/common.smk"
include: "workflow/rules/dataset.smk"
include: "workflow/rules/properties.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/architecture.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/denoising.smk"


rule all:
    localrule: True
    input:
        all_targets(),
    default_target: True
