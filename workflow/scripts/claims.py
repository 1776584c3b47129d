"""Rule claims: the paper's four claims checked on Tables 1 and 2 (mdshortcut.pipeline.claims)."""

from mdshortcut.pipeline.claims import write_claims
from mdshortcut.pipeline.rulelog import to_rule_log

log = to_rule_log(snakemake.log[0])

claims = write_claims(
    snakemake.input.get("table1"),
    snakemake.input.get("table2"),
    snakemake.output.csv,
    snakemake.output.md,
)
log.info(claims.to_string())
