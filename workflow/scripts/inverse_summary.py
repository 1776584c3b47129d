"""Rule inverse_summary: errors, failures, charge balance and time per inverse-design run (mdshortcut.evaluate)."""

from pathlib import Path

from mdshortcut.evaluate import inverse_summary

summary = inverse_summary(snakemake.input.runs, snakemake.input.timings, snakemake.output[0])  # noqa: F821
Path(snakemake.log[0]).write_text(  # noqa: F821
    f"{len(summary)} runs, {int(summary['n_failed'].sum())} of {int(summary['n_samples'].sum())} samples failed\n"
)
