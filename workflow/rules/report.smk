# The paper's tables and figures, marked for `snakemake --report report.html`.
# Table 1 and figures 2 and 5 come from the unconditional dataset (a-Si); Table 2 and figures
# 3, 4 and 6 from the inverse-design dataset (a-SiO2).
from mdshortcut.pipeline.tables import INVERSE_DATASET, STRUCTURE_DATASET, claim_tables, fig3_stems, reference_files, report_files

REPORT_CODE = [f"{workflow.basedir}/src/mdshortcut/pipeline/{name}.py" for name in ("tables", "figures")]


rule table1:
    input:
        summary=f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/structure.csv",
        code=REPORT_CODE,
    output:
        csv=report(f"{RESULTS}/tables/table1.csv", caption="../report/table1.rst", category="Tables"),
        md=report(f"{RESULTS}/tables/table1.md", caption="../report/table1.rst", category="Tables"),
    log:
        f"{RESULTS}/logs/report/table1.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/table1.tsv"
    conda:
        ENV
    script:
        "../scripts/table1.py"


rule table2:
    input:
        summary=f"{RESULTS}/evaluation/{INVERSE_DATASET}/inverse.csv",
        code=REPORT_CODE,
    output:
        csv=report(f"{RESULTS}/tables/table2.csv", caption="../report/table2.rst", category="Tables"),
        md=report(f"{RESULTS}/tables/table2.md", caption="../report/table2.rst", category="Tables"),
    log:
        f"{RESULTS}/logs/report/table2.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/table2.tsv"
    conda:
        ENV
    script:
        "../scripts/table2.py"


rule fig2:
    input:
        code=REPORT_CODE,
        reference=f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/reference.json",
        runs=[f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/{s}.json" for s in RUNS.get(STRUCTURE_DATASET, [])],
    output:
        report(f"{RESULTS}/figures/fig2.png", caption="../report/fig2.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/report/fig2.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/fig2.tsv"
    conda:
        ENV
    script:
        "../scripts/fig2.py"


rule fig3:
    input:
        code=REPORT_CODE,
        labels=f"{RESULTS}/datasets/{INVERSE_DATASET}/labels.csv",
        runs=[
            f"{RESULTS}/evaluation/{INVERSE_DATASET}/{s}.csv"
            for s in (fig3_stems(dataset_cfg(INVERSE_DATASET)) if INVERSE_DATASET in DATASETS else [])
        ],
    output:
        report(f"{RESULTS}/figures/fig3.png", caption="../report/fig3.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/report/fig3.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/fig3.tsv"
    conda:
        ENV
    script:
        "../scripts/fig3.py"


rule fig4:
    input:
        code=REPORT_CODE,
        runs=[f"{RESULTS}/evaluation/{INVERSE_DATASET}/{s}.csv" for s in RUNS.get(INVERSE_DATASET, [])],
    output:
        report(f"{RESULTS}/figures/fig4.png", caption="../report/fig4.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/report/fig4.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/fig4.tsv"
    conda:
        ENV
    script:
        "../scripts/fig4.py"


rule fig5:
    input:
        table=f"{RESULTS}/tables/table1.csv",
        code=REPORT_CODE,
    output:
        report(f"{RESULTS}/figures/fig5.png", caption="../report/fig5.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/report/fig5.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/fig5.tsv"
    conda:
        ENV
    script:
        "../scripts/fig5.py"


rule fig6:
    input:
        summary=f"{RESULTS}/evaluation/{INVERSE_DATASET}/inverse.csv",
        code=REPORT_CODE,
    output:
        report(f"{RESULTS}/figures/fig6.png", caption="../report/fig6.rst", category="Figures"),
    log:
        f"{RESULTS}/logs/report/fig6.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/fig6.tsv"
    conda:
        ENV
    script:
        "../scripts/fig6.py"


rule claims:
    input:
        **{name: f"{RESULTS}/{path}" for name, path in claim_tables(report_files(config)).items()},
        code=f"{workflow.basedir}/src/mdshortcut/pipeline/claims.py",
    output:
        csv=report(f"{RESULTS}/tables/claims.csv", caption="../report/claims.rst", category="Tables"),
        md=report(f"{RESULTS}/tables/claims.md", caption="../report/claims.rst", category="Tables"),
    log:
        f"{RESULTS}/logs/report/claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/claims.tsv"
    conda:
        ENV
    script:
        "../scripts/claims.py"


# A run to publish (not part of `all`): `snakemake reference` after `all` copies the tables,
# figures and evaluation summaries to results/reference/ (tracked in git) with the benchmark
# tables and provenance.yaml (config, commit, machine, software, timings).
rule reference:
    input:
        [f"{RESULTS}/{f}" for f in reference_files(config)],
    output:
        directory(f"{RESULTS}/reference"),
    params:
        config=config,
        repo=workflow.basedir,
    log:
        f"{RESULTS}/logs/report/reference.log",
    conda:
        ENV
    script:
        "../scripts/reference.py"
