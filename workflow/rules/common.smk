# The names every rule file shares; each reads alone with this one and uses no other file's names.
# Here: the results folder, datasets, shards, runs, code inputs and the targets of `all`; also the
# input functions only one stage uses (warm starts, ablation configs, shard ranges), since
# Snakemake's linter (`snakemake --lint`, tests/test_workflow.py) allows no function beside rules.
import math

from mdshortcut.config import dataset_training, resolve_device
from mdshortcut.pipeline.sources import sources
from mdshortcut.pipeline.sweep import SamplingConfig, run_stems
from mdshortcut.pipeline.tables import probe_models, report_files

DATASETS = list(config["datasets"])
RESULTS = config["results_dir"]  # results/ by default
LABELLED = [d for d in DATASETS if config["datasets"][d]["labels"]]  # datasets with property labels
# GPU jobs (train, sample, bench) hold the local `gpu` resource only when they will use one;
# on SLURM the profile's set-resources requests the GPU, and `device` is resolved in the job.
LOCAL_GPU = int(resolve_device(config["device"]) == "cuda")
ENV = "../../envs/mdshortcut.yaml"
PROBED = probe_models(config)  # the denoising probe's models, dataset -> names (checked with the config)


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d+",


def dataset_cfg(dataset):
    return config["datasets"][dataset]


def code(*modules):
    """The package sources a rule runs (its script's modules and all they import) as its `code`
    input: Snakemake tracks scripts, not src/, so editing one of these reruns the rule. The
    logging helper every script calls (pipeline.rulelog) changes no output and is left out."""
    return sources(*modules)


def warm_start_model(w):
    """The base model a shortcut warm-starts from (training.shortcut_init: baseline), else nothing."""
    if w.process != "shortcut" or dataset_training(config, w.dataset)["shortcut_init"] != "baseline":
        return []
    return f"{RESULTS}/models/{w.dataset}/{config['process']['shortcut_base']}-{w.conditioning}.pt"


ABLATION = config.get("ablation", {})  # the recipe ablation (ablation.smk), if configured


def ablation_model_config(w):
    """train_model's config of one ablation variant's model (its shortcut or warm start's baseline)."""
    from mdshortcut.pipeline.ablation import variant_config

    return variant_config(config, dataset_training(config, ABLATION["dataset"]), w.variant, w.process)


def ablation_init(w):
    """The baseline an ablation variant's shortcut warm-starts from, if its recipe says so."""
    cfg = ablation_model_config(w)
    if w.process != "shortcut" or cfg["training"]["shortcut_init"] != "baseline":
        return []
    return f"{RESULTS}/ablation/{w.variant}/models/{cfg['process']['shortcut_base']}-none.pt"


ARCHITECTURE = config.get("architecture", {})  # the denoiser's architecture ablation, if configured


def architecture_model_config(w):
    """train_model's config of one baseline of an architecture variant."""
    from mdshortcut.pipeline.architecture import variant_config

    return variant_config(config, dataset_training(config, ARCHITECTURE["dataset"]), w.arch)


def architecture_tensors(w):
    """The training tensors of variant w.arch: the dataset's, or its own where its ghosts setting
    (the paper's unless it sets dataset.ghosts) differs from the dataset's."""
    from mdshortcut.pipeline.architecture import variant_ghosts

    dataset = ARCHITECTURE["dataset"]
    if variant_ghosts(ARCHITECTURE["variants"][w.arch]) == dataset_cfg(dataset)["ghosts"]:
        return f"{RESULTS}/datasets/{dataset}/tensors.pt"
    return f"{RESULTS}/architecture/{w.arch}/tensors.pt"


def md_shards(dataset):
    """Shard indices of the melt-quench replicas of a dataset."""
    cfg = dataset_cfg(dataset)
    return range(math.ceil(cfg["n_replicas"] / cfg["replicas_per_shard"]))


def label_shards(dataset):
    """Label shards of a dataset: enough for every frame the melt-quench can produce (replicas
    × frames); shards past the last frame (failed replicas) hold no rows."""
    cfg = dataset_cfg(dataset)
    n_frames = cfg["n_replicas"] * cfg["protocol"]["frames"]
    return range(math.ceil(n_frames / config["properties"]["structures_per_shard"]))


def sampling(dataset):
    return SamplingConfig.from_config(dataset_cfg(dataset)["sampling"])


def runs(dataset):
    """'{run}/ns{n_s}' of every sampling run of a dataset."""
    return run_stems(dataset_cfg(dataset))


def eval_shards(dataset):
    """Evaluation shards of each of a dataset's runs."""
    return range(math.ceil(sampling(dataset).n_samples / config["properties"]["structures_per_shard"]))


