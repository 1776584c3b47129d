# Stage 1: amorphous datasets by LAMMPS melt-quench, one job per shard of replicas.
from mdshortcut.md.protocol import md_section


rule melt_quench:
    input:
        code=code("mdshortcut.md.melt_quench", "mdshortcut.md.protocol"),
    output:
        structures=f"{RESULTS}/datasets/{{dataset}}/shards/{{shard}}.extxyz",
        failures=f"{RESULTS}/datasets/{{dataset}}/shards/{{shard}}.failures.csv",
    params:
        dataset=lambda w: w.dataset,
        cfg=lambda w: md_section(dataset_cfg(w.dataset)),
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/shard{{shard}}.tsv"
    threads: 1
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/melt_quench.py"


rule merge_dataset:
    localrule: True
    input:
        structures=lambda w: expand(
            f"{RESULTS}/datasets/{w.dataset}/shards/{{k}}.extxyz", k=md_shards(w.dataset)
        ),
        failures=lambda w: expand(
            f"{RESULTS}/datasets/{w.dataset}/shards/{{k}}.failures.csv",
            k=md_shards(w.dataset),
        ),
        code=code("mdshortcut.md.failures", "mdshortcut.pipeline.shards"),
    output:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        failures=f"{RESULTS}/datasets/{{dataset}}/failures.csv",
    log:
        f"{RESULTS}/logs/datasets/{{dataset}}/merge.log",
    benchmark:
        f"{RESULTS}/benchmarks/datasets/{{dataset}}/merge.tsv"
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/merge_dataset.py"
