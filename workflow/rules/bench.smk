# Benchmarks (not part of `all`): `snakemake --cores 2 bench`.
# Reruns when the benchmarked code changes (the package sources are inputs).
from mdshortcut.sweep import resolve_device

BENCH_DEVICE = resolve_device(config["device"])


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
        device=BENCH_DEVICE,
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/bench/model.log",
    benchmark:
        f"{RESULTS}/benchmarks/bench/model.tsv"
    threads: 2
    resources:
        gpu=int(BENCH_DEVICE == "cuda"),
    conda:
        ENV
    script:
        "../scripts/bench_model.py"
