"""End to end: config/test.yaml through the whole DAG in a temporary directory.

Datasets (LAMMPS), labels, ten trainings, the sampling sweeps, evaluation, both tables, every
figure, then `snakemake --report`. Checks that each table has exactly the rows the config asks
for, with finite values wherever something could be measured, and that failures are counted,
not dropped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO, SNAKEMAKE, TEST_RESULTS, snakemake
from conftest import TEST_CONFIG as CONFIG
from mdshortcut.pipeline.sweep import SamplingConfig, sampling_runs
from mdshortcut.pipeline.tables import reference_files, report_files

# `pipeline` (conftest.py): a folder where config/test.yaml has run through `all`, shared by
# the session's slow tests.


@pytest.mark.slow
def test_table1_has_every_row_finite(pipeline):
    cfg = yaml.safe_load(CONFIG.read_text())["datasets"]["a-si"]
    t1 = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/table1.csv")
    expected = {
        (m.split("-")[0], n) for m in sampling_runs(cfg) for n in SamplingConfig.from_config(cfg["sampling"]).n_steps
    }
    assert set(zip(t1["model"], t1["n_s"])) == expected and len(t1) == len(expected)
    values = t1[["rdf_rmsd", "adf_rmsd", "seconds_per_10k"]].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (values > 0).all()


@pytest.mark.slow
def test_table1_close_fraction_and_atoms_are_measured(pipeline):
    t1 = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/table1.csv")
    assert t1["close_fraction"].between(0, 1).all() and (t1["atoms_mean"] > 0).all()


@pytest.mark.slow
def test_ablation_scores_every_variant_at_equal_budget(pipeline):
    """Every variant x (each n_s through its shortcut levels, and its flow), finite scores; the
    warm-started variant's training CPU time includes its baseline's."""
    from mdshortcut.checkpoint import read_model

    ab = yaml.safe_load(CONFIG.read_text())["ablation"]
    t = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/ablation.csv")
    expected = [(v, "shortcut", n) for v in ab["variants"] for n in ab["n_steps"]]
    expected += [(v, "flow", ab["flow_steps"]) for v in ab["variants"]]
    assert sorted(zip(t["variant"], t["sampler"], t["n_s"])) == sorted(expected)
    values = t[["rdf_rmsd", "adf_rmsd", "close_fraction", "atoms_mean", "train_cpu_s"]].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (t["train_steps"] == ab["max_steps"]).all()
    warm = read_model(pipeline / f"{TEST_RESULTS}/ablation/ode-warm/models/shortcut-none.pt")
    baseline = read_model(pipeline / f"{TEST_RESULTS}/ablation/ode-warm/models/ode-none.pt")
    assert warm["process_config"]["shortcut_base"] == "ode" and warm["process_config"]["shortcut_levels"] == 2
    assert warm["cpu_seconds"] > baseline["cpu_seconds"] > 0
    paper = read_model(pipeline / f"{TEST_RESULTS}/ablation/paper/models/shortcut-none.pt")["process_config"]
    assert (paper["shortcut_base"], paper["shortcut_levels"], paper["shortcut_share"]) == ("sde", 7, "batches")
    assert (pipeline / f"{TEST_RESULTS}/figures/ablation.png").stat().st_size > 0
    ranking = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/ablation_ranking.csv")
    assert list(ranking["variant"]) == list(ab["variants"]) and ranking["chosen"].sum() == 1


@pytest.mark.slow
def test_architecture_scores_every_variant_and_baseline(pipeline):
    """Every variant x baseline x n_s with finite scores; each model was built with its variant's
    denoiser options on top of the paper's network, on tensors with or without ghosts as it says;
    one variant chosen."""
    from mdshortcut.checkpoint import read_model

    arch = yaml.safe_load(CONFIG.read_text())["architecture"]
    t = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/architecture.csv")
    expected = [(v, p, n) for v in arch["variants"] for p in ("sde", "ode") for n in arch["n_steps"]]
    assert sorted(zip(t["variant"], t["process"], t["n_s"])) == sorted(expected)
    values = t[["rdf_rmsd", "adf_rmsd", "close_fraction", "atoms_mean", "train_cpu_s"]].to_numpy(dtype=float)
    assert np.isfinite(values).all() and (t["train_steps"] == arch["max_steps"]).all()
    for variant, options in arch["variants"].items():
        model = read_model(pipeline / f"{TEST_RESULTS}/architecture/{variant}/models/sde-none.pt")["model_config"]
        wanted = {"distance_features": "tanh", "noise_embedding": "input", "update_distances": False}
        chosen = {k: v for k, v in options.get("model", {}).items() if k in wanted}
        assert {k: model[k] for k in wanted} == wanted | chosen
        fixed = read_model(pipeline / f"{TEST_RESULTS}/architecture/{variant}/models/ode-none.pt")["atoms_per_sample"]
        assert fixed == (None if options.get("dataset", {}).get("ghosts", True) else 64)
        if fixed:  # sampled without ghosts: every sample holds the 64 Si
            assert (t[t["variant"] == variant]["atoms_mean"] == 64).all()
    assert (pipeline / f"{TEST_RESULTS}/figures/architecture.png").stat().st_size > 0
    ranking = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/architecture_ranking.csv")
    assert list(ranking["variant"]) == list(arch["variants"]) and ranking["chosen"].sum() == 1
    for variant, captured in zip(ranking["variant"], ranking["captured"]):  # each variant's own probe
        probe = pd.read_csv(pipeline / f"{TEST_RESULTS}/architecture/{variant}/denoising.csv").set_index("sigma_A")
        assert np.isfinite(captured) and captured == pytest.approx(probe.loc[0.1, "captured"])


@pytest.mark.slow
def test_table2_has_every_row_finite(pipeline):
    cfg = yaml.safe_load(CONFIG.read_text())["datasets"]["a-sio2"]
    sampling = SamplingConfig.from_config(cfg["sampling"])
    t2 = pd.read_csv(pipeline / f"{TEST_RESULTS}/tables/table2.csv")
    expected = set()
    for run in sampling_runs(cfg):
        model, prop = run.split("/")
        column = model if model.endswith("-all") else f"{model.split('-')[0]}-target"
        expected |= {(prop, column, n) for n in sampling.n_steps}
    assert set(zip(t2["property"], t2["model"], t2["n_s"])) == expected and len(t2) == len(expected)
    assert (t2["n_samples"] == sampling.n_samples).all()
    assert ((t2["n_failed"] >= 0) & (t2["n_failed"] <= t2["n_samples"])).all()
    # A run with a measured sample has finite errors; one whose every sample failed (possible for
    # 6-step test models: 4 of 4 strained re-relaxations unconverged) shows n_failed = n_samples
    # and empty errors, never a made-up number. Most runs are measured.
    errors = t2[["mae", "rmse", "mape_percent"]].to_numpy(dtype=float)
    measured = (t2["n_failed"] < t2["n_samples"]).to_numpy()
    assert measured.mean() > 0.5, t2.to_string()
    assert np.isfinite(errors[measured]).all() and (errors[measured] >= 0).all(), t2.to_string()
    assert np.isnan(errors[~measured]).all(), t2.to_string()
    # every generated structure has its row in the per-run evaluation, failed or not
    for run in sampling_runs(cfg):
        for n_s in sampling.n_steps:
            rows = pd.read_csv(pipeline / f"{TEST_RESULTS}/evaluation/a-sio2/{run}/ns{n_s}.csv")
            assert rows["sample"].tolist() == list(range(sampling.n_samples))
            failed = rows["value"].isna()
            assert (rows.loc[failed, "reason"].fillna("") != "").all()
    summary = pd.read_csv(pipeline / f"{TEST_RESULTS}/evaluation/a-sio2/inverse.csv")
    assert summary["charge_balanced_fraction"].between(0, 1).all()


@pytest.mark.slow
def test_figures_markdown_and_report(pipeline, tmp_path):
    config = yaml.safe_load(CONFIG.read_text())
    files = report_files(config)
    assert {f"figures/fig{k}.png" for k in range(2, 7)} <= set(files)
    for f in files:
        path = pipeline / TEST_RESULTS / f
        assert path.stat().st_size > 0, f
        if f.endswith(".png"):
            with Image.open(path) as im:
                assert im.format == "PNG"
    assert "**" in (pipeline / f"{TEST_RESULTS}/tables/table1.md").read_text()
    res = snakemake(pipeline, "--report", str(tmp_path / "report.html"), timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    html = (tmp_path / "report.html").read_text()
    assert "table2.csv" in html and "fig6.png" in html and f"{TEST_RESULTS}/tables" in html

    # The README's default report (no --configfile) in the same folder: it once packed this test
    # run's tables as the default run's (391 missing-metadata warnings, exit 0); now it reads only
    # the default results folder, where this run wrote nothing.
    report = ["--report", str(tmp_path / "d.html")]
    res = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(pipeline), *report],
        capture_output=True,
        text=True,
        timeout=600,
    )
    default = (tmp_path / "d.html").read_text() if res.returncode == 0 else ""
    assert TEST_RESULTS not in default and "table2.csv" not in default, res.stderr[-3000:]


@pytest.mark.slow
def test_bench_rule_writes_every_table(pipeline):
    """`snakemake bench` after `all`: one CSV per benchmark, with the rows the config asks for."""
    res = snakemake(pipeline, "--cores", "2", "bench")
    assert res.returncode == 0, res.stderr[-6000:]
    bench = yaml.safe_load(CONFIG.read_text())["bench"]
    model = pd.read_csv(pipeline / f"{TEST_RESULTS}/bench/model.csv")
    assert list(model["n_atoms"]) == bench["n_atoms"] and (model["speedup_vs_straightforward"] > 0).all()
    sampler = pd.read_csv(pipeline / f"{TEST_RESULTS}/bench/sampler.csv")
    runs = sum(len(levels) for levels in bench["sampler"]["steps"].values())
    assert len(sampler) == runs * len(bench["sampler"]["sizes"])
    assert np.isfinite(sampler["time_vs_sde_max"]).all()
    md = pd.read_csv(pipeline / f"{TEST_RESULTS}/bench/md.csv", keep_default_na=False)
    assert sorted(md["dataset"]) == ["a-si", "a-sio2"] and (md["reason"] == "").all()
    assert md["python_overhead_pct"].astype(float).between(0, 100).all()
    props = pd.read_csv(pipeline / f"{TEST_RESULTS}/bench/properties.csv")
    assert list(props["dataset"]) == ["a-sio2"] and (props["relaxations_per_min"] > 0).all()


def res_manifest() -> str:
    """The reference rule's output: the files it wrote, one per line."""
    return f"{TEST_RESULTS}/logs/report/reference.files"


