# The paper's tables and figures, marked for `snakemake --report report.html`.
# Table 1 and figures 2 and 5 come from the unconditional dataset (a-Si); Table 2 and figures
# 3, 4 and 6 from the inverse-design dataset (a-SiO2).
from mdshortcut.pipeline.tables import INVERSE_DATASET, STRUCTURE_DATASET, claim_tables, fig3_stems, reference_files, report_files


rule table1:
    localrule: True
    input:
        summary=f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/structure.csv",
        code=code("mdshortcut.pipeline.tables"),
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
    localrule: True
    input:
        summary=f"{RESULTS}/evaluation/{INVERSE_DATASET}/inverse.csv",
        code=code("mdshortcut.pipeline.tables"),
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


# Each figure's input files by role (mdshortcut.pipeline.figures.FIGURES draws it from them).
FIGURE_INPUTS = {
    "fig2": lambda: {
        "reference": f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/reference.json",
        "runs": [f"{RESULTS}/evaluation/{STRUCTURE_DATASET}/{s}.json" for s in runs(STRUCTURE_DATASET)],
    },
    "fig3": lambda: {
        "labels": f"{RESULTS}/datasets/{INVERSE_DATASET}/labels.csv",
        "runs": [f"{RESULTS}/evaluation/{INVERSE_DATASET}/{s}.csv" for s in fig3_stems(dataset_cfg(INVERSE_DATASET))],
    },
    "fig4": lambda: {"runs": [f"{RESULTS}/evaluation/{INVERSE_DATASET}/{s}.csv" for s in runs(INVERSE_DATASET)]},
    "fig5": lambda: {"table": f"{RESULTS}/tables/table1.csv"},
    "fig6": lambda: {"summary": f"{RESULTS}/evaluation/{INVERSE_DATASET}/inverse.csv"},
}


rule figure:
    localrule: True
    input:
        unpack(lambda w: FIGURE_INPUTS[w.fig]()),
        code=code("mdshortcut.pipeline.figures"),
    output:
        png=report(f"{RESULTS}/figures/{{fig}}.png", caption="../report/figure.rst", category="Figures"),
        data=f"{RESULTS}/figures/{{fig}}.csv",
    wildcard_constraints:
        fig="|".join(FIGURE_INPUTS),
    log:
        f"{RESULTS}/logs/report/{{fig}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/{{fig}}.tsv"
    conda:
        ENV
    script:
        "../scripts/figure.py"


rule claims:
    localrule: True
    input:
        **{name: f"{RESULTS}/{path}" for name, path in claim_tables(report_files(config)).items()},
        code=code("mdshortcut.pipeline.claims"),
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
# figures and evaluation summaries to {results_dir}/reference/ (results/reference/ is tracked in
# git) with the benchmark tables and provenance.yaml (config, commit, machine, software, timings).
# The folder is no output (Snakemake would delete it before the job, with any hand-made file in
# it): the script writes each file atomically, and the output lists what it wrote.
rule reference:
    localrule: True
    input:
        files=[f"{RESULTS}/{f}" for f in reference_files(config)],
        code=code("mdshortcut.pipeline.provenance"),
    output:
        f"{RESULTS}/logs/report/reference.files",
    params:
        results=lambda w: RESULTS,
        reference=lambda w: f"{RESULTS}/reference",
        config=config,
        repo=lambda w: workflow.basedir,
    log:
        f"{RESULTS}/logs/report/reference.log",
    conda:
        ENV
    script:
        "../scripts/reference.py"
