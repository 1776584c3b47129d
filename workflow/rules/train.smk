# Stage 3: one training job per model, results/models/{dataset}/{process}-{conditioning}.pt.
# Checkpoints live in results/checkpoints/{dataset}/{process}-{conditioning}/ (a param, not an
# output, so Snakemake does not delete them): an interrupted or re-run training resumes.
# Reruns when the training code changes (its sources are inputs) or its config does (a baseline's
# leaves out MDShortcut's recipe keys: mdshortcut.config.model_config); a
# checkpoint of other code, data or settings is then ignored, not resumed. A shortcut with
# training.shortcut_init: baseline starts from its base process's model of the same conditioning.
from mdshortcut.config import dataset_training, model_config
from mdshortcut.generative import PROCESSES


wildcard_constraints:
    process="|".join(PROCESSES),
    conditioning="[a-z_]+",


rule train:
    input:
        tensors=f"{RESULTS}/datasets/{{dataset}}/tensors.pt",
        init=warm_start_model,
        code=code("mdshortcut.train"),
    output:
        f"{RESULTS}/models/{{dataset}}/{{process}}-{{conditioning}}.pt",
    params:
        checkpoints=lambda w: f"{RESULTS}/checkpoints/{w.dataset}/{w.process}-{w.conditioning}",
        config=lambda w: model_config(config, w.dataset, w.process),
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{process}}-{{conditioning}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{dataset}}/{{process}}-{{conditioning}}.tsv"
    threads: config["training"]["threads"]
    resources:
        gpu=LOCAL_GPU,
        runtime=lambda w: network_minutes(
            w.dataset,
            dataset_training(config, w.dataset)["steps"],
            config["training"]["batch_size"],
            job_device("train"),
            GPU_SHORTCUT_FACTOR if w.process == "shortcut" else 1.0,
        ),
        mem_mb=lambda w: network_mem_mb(w.dataset, config["training"]["batch_size"]),
    priority: chain_priority
    conda:
        ENV
    script:
        "../scripts/train.py"