# SLURM limits of the network jobs (train, sample) from the config's sizes, by the device the job
# will use (``job_device``). One network evaluation of a structure costs ~ atoms × layers × hidden²
# units. CPU: one thread took 0.5-1.2e-7 s a unit in the reference run (results/reference/benchmarks.csv:
# a-Si 64 atoms and a-SiO2 <= 120 atoms, 3 × 64, trained 3000 and 1000 steps × 8 structures in
# 990-1430 s; a-Si sampled 250 steps × 64 in 205 s). GPU: one NVIDIA H200's a-Si training steps
# (3 × 64, config/gpu.yaml, batched neighbour lists: results/reference/bench/gpu.csv), SDE 29.6 ms
# at batch 32 and 43.5 ms at 128, i.e. 25 ms a call + 0.145 ms a structure (1.8e-10 s a unit),
# MDShortcut 2.5-2.8 × the SDE (``factor``: 2.8). It predicts 173 s for config/gpu.yaml's a-Si SDE
# training, which took 165 s there; sampling (no backward) costs less. Not yet measured for
# bigger networks. Limits: twice the
# estimate, at least 10 min, at most 2 days (a training that times out resumes from its checkpoint
# on the next attempt or run).
# Memory: 1 GB + 15 kB per atom × layer × hidden channel of a batch (peak RSS there 0.8-2.7 GB where
# this gives 2.5-3.8 GB).
CPU_S_PER_UNIT = 1.2e-7
GPU_S_PER_CALL, GPU_S_PER_UNIT, GPU_SHORTCUT_FACTOR = 0.025, 1.8e-10, 2.8


def max_atoms(dataset):
    initial = dataset_cfg(dataset)["initial"]
    return 8 * math.prod(initial["repeat"]) if initial["kind"] == "diamond" else initial["n_atoms"][1]


def job_device(rule):
    """'cpu' or 'cuda': where a network job of ``rule`` will run. The config's ``device``; 'auto' is
    the GPU the job is given, by the `gpu` resource a profile sets for it (1 in slurm-gpu, 0 in
    slurm), else the GPU of this machine (``LOCAL_GPU``)."""
    if config["device"] != "auto":
        return config["device"]
    asked = workflow.resource_settings.overwrite_resources.get(rule, {}).get("gpu")
    gpus = LOCAL_GPU if asked is None else getattr(asked, "value", asked)  # Snakemake 9 wraps it in a Resource
    return "cuda" if gpus else "cpu"


def network_minutes(dataset, calls, batch, device, factor=1.0):
    """SLURM runtime (min) of ``calls`` network calls on ``batch`` structures each on ``device``;
    ``factor``: the GPU's cost of a call relative to a plain one (GPU_SHORTCUT_FACTOR)."""
    units = calls * batch * max_atoms(dataset) * config["model"]["n_layers"] * config["model"]["hidden"] ** 2
    if device == "cpu":
        seconds = CPU_S_PER_UNIT * units
    else:
        seconds = factor * (GPU_S_PER_CALL * calls + GPU_S_PER_UNIT * units)
    return min(2880, max(10, math.ceil(2 * seconds / 60)))


def chain_priority(w):
    """A job's scheduling priority (Snakemake runs the higher first) on the way to a training
    (dataset, labels, tensors, the training): the estimated CPU minutes of training a model of
    its dataset, counted twice for MDShortcut, whose step is the costliest (0.71 against 0.48
    CPU s on a-Si), so that it starts first. The long a-Si chain is then not left behind
    a-SiO2's short jobs: without it, a-Si's last shard started an hour into a run, after
    a-SiO2's seven trainings (2026-12-05).
    """
    steps = dataset_training(config, w.dataset)["steps"]
    factor = 2 if w.get("process") == "shortcut" else 1
    return factor * network_minutes(w.dataset, steps, config["training"]["batch_size"], "cpu")


def network_mem_mb(dataset, batch):
    """SLURM memory (MB) of a job that evaluates the network on ``batch`` structures at once."""
    return 1000 + math.ceil(0.015 * batch * max_atoms(dataset) * config["model"]["n_layers"] * config["model"]["hidden"])


def all_targets():
    """Datasets, labels, tensors, trained models, tables and figures of the config."""
    return (
        [f"{RESULTS}/datasets/{d}/structures.extxyz" for d in DATASETS]
        + [f"{RESULTS}/datasets/{d}/labels.csv" for d in LABELLED]
        + [
            f"{RESULTS}/datasets/{d}/tensors.pt"
            for d in DATASETS
            if "rho_max" in dataset_cfg(d) or not dataset_cfg(d)["ghosts"]
        ]
        + [
            f"{RESULTS}/models/{d}/{process}-{cond}.pt"
            for d in DATASETS
            for process, conds in dataset_cfg(d)["models"].items()
            for cond in conds
        ]
        + [f"{RESULTS}/{f}" for f in report_files(config)]
    )
