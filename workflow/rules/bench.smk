# Benchmarks (not part of `all`): `snakemake --cores 2 bench`.
# Reruns when the benchmarked code changes (the package sources are inputs).


rule bench:
    input:
        code=[
            f"{workflow.basedir}/src/mdshortcut/{name}.py"
            for name in ("bench", "model/graph", "model/egnn", "model/denoiser")
        ],
    output:
        f"{RESULTS}/bench/model.csv",
    params:
        model=config["model"],
        bench=config["bench"],
        device=config["device"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/model.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/model.tsv"
    threads: 2
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/bench_model.py"
