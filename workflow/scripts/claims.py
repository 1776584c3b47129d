"""Rule claims: the paper's four claims checked on Tables 1 and 2 (mdshortcut.pipeline.claims)."""

from pathlib import Path

from mdshortcut.pipeline.claims import write_claims

claims = write_claims(
    snakemake.input.get("table1"),  # noqa: F821
    snakemake.input.get("table2"),  # noqa: F821
    snakemake.output.csv,  # noqa: F821
    snakemake.output.md,  # noqa: F821
)
Path(snakemake.log[0]).write_text(claims.to_string() + "\n")  # noqa: F821
