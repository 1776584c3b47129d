"""Rule inverse_summary: errors, failures, charge balance and time per inverse-design run (mdshortcut.evaluate)."""

from mdshortcut.evaluate import inverse_summary
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

summary = inverse_summary(snakemake.input.runs, snakemake.input.timings, snakemake.output[0])
log.info(f"{len(summary)} runs, {int(summary['n_failed'].sum())} of {int(summary['n_samples'].sum())} samples failed")
