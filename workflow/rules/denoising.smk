# The denoising probe (`snakemake results/tables/denoising.csv`; not part of `all`): each probed
# dataset's ε-prediction models against the Bayes-optimal denoiser on held-out frames, new
# melt-quench replicas of its protocol (results/denoising/{dataset}/), estimated by tethered MD.
from mdshortcut.md.protocol import md_section
from mdshortcut.pipeline.tables import DENOISING_TABLE

DENOISING = config["denoising"]


rule denoising_heldout:
    input:
        code=code("mdshortcut.md.tethered"),
    output:
        structures=f"{RESULTS}/denoising/{{dataset}}/heldout.extxyz",
        failures=f"{RESULTS}/denoising/{{dataset}}/heldout.failures.csv",
    params:
        cfg=lambda w: md_section(dataset_cfg(w.dataset)),
        replicas=DENOISING["replicas"],
        frames=DENOISING["frames"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/denoising/{{dataset}}/heldout.log",
    benchmark:
        f"{RESULTS}/benchmarks/denoising/{{dataset}}/heldout.tsv"
    threads: 1
    conda:
        ENV
    script:
        "../scripts/denoising_heldout.py"


rule denoising_bayes:
    input:
        structures=f"{RESULTS}/denoising/{{dataset}}/heldout.extxyz",
        code=code("mdshortcut.md.tethered"),
    output:
        f"{RESULTS}/denoising/{{dataset}}/bayes.npz",
    params:
        cfg=lambda w: md_section(dataset_cfg(w.dataset)),
        sigmas=DENOISING["sigmas"],
        md=DENOISING["md"],
        temperature=lambda w: DENOISING["temperature"].get(w.dataset),
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/denoising/{{dataset}}/bayes.log",
    benchmark:
        f"{RESULTS}/benchmarks/denoising/{{dataset}}/bayes.tsv"
    threads: 1
    conda:
        ENV
    script:
        "../scripts/denoising_bayes.py"


rule denoising_table:
    input:
        models=[f"{RESULTS}/models/{d}/{m}.pt" for d, names in PROBED.items() for m in names],
        heldout=[f"{RESULTS}/denoising/{d}/heldout.extxyz" for d in PROBED],
        bayes=[f"{RESULTS}/denoising/{d}/bayes.npz" for d in PROBED],
        code=code("mdshortcut.pipeline.denoising"),
    output:
        f"{RESULTS}/{DENOISING_TABLE}",
    params:
        datasets=list(PROBED),
        seed=config["seed"],
        device=config["device"],
    log:
        f"{RESULTS}/logs/denoising/table.log",
    benchmark:
        f"{RESULTS}/benchmarks/denoising/table.tsv"
    threads: 1
    resources:
        gpu=LOCAL_GPU,
    conda:
        ENV
    script:
        "../scripts/denoising_table.py"
