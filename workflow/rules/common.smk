# Shared helpers of the rules: paths, shards and the targets of `all`.
import math

from mdshortcut.config import resolve_device

DATASETS = list(config["datasets"])
RESULTS = "results"
# GPU jobs (train, sample, bench) hold the local `gpu` resource only when they will use one;
# on SLURM the profile's set-resources requests the GPU, and `device` is resolved in the job.
LOCAL_GPU = int(resolve_device(config["device"]) == "cuda")
ENV = "../../envs/mdshortcut.yaml"


wildcard_constraints:
    dataset="|".join(DATASETS),
    shard=r"\d+",


def dataset_cfg(dataset):
    return config["datasets"][dataset]


def md_shards(dataset):
    """Shard indices of the melt-quench replicas of a dataset."""
    cfg = dataset_cfg(dataset)
    return range(math.ceil(cfg["n_replicas"] / cfg["replicas_per_shard"]))


def all_targets():
    return (
        [f"{RESULTS}/datasets/{d}/structures.extxyz" for d in DATASETS]
        + PROPERTIES_TARGETS
        + MODEL_TARGETS  # trained models (train.smk)
        + [f"{RESULTS}/{f}" for f in report_files(config)]  # tables and figures (report.smk)
    )
