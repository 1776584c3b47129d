# Evaluation (paper §3.2, A.6-A.8). Unconditional datasets (a-Si): RDF/ADF of each run against the
# training set's (RMSD). Inverse design (a-SiO2): every generated structure through the properties
# function (relax, shear, rings) in shards of `properties.structures_per_shard`; errors per run.
rule reference_distributions:
    input:
        structures=f"{RESULTS}/datasets/{{dataset}}/structures.extxyz",
        code=code("mdshortcut.evaluate"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/reference.json",
    params:
        cfg=config["structure"],
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/reference.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/reference.tsv"
    conda:
        ENV
    script:
        "../scripts/reference_distributions.py"


rule structure_run:
    input:
        samples=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}.extxyz",
        reference=f"{RESULTS}/evaluation/{{dataset}}/reference.json",
        code=code("mdshortcut.evaluate"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.json",
    params:
        cfg=config["structure"],
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.tsv"
    conda:
        ENV
    script:
        "../scripts/structure_run.py"


rule evaluate_shard:
    input:
        samples=f"{RESULTS}/samples/{{dataset}}/{{run}}/ns{{n_s}}.extxyz",
        code=code("mdshortcut.evaluate"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.csv",
    params:
        potential=lambda w: dataset_cfg(w.dataset)["potential"],
        cfg=config["properties"],
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/{{run}}/ns{{n_s}}/shard{{shard}}.tsv"
    threads: 1
    conda:
        ENV
    script:
        "../scripts/evaluate_shard.py"


rule merge_evaluation:
    localrule: True
    input:
        shards=lambda w: expand(
            f"{RESULTS}/evaluation/{w.dataset}/{w.run}/ns{w.n_s}/shard{{k}}.csv", k=eval_shards(w.dataset)
        ),
        code=code("mdshortcut.pipeline.shards"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.csv",
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.merge.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/{{run}}/ns{{n_s}}.merge.tsv"
    conda:
        ENV
    script:
        "../scripts/merge_evaluation.py"


rule structure_summary:
    localrule: True
    input:
        runs=lambda w: [f"{RESULTS}/evaluation/{w.dataset}/{s}.json" for s in runs(w.dataset)],
        timings=lambda w: [f"{RESULTS}/samples/{w.dataset}/{s}.json" for s in runs(w.dataset)],
        code=code("mdshortcut.evaluate"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/structure.csv",
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/structure.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/structure.tsv"
    conda:
        ENV
    script:
        "../scripts/structure_summary.py"


rule inverse_summary:
    localrule: True
    input:
        runs=lambda w: [f"{RESULTS}/evaluation/{w.dataset}/{s}.csv" for s in runs(w.dataset)],
        timings=lambda w: [f"{RESULTS}/samples/{w.dataset}/{s}.json" for s in runs(w.dataset)],
        code=code("mdshortcut.evaluate"),
    output:
        f"{RESULTS}/evaluation/{{dataset}}/inverse.csv",
    log:
        f"{RESULTS}/logs/evaluation/{{dataset}}/inverse.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluation/{{dataset}}/inverse.tsv"
    conda:
        ENV
    script:
        "../scripts/inverse_summary.py"
