"""A dataset's melt-quench replicas run in parallel, one process each, then its tensors file.

For a machine with many cores and no Snakemake (the GPU machine of denoiser_gpu.py): the same
package functions as the melt_quench and tensors rules (``run_replica`` with the dataset's
replica seeds and retries, ``build_tensors``), over any subset of the replicas; frames of
``--append`` (e.g. a shard built by the DAG) go last, as the held-out tail.

    python docs/experiments/replicas.py --config config/config.yaml --dataset a-si \
        --replicas 0-15,24-55 --append shard2.extxyz --out a-si.pt --procs 16
"""

from __future__ import annotations

import argparse
import multiprocessing as mp

import numpy as np
import yaml

from mdshortcut.data.ghost import build_tensors, save_tensors
from mdshortcut.io import read_structures
from mdshortcut.md.melt_quench import ReplicaFailure, replica_seed, run_replica
from mdshortcut.md.potentials import get_potential
from mdshortcut.md.protocol import MeltQuench


def one(job):
    mq, replica, seed = job
    for attempt in range(mq.max_retries + 1):
        try:
            return run_replica(mq, replica, attempt, replica_seed(seed, mq.dataset, replica, attempt)).frames
        except ReplicaFailure as exc:
            print(f"replica {replica} attempt {attempt} failed: {exc}", flush=True)
    return []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--replicas", required=True, help="ranges, e.g. 0-15,24-55")
    p.add_argument("--append", nargs="*", default=[])
    p.add_argument("--out", required=True)
    p.add_argument("--procs", type=int, default=mp.cpu_count())
    args = p.parse_args()
    config = yaml.safe_load(open(args.config))
    ds = config["datasets"][args.dataset]
    mq = MeltQuench.from_config(args.dataset, ds)
    replicas = [r for part in args.replicas.split(",") for r in range(int(part.split("-")[0]), int(part.split("-")[-1]) + 1)]
    with mp.get_context("spawn").Pool(args.procs) as pool:
        frames = [f for part in pool.map(one, [(mq, r, config.get("seed", 0)) for r in replicas], chunksize=1) for f in part]
    elements = get_potential(ds["potential"]).elements
    for path in args.append:
        frames += read_structures(path, elements)
    tensors = build_tensors(frames, elements, ds["rho_max"], [], np.zeros((len(frames), 0)), args.dataset, config.get("seed", 0))
    save_tensors(args.out, tensors)
    print(f"{len(frames)} frames of {len(replicas)} replicas (+ {len(args.append)} files) -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
