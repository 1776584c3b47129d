# Sampling sweeps (paper §3.3, §3.4): every trained model at every n_s, in shards of
# `samples_per_shard` samples (one job each, on a GPU where there is one), merged per run.
# A run is `{model}` (unconditional, a-Si) or `{model}/{property}` (inverse design, a-SiO2).
from mdshortcut.generative import PROCESSES
from mdshortcut.pipeline.sweep import shard_seed, split_run


wildcard_constraints:
    run=rf"({'|'.join(PROCESSES)})-[a-z_]+(/[a-z_]+)?",
    n_s=r"\d+",


rule sampling_cells:
    localrule: True
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        code=code("mdshortcut.pipeline.sweep"),
    output:
        f"{RESULTS}/samples/{{dataset}}/cells.npy",
    params:
        cfg=lambda w: dataset_cfg(w.dataset)["sampling"],
        seed=lambda w: shard_seed(config["seed"], w.dataset, "cells"),
    log:
        f"{RESULTS}/logs/samples/{{dataset}}/cells.log",
    benchmark:
        f"{RESULTS}/benchmarks/samples/{{dataset}}/cells.tsv"
    conda:
        ENV
    script:
        "../scripts/sampling_cells.py"


rule sample:
    input:
        model=lambda w: f"{RESULTS}/models/{w.dataset}/{split_run(w.run)[0]}.pt",
        # unconditional runs use cells drawn from the data; inverse design cubic cells
        cells=lambda w: [] if split_run(w.run)[1] else f"{RESULTS}/samples/{w.dataset}/cells.npy",
        code=code("mdshortcut.pipeline.sweep"),
    output:
        structures=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.extxyz",
        timing=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.json",
    params:
        cfg=lambda w: dataset_cfg(w.dataset)["sampling"],
        # what the model file must record (the sample job refuses another dataset's model)
        potential=lambda w: dataset_cfg(w.dataset)["potential"],
        labels=lambda w: dataset_cfg(w.dataset)["labels"],
        ghosts=lambda w: dataset_cfg(w.dataset)["ghosts"],
        # the same prior noise and targets for every model and n_s (common random numbers)
        seed=lambda w: shard_seed(config["seed"], w.dataset, split_run(w.run)[1] or "", w.shard),
        device=config["device"],  # 'auto' resolves on the machine that runs the job
    log:
        f"{RESULTS}/logs/samples/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/samples/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.tsv"
    threads: config["sampling"]["threads"]
    resources:
        gpu=LOCAL_GPU,
        runtime=lambda w: network_minutes(
            w.dataset,
            int(w.n_s) * math.ceil(sampling(w.dataset).samples_per_shard / sampling(w.dataset).batch_size),
            min(sampling(w.dataset).batch_size, sampling(w.dataset).samples_per_shard),
            job_device("sample"),
        ),
        mem_mb=lambda w: network_mem_mb(w.dataset, sampling(w.dataset).batch_size),
    conda:
        ENV
    script:
        "../scripts/sample.py"


rule merge_samples:
    localrule: True
    input:
        structures=lambda w: expand(
            f"{RESULTS}/samples/{w.dataset}/{w.run}/ns{w.n_s}/shard{{k}}.extxyz",
            k=range(sampling(w.dataset).n_shards),
        ),
        timings=lambda w: expand(
            f"{RESULTS}/samples/{w.dataset}/{w.run}/ns{w.n_s}/shard{{k}}.json",
            k=range(sampling(w.dataset).n_shards),
        ),
        code=code("mdshortcut.pipeline.shards", "mdshortcut.pipeline.sweep"),
    output:
        structures=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}.extxyz",
        timing=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}.json",
    log:
        f"{RESULTS}/logs/samples/{{dataset}}/{{run}}/ns{{n_s}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/samples/{{dataset}}/{{run}}/ns{{n_s}}.tsv"
    conda:
        ENV
    script:
        "../scripts/merge_samples.py"
