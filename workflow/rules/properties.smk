# Stage 2: labels (relax, shear modulus, rings, density) in shards, then the ghost-atom tensors.
rule label_shard:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        code=code("mdshortcut.properties.labels"),
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
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/label_shard.py"


rule merge_labels:
    localrule: True
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        shards=lambda w: expand(f"{RESULTS}/datasets/{w.dataset}/labels/{{k}}.csv", k=label_shards(w.dataset)),
        code=code("mdshortcut.properties.labels", "mdshortcut.pipeline.shards"),
    output:
        f"{RESULTS}/datasets/{{dataset}}/labels.csv",
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/merge_labels.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/merge_labels.tsv"
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/merge_labels.py"


rule tensors:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        labels=lambda w: [f"{RESULTS}/datasets/{w.dataset}/labels.csv"] if w.dataset in LABELLED else [],
        code=code("mdshortcut.data.build"),
    output:
        f"{RESULTS}/datasets/{{dataset}}/tensors.pt",
    params:
        dataset=lambda w: w.dataset,
        potential=lambda w: dataset_cfg(w.dataset)["potential"],
        labels=lambda w: dataset_cfg(w.dataset)["labels"],
        rho_max=lambda w: dataset_cfg(w.dataset).get("rho_max"),  # optional without ghosts
        ghosts=lambda w: dataset_cfg(w.dataset)["ghosts"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/tensors.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/tensors.tsv"
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/tensors.py"

