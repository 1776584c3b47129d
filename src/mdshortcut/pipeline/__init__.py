"""The workflow's glue: what the Snakemake rules run beyond the library (sampling sweeps, shard
merging, tables, figures, claim checks, provenance and benchmarks)."""
