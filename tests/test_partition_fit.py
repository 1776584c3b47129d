"""Jobs no node of their SLURM partition can run (mdshortcut.pipeline.partition_fit): sinfo's
lines read, and each request judged by hand-worked cases (tests/test_cluster.py checks the
verdicts against SLURM's own, sbatch --test-only, on a real one-node SLURM)."""

from __future__ import annotations

import math
import re

import pytest

from mdshortcut.pipeline.partition_fit import Node, PartitionError, minutes, parse_sinfo, request, unfit_jobs

# this project's test node (tests/cluster/start-slurm.sh on a 2-CPU machine), as sinfo printed it
ONE_NODE = "main*|vm|2|20489|(null)|UNLIMITED|infinite\n"
# a site with a CPU partition (the default, 1 day) and a GPU one (2 days, at most 32 CPUs a job)
SITE = """\
cpu*|c1|128|256000|(null)|UNLIMITED|1-00:00:00
cpu*|c2|16|1000000|(null)|UNLIMITED|1-00:00:00
gpu|g1|64|512000|gpu:a100:4(S:0-1),gpu:v100:2(S:1)|32|2-00:00:00
gpu|g2|64|512000|gpu:2|32|2-00:00:00
"""


def lines(threads: int, resources: dict, sinfo: str = SITE, rule: str = "train") -> list[str]:
    return unfit_jobs([(rule, {"dataset": "a-si"}, threads, resources)], *parse_sinfo(sinfo))


def test_sinfo_lines_read():
    assert parse_sinfo(ONE_NODE) == ([Node("main", "vm", 2, 20489, {}, math.inf)], "main")
    nodes, default = parse_sinfo(SITE)
    assert default == "cpu"
    assert nodes[2] == Node("gpu", "g1", 32, 512000, {"a100": 4, "v100": 2}, 2880)  # MaxCPUsPerNode caps 64
    assert nodes[3].gpus == {"": 2}
    with pytest.raises(PartitionError, match="unexpected line: 'sinfo: error: x'"):
        parse_sinfo("sinfo: error: x\n")
    with pytest.raises(PartitionError, match=re.escape("unexpected line: 'main*|vm|N/A|20489|")):
        parse_sinfo(ONE_NODE.replace("|2|", "|N/A|"))


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("infinite", math.inf), ("30:00", 30), ("2:00:00", 120), ("1-00:00:00", 1440), ("1-02:03:30", 1563.5)],
)
def test_time_limits_in_minutes(limit, expected):
    assert minutes(limit) == expected


def test_more_cpus_than_the_node_has():
    """The issue's case: a train job of 3 CPUs on a node declaring 2 (SLURM: PartitionConfig)."""
    assert lines(3, {"mem_mb": 2000, "runtime": 60}, ONE_NODE) == [
        "SLURM: rule train (dataset=a-si) asks for 3 CPUs per task in partition 'main', "
        "which has at most 2 CPUs on a node; it would never start"
    ]
    assert lines(2, {"mem_mb": 2000, "runtime": 60}, ONE_NODE) == []
    assert lines(4, {"cpus_per_task": 2}, ONE_NODE) == []  # cpus_per_task is what sbatch gets


def test_memory_gpus_and_runtime():
    assert lines(1, {"mem_mb_per_cpu": 12000}, ONE_NODE) == []  # 1 CPU × 12000 MB fits
    assert lines(2, {"mem_mb_per_cpu": 12000}, ONE_NODE) == [
        "SLURM: rule train (dataset=a-si) asks for 24000 MB memory in partition 'main', "
        "which has at most 20489 MB memory on a node; it would never start"
    ]
    assert "asks for 1 GPU in partition 'main', which has at most 0 GPUs on a node" in lines(1, {"gpu": 1}, ONE_NODE)[0]
    gpu = {"slurm_partition": "gpu", "runtime": 2880}
    assert lines(8, {**gpu, "gpu": 2, "gpu_model": "v100"}) == []
    assert lines(8, {**gpu, "gres": "gpu:a100:4"}) == []
    assert (
        "asks for 3 v100 GPUs in partition 'gpu', which has at most 2 v100 GPUs on a node"
        in (lines(8, {**gpu, "gpu": 3, "gpu_model": "v100"})[0])
    )
    assert "asks for 1 h100 GPU" in lines(8, {**gpu, "gres": "gpu:h100:1"})[0]
    assert "asks for 40 CPUs per task in partition 'gpu', which has at most 32 CPUs" in lines(40, {**gpu, "gpu": 1})[0]
    assert lines(1, {"cpus_per_gpu": 8, "gpu": 4, **gpu}) == []  # 32 CPUs
    assert "asks for 40 CPUs per task" in lines(1, {"cpus_per_gpu": 10, "gpu": 4, **gpu})[0]
    assert "asks for 1500 min in partition 'cpu', which has a MaxTime of 1440 min" in lines(1, {"runtime": 1500})[0]


def test_a_request_no_single_node_meets():
    """30 CPUs (only c1 has them) with 500 GB (only c2): each limit alone is met, together by no
    node of cpu; a job that may also run in gpu fits g1 (32 CPUs, 512 GB)."""
    assert lines(30, {"mem_mb": 500000}) == [
        "SLURM: rule train (dataset=a-si) asks for 30 CPUs per task and 500000 MB memory in partition "
        "'cpu', which no single node of it has together; it would never start"
    ]
    assert lines(30, {"mem_mb": 500000, "slurm_partition": "cpu,gpu"}) == []


def test_partitions_sinfo_does_not_list():
    assert lines(1, {"slurm_partition": "bigmem"}) == [
        "SLURM: rule train (dataset=a-si) asks for partition 'bigmem', which sinfo does not list "
        "(it lists cpu, gpu); it would never start"
    ]
    no_default = SITE.replace("cpu*", "cpu")
    assert "names no partition, and the cluster has no default one" in lines(1, {}, no_default)[0]
    assert lines(1, {"slurm_partition": "gpu"}, no_default) == []


def test_one_line_per_rule():
    """Of many jobs of a rule, the first that cannot run speaks for the rule; jobs that can say nothing."""
    jobs = [
        ("sample", {"n_s": "1"}, 1, {"mem_mb": 1000}),
        ("train", {"dataset": "a-si", "process": "sde"}, 3, {}),
        ("train", {"dataset": "a-sio2", "process": "sde"}, 4, {}),
        ("bench_model", {}, 1, {"gpu": 1}),
    ]
    assert [line.split(" asks")[0] for line in unfit_jobs(jobs, *parse_sinfo(ONE_NODE))] == [
        "SLURM: rule train (dataset=a-si, process=sde)",
        "SLURM: rule bench_model",
    ]


def test_request_reads_resources_as_the_plugin_submits_them():
    assert request(2, {"mem_mb": 2000, "runtime": 60}) == request(2, {"mem_mb": 2000, "runtime": 60, "gpu": 0})
    r = request(3, {"mem_mb_per_cpu": 1000, "gres": "gpu:a100:2", "slurm_partition": "gpu"})
    assert (r.cpus, r.mem_mb, r.gpus, r.gpu_model, r.partition) == (3, 3000, 2, "a100", "gpu")
    assert request(3, {"cpus_per_task": -1}).cpus == 1  # the plugin then asks for no CPUs: SLURM's 1