def contains(full, part) -> bool:
    """Every key and value of ``part`` is in ``full`` (recursively; lists element-wise)."""
    if isinstance(part, dict):
        return isinstance(full, dict) and all(k in full and contains(full[k], v) for k, v in part.items())
    if isinstance(part, list):
        return isinstance(full, list) and len(full) == len(part) and all(map(contains, full, part))
    return full == part


@pytest.mark.slow
def test_reference_rule_publishes_the_run(pipeline, tmp_path):
    """`snakemake reference` after `all`: tables, figures, summaries, benchmarks, provenance;
    into a reference folder that already holds the repository's tracked one (the README, the
    default run's files), of which it overwrites only what it makes and deletes nothing."""
    work = tmp_path / "work"
    shutil.copytree(pipeline, work, symlinks=True)
    ref = work / f"{TEST_RESULTS}/reference"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "results/reference"], capture_output=True, text=True
    )
    tracked = [Path(f).relative_to("results/reference") for f in listed.stdout.split("\0") if f]
    assert Path("README.md") in tracked and Path("provenance.yaml") in tracked, listed.stderr
    for f in tracked:
        (ref / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO / "results/reference" / f, ref / f)
    res = snakemake(work, "--cores", "1", "reference")
    assert res.returncode == 0, res.stderr[-6000:]
    assert "Nothing to be done" not in res.stdout + res.stderr
    written = {Path(p).relative_to(ref.relative_to(work)) for p in (work / res_manifest()).read_text().split()}
    assert {Path("provenance.yaml"), Path("benchmarks.csv")} <= written
    for f in tracked:
        assert (ref / f).is_file(), f"snakemake reference deleted the tracked {f}"
        if f not in written:
            assert (ref / f).read_bytes() == (REPO / "results/reference" / f).read_bytes(), f
    config = yaml.safe_load(CONFIG.read_text())
    bench = [str(p.relative_to(work / TEST_RESULTS)) for p in (work / f"{TEST_RESULTS}/bench").glob("*.csv")]  # if run
    for f in reference_files(config) + bench:
        assert (ref / f).read_bytes() == (work / TEST_RESULTS / f).read_bytes(), f
    benchmarks = [
        p for p in (work / f"{TEST_RESULTS}/benchmarks").rglob("*.tsv") if p.parts[-2] != "bench"
    ]  # not `bench`
    jobs = pd.read_csv(ref / "benchmarks.csv")
    assert len(jobs) == len(benchmarks) and set(jobs["stage"]) >= {
        "datasets",
        "train",
        "samples",
        "evaluation",
        "report",
    }
    provenance = yaml.safe_load((ref / "provenance.yaml").read_text())
    assert contains(provenance["config"], config)  # the validated config: the file's keys, defaults added
    assert len(provenance["git_commit"]) >= 40 and provenance["machine"]["cores"] >= 1
    # the command that ran `all` (the fixture's), not the one that published
    assert provenance["snakemake"]["cores"] == 2 and " all" in provenance["snakemake"]["command"]
    span = provenance["pipeline"]["wall_s"]
    assert span > 0 and provenance["pipeline"]["jobs"] == len(benchmarks)
    summary = pd.read_csv(ref / "benchmark_summary.csv").set_index(["stage", "step"])
    assert summary.loc[("all", "all"), "wall_s"] == pytest.approx(jobs["s"].sum())
