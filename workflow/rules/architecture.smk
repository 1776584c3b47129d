# The denoiser's architecture ablation (config `architecture`): every variant trains the baselines
# for the same CPU time on one dataset and samples them at each n_s; one table, one figure and the
# ranking of docs/design.md §8 (`snakemake architecture`; not part of `all`). Variants live in
# results/architecture/{arch}/.
import re

from mdshortcut.generative import PROCESSES
from mdshortcut.pipeline.architecture import variant_ghosts
from mdshortcut.pipeline.tables import architecture_files


wildcard_constraints:
    arch="|".join(map(re.escape, ARCHITECTURE.get("variants", {}))) or "no-architecture",


rule architecture_tensors:
    input:
        structures=lambda w: f"{RESULTS}/datasets/{ARCHITECTURE['dataset']}/structures.extxyz",
        labels=[],
        code=code("mdshortcut.data.build"),
    output:
        f"{RESULTS}/architecture/{{arch}}/tensors.pt",
    params:
        dataset=ARCHITECTURE.get("dataset"),
        potential=lambda w: dataset_cfg(ARCHITECTURE["dataset"])["potential"],
        labels=[],
        rho_max=lambda w: dataset_cfg(ARCHITECTURE["dataset"]).get("rho_max"),
        ghosts=lambda w: variant_ghosts(ARCHITECTURE["variants"][w.arch]),
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/architecture/{{arch}}/tensors.log",
    benchmark:
        f"{RESULTS}/benchmarks/architecture/{{arch}}/tensors.tsv"
    conda:
        ENV
    script:
        "../scripts/tensors.py"


rule architecture_train:
    input:
        tensors=architecture_tensors,
        init=[],  # baselines start from scratch (the train script's warm-start input)
        code=code("mdshortcut.train"),
    output:
        f"{RESULTS}/architecture/{{arch}}/models/{{process}}-{{conditioning}}.pt",
    wildcard_constraints:
        process="|".join(PROCESSES),
        conditioning="none",
    params:
        checkpoints=lambda w: f"{RESULTS}/checkpoints/architecture/{w.arch}/{w.process}-{w.conditioning}",
        config=architecture_model_config,
    log:
        f"{RESULTS}/logs/architecture/{{arch}}/{{process}}-{{conditioning}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/architecture/{{arch}}/{{process}}-{{conditioning}}.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/train.py"


rule architecture_evaluate:
    input:
        model=f"{RESULTS}/architecture/{{arch}}/models/{{process}}-none.pt",
        structures=lambda w: f"{RESULTS}/datasets/{ARCHITECTURE['dataset']}/structures.extxyz",
        reference=lambda w: f"{RESULTS}/evaluation/{ARCHITECTURE['dataset']}/reference.json",
        code=code("mdshortcut.pipeline.architecture"),
    output:
        f"{RESULTS}/architecture/{{arch}}/{{process}}.csv",
    params:
        architecture=ARCHITECTURE,
        structure=config["structure"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/architecture/{{arch}}/{{process}}-evaluation.log",
    benchmark:
        f"{RESULTS}/benchmarks/architecture/{{arch}}/{{process}}-evaluation.tsv"
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/architecture_evaluate.py"


rule architecture_probe:
    input:
        models=[f"{RESULTS}/architecture/{{arch}}/models/sde-none.pt"],
        heldout=lambda w: [f"{RESULTS}/denoising/{ARCHITECTURE['dataset']}/heldout.extxyz"],
        bayes=lambda w: [f"{RESULTS}/denoising/{ARCHITECTURE['dataset']}/bayes.npz"],
        code=code("mdshortcut.pipeline.denoising"),
    output:
        f"{RESULTS}/architecture/{{arch}}/denoising.csv",
    params:
        datasets=[ARCHITECTURE.get("dataset")],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/architecture/{{arch}}/denoising.log",
    benchmark:
        f"{RESULTS}/benchmarks/architecture/{{arch}}/denoising.tsv"
    threads: 1
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/denoising_table.py"


rule architecture_table:
    localrule: True
    input:
        parts=expand(
            f"{RESULTS}/architecture/{{arch}}/{{process}}.csv",
            arch=ARCHITECTURE.get("variants", {}),
            process=ARCHITECTURE.get("processes", []),
        ),
        structures=lambda w: f"{RESULTS}/datasets/{ARCHITECTURE['dataset']}/structures.extxyz",
        # each variant's SDE against the Bayes-optimal denoiser: the ranking's captured fraction
        probes=expand(
            f"{RESULTS}/architecture/{{arch}}/denoising.csv",
            arch=ARCHITECTURE.get("variants", {}) if "sde" in ARCHITECTURE.get("processes", []) else [],
        ),
    output:
        table=f"{RESULTS}/{architecture_files(config)[0]}" if ARCHITECTURE else [],
        figure=f"{RESULTS}/{architecture_files(config)[1]}" if ARCHITECTURE else [],
        ranking=f"{RESULTS}/{architecture_files(config)[2]}" if ARCHITECTURE else [],
    params:
        variants=ARCHITECTURE.get("variants", {}),
    log:
        f"{RESULTS}/logs/architecture/table.log",
    conda:
        ENV
    script:
        "../scripts/architecture_table.py"


rule architecture:
    localrule: True
    input:
        [f"{RESULTS}/{f}" for f in architecture_files(config)],
