# Benchmarks (not part of `all`): `snakemake --cores 2 bench` writes results/bench/*.csv.
# Each holds the `bench` resource, capped at 1 by the default profile, so that none runs beside
# another; torch uses bench.threads. Each reruns when the code it times changes: its code= input is
# its own module under pipeline/bench/ and what that imports, not the other benchmarks'.
from mdshortcut.md.protocol import md_section

BENCH = ["model", "train", "sampler", "md", "properties"]


rule bench:
    localrule: True
    input:
        expand(f"{RESULTS}/bench/{{name}}.csv", name=BENCH),


rule bench_model:
    input:
        code=code("mdshortcut.pipeline.bench.model"),
    output:
        f"{RESULTS}/bench/model.csv",
    params:
        bench=config["bench"],
        device=config["device"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/model.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/model.tsv"
    threads: config["bench"]["threads"]
    resources:
        gpu=LOCAL_GPU,
        bench=1,
    conda:
        ENV
    script:
        "../scripts/bench_model.py"


rule bench_train:
    input:
        code=code("mdshortcut.pipeline.bench.train"),
    output:
        f"{RESULTS}/bench/train.csv",
    params:
        bench=config["bench"],
        model=config["model"],
        process=config["process"],
        training=config["training"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/train.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/train.tsv"
    threads: config["bench"]["threads"]
    resources:
        bench=1,
    conda:
        ENV
    script:
        "../scripts/bench_train.py"


rule bench_sampler:
    input:
        code=code("mdshortcut.pipeline.bench.sampler"),
    output:
        f"{RESULTS}/bench/sampler.csv",
    params:
        bench=config["bench"],
        model=config["model"],
        process=config["process"],
        device=config["device"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/sampler.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/sampler.tsv"
    threads: config["bench"]["threads"]
    resources:
        gpu=LOCAL_GPU,
        bench=1,
    conda:
        ENV
    script:
        "../scripts/bench_sampler.py"


rule bench_md:
    input:
        code=code("mdshortcut.pipeline.bench.md"),
    output:
        f"{RESULTS}/bench/md.csv",
    params:
        datasets={d: md_section(dataset_cfg(d)) for d in DATASETS},
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/md.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/md.tsv"
    threads: config["bench"]["threads"]
    resources:
        bench=1,
    conda:
        ENV
    script:
        "../scripts/bench_md.py"


rule bench_properties:
    input:
        structures=[f"{RESULTS}/datasets/{d}/structures.extxyz" for d in LABELLED],
        code=code("mdshortcut.pipeline.bench.properties"),
    output:
        f"{RESULTS}/bench/properties.csv",
    params:
        datasets=LABELLED,
        potentials=[dataset_cfg(d)["potential"] for d in LABELLED],
        cfg=config["properties"],
        bench=config["bench"],
    log:
        f"{RESULTS}/logs/bench/properties.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/properties.tsv"
    threads: config["bench"]["threads"]
    resources:
        bench=1,
    conda:
        ENV
    script:
        "../scripts/bench_properties.py"
