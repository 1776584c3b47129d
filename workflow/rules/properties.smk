# Stage 2: labels (relax, shear modulus, rings, density) in shards, then the ghost-atom tensors.
from pathlib import Path

import mdshortcut.properties

# The properties code as input: editing it re-labels (Snakemake tracks scripts, not src/).
PROPERTIES_CODE = sorted(str(p) for p in Path(mdshortcut.properties.__file__).parent.glob("*.py"))


# Label shards of each dataset: enough for every frame the melt-quench can produce (replicas ×
# frames); shards past the last frame (failed replicas) hold no rows.
LABEL_SHARDS = {
    d: range(
        math.ceil(
            dataset_cfg(d)["n_replicas"] * dataset_cfg(d)["protocol"]["frames"]
            / config["properties"]["structures_per_shard"]
        )
    )
    for d in DATASETS
}
LABELLED = [d for d in DATASETS if dataset_cfg(d)["labels"]]
# Targets of `all`: labels.csv of every labelled dataset, tensors.pt of every dataset with a rho_max.
PROPERTIES_TARGETS = [f"{RESULTS}/datasets/{d}/labels.csv" for d in LABELLED] + [
    f"{RESULTS}/datasets/{d}/tensors.pt" for d in DATASETS if "rho_max" in dataset_cfg(d)
]


rule label_shard:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        code=PROPERTIES_CODE,
    output:
        f"{RESULTS}/datasets/{{dataset}}/labels/{{shard}}.csv",
    params:
        potential=lambda w: dataset_cfg(w.dataset)["potential"],
        cfg=config["properties"],
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/labels{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/labels{{shard}}.tsv"
    threads: 1
    conda:
        ENV
    script:
        "../scripts/label_shard.py"


rule merge_labels:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        shards=lambda w: expand(f"{RESULTS}/datasets/{w.dataset}/labels/{{k}}.csv", k=LABEL_SHARDS[w.dataset]),
    output:
        f"{RESULTS}/datasets/{{dataset}}/labels.csv",
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/merge_labels.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/merge_labels.tsv"
    conda:
        ENV
    script:
        "../scripts/merge_labels.py"


rule tensors:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        labels=lambda w: [f"{RESULTS}/datasets/{w.dataset}/labels.csv"] if w.dataset in LABELLED else [],
    output:
        f"{RESULTS}/datasets/{{dataset}}/tensors.pt",
    params:
        dataset=lambda w: w.dataset,
        potential=lambda w: dataset_cfg(w.dataset)["potential"],
        labels=lambda w: dataset_cfg(w.dataset)["labels"],
        rho_max=lambda w: dataset_cfg(w.dataset)["rho_max"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/tensors.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/tensors.tsv"
    conda:
        ENV
    script:
        "../scripts/tensors.py"

