"""SLURM jobs that no node of their partition can ever run, found before the first submission.

SLURM keeps such a job PENDING for ever (reason PartitionConfig: more CPUs per task than any
node of the partition has; PartitionTimeLimit: a runtime over the partition's MaxTime), or sbatch
rejects it (memory or GPUs that no node has). snakemake-executor-plugin-slurm 2.8.0 counts a
PENDING job as running and polls it without end (a real one-node SLURM declaring 2 CPUs: a train
job of ``--cpus-per-task=4`` waited with PartitionConfig until killed), and its own partition
limits (``--slurm-partition-config``) only fall back to the default partition when none fits.
So the workflow (Snakefile, ``onstart`` under the slurm executor) checks every job it will submit
against the nodes ``sinfo`` lists and stops with one line per rule naming the request and the
limit. Requests are read as the plugin writes them to sbatch (one task on one node).
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: one line per node and partition: partition (default marked *), node, CPUs, RealMemory (MB),
#: generic resources, the partition's MaxCPUsPerNode, its MaxTime
SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%N|%c|%m|%G|%B|%l"]
GPU_GRES = re.compile(r"gpu(?::([^:,(]+))?:(\d+)")


class PartitionError(RuntimeError):
    """The partitions cannot be read (sinfo failed or printed something else)."""


@dataclass(frozen=True)
class Node:
    """What one job may use on a node of a partition: its CPUs (capped by the partition's
    MaxCPUsPerNode), memory (MB), GPUs (type -> count, "" untyped) and runtime (min, MaxTime)."""

    partition: str
    name: str
    cpus: int
    mem_mb: int
    gpus: Mapping[str, int]
    max_minutes: float


@dataclass(frozen=True)
class Request:
    """One job's sbatch request: CPUs (per task), memory (MB, 0: none asked), GPUs of a type
    (None: any), runtime (min, 0: none asked), partitions ("": the cluster's default)."""

    cpus: int
    mem_mb: int
    gpus: int
    gpu_model: str | None
    minutes: float
    partition: str


def gpu_counts(gres: str) -> dict[str, int]:
    """GPUs per type in a GRES string (sinfo's ``gpu:a100:4(S:0-1),gpu:2``, a job's ``gpu:1``)."""
    counts: dict[str, int] = {}
    for model, n in GPU_GRES.findall(gres or ""):
        counts[model] = counts.get(model, 0) + int(n)
    return counts


def minutes(limit: str) -> float:
    """A SLURM time limit (``[days-]hours:minutes:seconds``, ``minutes:seconds``, ``infinite``) in minutes."""
    if limit.lower() in ("infinite", "unlimited", "n/a"):
        return math.inf
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts))) if len(parts) > 1 else parts[0] * 60
    return (int(days or 0) * 86400 + seconds) / 60


def parse_sinfo(text: str) -> tuple[list[Node], str | None]:
    """The nodes in ``SINFO``'s output and the default partition (None when there is none)."""
    nodes, default = [], None
    for line in filter(None, map(str.strip, text.splitlines())):
        try:
            partition, name, cpus, mem, gres, max_cpus, limit = line.split("|")
            cap = int(max_cpus) if max_cpus.isdigit() else math.inf
            node = Node(
                partition.rstrip("*"), name, int(min(int(cpus), cap)), int(mem), gpu_counts(gres), minutes(limit)
            )
        except ValueError:
            raise PartitionError(f"sinfo printed an unexpected line: {line!r}") from None
        if partition.endswith("*"):
            default = node.partition
        nodes.append(node)
    return nodes, default


