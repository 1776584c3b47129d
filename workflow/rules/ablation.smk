# The MDShortcut recipe ablation (config `ablation`): every variant trains a shortcut for the same
# CPU time on one dataset (a warm start's baseline included), then samples through its shortcut
# levels and through its own flow; one table and one figure (`snakemake ablation`; not part of
# `all`, published with the reference run). Variants live in their own folder.
import re

from mdshortcut.config import dataset_training
from mdshortcut.pipeline.ablation import variant_config
from mdshortcut.report import ablation_files
from mdshortcut.train import training_sources

ABLATION_CODE = [str(path) for path in training_sources()] + [
    f"{workflow.basedir}/src/mdshortcut/pipeline/ablation.py",
    f"{workflow.basedir}/src/mdshortcut/evaluate.py",
    f"{workflow.basedir}/src/mdshortcut/sample.py",
]
ABLATION_VARIANTS = list(config["ablation"]["variants"]) if "ablation" in config else []


wildcard_constraints:
    variant="|".join(map(re.escape, ABLATION_VARIANTS)) or "no-ablation",


def ablation_cfg(w):
    """train_model's config of one variant's model (the shortcut or its warm start's baseline)."""
    training = dataset_training(config, config["ablation"]["dataset"])
    return variant_config(config, training, w.variant, w.process)


def ablation_init(w):
    """The baseline a variant's shortcut warm-starts from, if its recipe says so."""
    cfg = ablation_cfg(w)
    if w.process != "shortcut" or cfg["training"]["shortcut_init"] != "baseline":
        return []
    return f"{RESULTS}/ablation/{w.variant}/models/{cfg['process']['shortcut_base']}-none.pt"


rule ablation_train:
    input:
        tensors=lambda w: f"{RESULTS}/datasets/{config['ablation']['dataset']}/tensors.pt",
        init=ablation_init,
        code=ABLATION_CODE,
    output:
        f"{RESULTS}/ablation/{{variant}}/models/{{process}}-{{conditioning}}.pt",
    params:
        checkpoints=lambda w: f"{RESULTS}/checkpoints/ablation/{w.variant}/{w.process}-{w.conditioning}",
        config=ablation_cfg,
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
        structures=lambda w: f"{RESULTS}/datasets/{config['ablation']['dataset']}/structures.extxyz",
        reference=lambda w: f"{RESULTS}/evaluation/{config['ablation']['dataset']}/reference.json",
        code=ABLATION_CODE,
    output:
        f"{RESULTS}/ablation/{{variant}}/evaluation.csv",
    params:
        ablation=lambda w: config["ablation"],
        structure=config["structure"],
        seed=config["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/ablation/{{variant}}/evaluation.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation/{{variant}}/evaluation.tsv"
    threads: 1
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/ablation_evaluate.py"


rule ablation_table:
    input:
        expand(f"{RESULTS}/ablation/{{variant}}/evaluation.csv", variant=ABLATION_VARIANTS),
    output:
        table=f"{RESULTS}/{ablation_files(config)[0]}",
        figure=f"{RESULTS}/{ablation_files(config)[1]}",
    log:
        f"{RESULTS}/logs/ablation/table.log",
    conda:
        ENV
    script:
        "../scripts/ablation_table.py"


rule ablation:
    input:
        [f"{RESULTS}/{f}" for f in ablation_files(config)],
