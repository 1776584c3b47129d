# The MDShortcut recipe ablation (config `ablation`): every variant trains a shortcut for the same
# CPU time on one dataset (a warm start's baseline included), then samples through its shortcut
# levels and through its own flow; one table and one figure (`snakemake ablation`; not part of
# `all`, published with the reference run). Variants live in results/ablation/{variant}/.
import re

from mdshortcut.generative import PROCESSES
from mdshortcut.pipeline.tables import ablation_files


wildcard_constraints:
    variant="|".join(map(re.escape, ABLATION.get("variants", {}))) or "no-ablation",


rule ablation_train:
    input:
        tensors=lambda w: f"{RESULTS}/datasets/{ABLATION['dataset']}/tensors.pt",
        init=ablation_init,
        code=code("mdshortcut.train"),
    output:
        f"{RESULTS}/ablation/{{variant}}/models/{{process}}-{{conditioning}}.pt",
    wildcard_constraints:
        process="|".join(PROCESSES),
        conditioning="none",
    params:
        checkpoints=lambda w: f"{RESULTS}/checkpoints/ablation/{w.variant}/{w.process}-{w.conditioning}",
        config=ablation_model_config,
    log:
        f"{RESULTS}/logs/ablation/{{variant}}/{{process}}-{{conditioning}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation/{{variant}}/{{process}}-{{conditioning}}.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/train.py"


rule ablation_evaluate:
    input:
        model=f"{RESULTS}/ablation/{{variant}}/models/shortcut-none.pt",
        structures=lambda w: f"{RESULTS}/datasets/{ABLATION['dataset']}/structures.extxyz",
        reference=lambda w: f"{RESULTS}/evaluation/{ABLATION['dataset']}/reference.json",
        code=code("mdshortcut.pipeline.ablation"),
    output:
        f"{RESULTS}/ablation/{{variant}}/evaluation.csv",
    params:
        ablation=ABLATION,
        structure=config["structure"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/ablation/{{variant}}/evaluation.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation/{{variant}}/evaluation.tsv"
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/ablation_evaluate.py"


rule ablation_table:
    localrule: True
    input:
        parts=expand(f"{RESULTS}/ablation/{{variant}}/evaluation.csv", variant=ABLATION.get("variants", {})),
        structures=lambda w: f"{RESULTS}/datasets/{ABLATION['dataset']}/structures.extxyz",
    output:
        table=f"{RESULTS}/{ablation_files(config)[0]}" if ABLATION else [],
        figure=f"{RESULTS}/{ablation_files(config)[1]}" if ABLATION else [],
        ranking=f"{RESULTS}/{ablation_files(config)[2]}" if ABLATION else [],
    params:
        variants=ABLATION.get("variants", {}),
    log:
        f"{RESULTS}/logs/ablation/table.log",
    conda:
        ENV
    script:
        "../scripts/ablation_table.py"


rule ablation:
    localrule: True
    input:
        [f"{RESULTS}/{f}" for f in ablation_files(config)],
