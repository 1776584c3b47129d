# Shared helpers of the rules: paths, shards and the targets of `all`.
import math

DATASETS = list(config["datasets"])
RESULTS = "results"
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