def read_nodes() -> tuple[list[Node], str | None]:
    """``parse_sinfo`` of this cluster."""
    try:
        out = subprocess.run(SINFO, capture_output=True, text=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        raise PartitionError(f"{' '.join(SINFO)} failed: {str(detail).strip()}") from None
    return parse_sinfo(out)


def request(threads: int, resources: Mapping) -> Request:
    """The request of a job of ``threads`` and ``resources`` as the slurm plugin submits it:
    CPUs per task = cpus_per_task, else cpus_per_gpu × GPUs for a GPU job, else threads;
    memory = mem_mb_per_cpu × CPUs, else mem_mb; GPUs from gpu (+ gpu_model) or gres."""
    if resources.get("gpu"):
        gpus, model = int(resources["gpu"]), resources.get("gpu_model") or None
    else:
        typed = gpu_counts(str(resources.get("gres") or ""))
        gpus, model = sum(typed.values()), next(iter(typed), "") or None
    cpus = max(1, int(resources.get("cpus_per_task") or gpus * resources.get("cpus_per_gpu", 0) or threads))
    mem = resources.get("mem_mb_per_cpu", 0) * cpus or resources.get("mem_mb") or 0
    runtime = resources.get("runtime") or 0
    return Request(cpus, int(mem), gpus, model, float(runtime), str(resources.get("slurm_partition") or ""))


def _gpus_on(node: Node, model: str | None) -> int:
    return node.gpus.get(model, 0) if model else sum(node.gpus.values())


def _fits(req: Request, node: Node) -> bool:
    return (
        req.cpus <= node.cpus
        and req.mem_mb <= node.mem_mb
        and req.gpus <= _gpus_on(node, req.gpu_model)
        and req.minutes <= node.max_minutes
    )


def _count(n: float, unit: str) -> str:
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def misfit(req: Request, nodes: list[Node], default: str | None) -> str | None:
    """Why no node can ever run ``req`` ("asks for A in partition P, which has L"), or None
    when one can."""
    names = [p for p in req.partition.split(",") if p] or ([default] if default else [])
    if not names:
        return "names no partition, and the cluster has no default one"
    known = {n.partition for n in nodes}
    missing = [p for p in names if p not in known]
    if missing:
        return f"asks for partition '{missing[0]}', which sinfo does not list (it lists {', '.join(sorted(known))})"
    cand = [n for n in nodes if n.partition in names]
    if any(_fits(req, n) for n in cand):
        return None
    gpu = f"{req.gpu_model} GPU" if req.gpu_model else "GPU"
    cpus, mem = max(n.cpus for n in cand), max(n.mem_mb for n in cand)
    gpus = max(_gpus_on(n, req.gpu_model) for n in cand)
    dims = [  # (request, the most a node of the partitions offers, request text, limit text)
        (req.cpus, cpus, _count(req.cpus, "CPU") + " per task", _count(cpus, "CPU")),
        (req.mem_mb, mem, f"{req.mem_mb} MB memory", f"{mem} MB memory"),
        (req.gpus, gpus, _count(req.gpus, gpu), _count(gpus, gpu)),
    ]
    asked = [text for want, _, text, _ in dims if want]
    over = [(text, f"at most {limit} on a node") for want, most, text, limit in dims if want > most]
    max_minutes = max(n.max_minutes for n in cand)
    if req.minutes > max_minutes:
        over.append((f"{req.minutes:g} min", f"a MaxTime of {max_minutes:g} min"))
    where = f"partition '{','.join(names)}'"
    if not over:
        return f"asks for {' and '.join(asked)} in {where}, which no single node of it has together"
    return f"asks for {' and '.join(t for t, _ in over)} in {where}, which has {' and '.join(lim for _, lim in over)}"


def unfit_jobs(jobs: Iterable[tuple[str, Mapping, int, Mapping]], nodes: list[Node], default: str | None) -> list[str]:
    """One line per rule with a job (rule, wildcards, threads, resources) that no node of its
    partition can run: 'SLURM: rule R (k=v, ...) asks for ..., which has ...; it would never start'."""
    lines: dict[str, str] = {}
    for rule, wildcards, threads, resources in jobs:
        if rule in lines:
            continue
        why = misfit(request(threads, resources), nodes, default)
        if why:
            label = f"rule {rule}" + (f" ({', '.join(f'{k}={v}' for k, v in wildcards.items())})" if wildcards else "")
            lines[rule] = f"SLURM: {label} {why}; it would never start"
    return list(lines.values())
