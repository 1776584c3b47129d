"""Rule train: one model (process × conditioning set) on a dataset's tensors (mdshortcut.train)."""

from mdshortcut.pipeline.rulelog import to_rule_log
from mdshortcut.train import train_model

to_rule_log(snakemake.log[0])

train_model(
    snakemake.input.tensors,
    snakemake.output[0],
    snakemake.params.checkpoints,
    process=snakemake.wildcards.process,
    conditioning=snakemake.wildcards.conditioning,
    config=snakemake.params.config,
    log=snakemake.log[0],
    threads=snakemake.threads,
    init=snakemake.input.init or None,
)
