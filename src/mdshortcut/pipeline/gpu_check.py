"""``make gpu-check``: training's own step and sampling on one accelerator, timed.

The step timed is ``train_model``'s (``train.setup_run`` builds the run from the config as the train
rule does, and ``train.train_step`` on ``run.batch(step)``: collation, schedule, clipping, EMAs,
neighbour lists), for each process of ``--processes`` at each batch size of ``--batches``, with
the config's network, process and training sections for ``--dataset`` (``config.model_config``;
MDShortcut starts from scratch here: a warm start changes its first weights, not a step's cost).
The neighbour-list share of the step is the time spent in ``model.graph``'s build function,
read with a device synchronisation around each call, over the time of the same steps (a second
pass: the synchronisations would slow the first one's timing). Then sampling of ``--samples``
structures at n_s = 1 and 250 for each process (``sample.generate``; a long run shortened by
``--long-steps`` is projected to n_s by its steps). The structures are diamond Si with 0.3 Å
Gaussian noise, not a melt-quench: the cost depends on the graph (edges per atom), not on the
order in the cell.

Nothing here imports the MD stack (LAMMPS), so it runs on a node that has only torch and the
package's Python dependencies. ``--csv`` writes the figures as one row per (process, batch).
The test suite runs it on the CPU at a tiny size, with LAMMPS unimportable.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from ase.build import bulk

from mdshortcut.config import model_config, resolve_device, synchronize
from mdshortcut.data.ghost import build_tensors, save_tensors
from mdshortcut.io import write_csv
from mdshortcut.model import graph
from mdshortcut.train import TrainingRun, setup_run, train_step

PAPER_STEPS = 200_000  # config/paper.yaml training.steps
PAPER_SAMPLES = 10_000  # config/paper.yaml a-Si sampling.n_samples per n_s
BUILDERS = ("build_neighbours", "_build")  # model.graph's neighbour-list build, by the names it has had


def silicon(n_structures: int, repeat: tuple[int, int, int], rho_max: float, seed: int) -> dict:
    """The tensors dict of ``n_structures`` diamond Si supercells (``repeat`` conventional
    cells) with 0.3 Å noise, ghost-padded to ``rho_max``."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_structures):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.positions += rng.normal(0, 0.3, atoms.positions.shape)
        frames.append(atoms)
    return build_tensors(frames, ["Si"], rho_max, [], np.zeros((n_structures, 0)), "gpu-check", seed)


class _NeighbourClock:
    """Seconds spent in ``model.graph``'s neighbour-list build while installed (device
    synchronised before and after each call, so that queued work is not counted in it)."""

    def __init__(self, device: torch.device):
        self.name = next(n for n in BUILDERS if hasattr(graph, n))
        self.device, self.seconds, self.calls = device, 0.0, 0
        self.original: Callable = getattr(graph, self.name)

    def __enter__(self) -> _NeighbourClock:
        def timed(*args, **kwargs):
            synchronize(self.device)
            start = time.perf_counter()
            out = self.original(*args, **kwargs)
            synchronize(self.device)
            self.seconds += time.perf_counter() - start
            self.calls += 1
            return out

        setattr(graph, self.name, timed)
        return self

    def __exit__(self, *exc) -> None:
        setattr(graph, self.name, self.original)


def _steps(run: TrainingRun, first: int, n: int) -> float:
    """Seconds of training steps ``first`` .. ``first + n - 1`` of ``run``, device synchronised."""
    synchronize(run.device)
    start = time.perf_counter()
    for step in range(first, first + n):
        train_step(run.learner, run.batch(step), step, run.generator(step))
    synchronize(run.device)
    seconds = time.perf_counter() - start
    run.learner.health.check()
    return seconds


def _config(args: argparse.Namespace, process: str, batch: int) -> dict:
    """train_model's config of one ``--dataset`` model from ``--config``, at batch size ``batch``."""
    raw = yaml.safe_load(Path(args.config).read_text()) or {}
    cfg = model_config({"model": {}, "process": {}, "seed": args.seed, **raw}, args.dataset, process)
    network = {k: v for k, v in (("n_layers", args.layers), ("hidden", args.hidden)) if v is not None}
    cfg["model"] = {**cfg["model"], **network}
    cfg["training"] = {**cfg["training"], "batch_size": batch, "shortcut_init": "scratch"}
    return cfg | {"device": args.device, "seed": args.seed}


def _sampling(run: TrainingRun, args: argparse.Namespace, data: dict, rows: list[dict]) -> None:
    """Time sampling ``args.samples`` structures with ``run``'s EMA network at n_s = 1 and 250."""
    from mdshortcut.sample import LoadedModel, generate

    net = run.learner.ema.module.eval()
    elements, rho_max = data["elements"], data["rho_max"]  # ghost class included
    loaded = LoadedModel(net, run.learner.proc, elements, [], {}, rho_max, "gpu-check", 0, run.device)
    cells = data["cell"][:1].float().expand(args.samples, 3, 3).contiguous()
    generate(loaded, cells[:1], 1, seed=args.seed, device=run.device, batch_size=1)  # warm-up
    for n_steps in (1, 250):
        if run.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(run.device)
        run_steps = min(n_steps, args.long_steps)
        synchronize(run.device)
        start = time.perf_counter()
        generate(loaded, cells, run_steps, seed=args.seed, device=run.device, batch_size=args.samples)
        synchronize(run.device)
        seconds = (time.perf_counter() - start) * n_steps / run_steps
        rows.append({"what": "sample", "process": run.process, "n_s": n_steps, "seconds": seconds, **_peak(run.device)})
        print(
            f"sampling {args.samples} {run.process} structures at n_s = {n_steps}: {seconds:.3f} s; "
            f"{PAPER_SAMPLES} samples (paper) -> {seconds * PAPER_SAMPLES / args.samples / 3600:.3f} h"
        )


def _peak(device: torch.device) -> dict[str, float]:
    return {"peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")}


def run(args: argparse.Namespace) -> pd.DataFrame:
    """Time training steps and sampling as the module docstring says; print the figures and
    return them (one row per training (process, batch) and per sampling (process, n_s))."""
    device = torch.device(resolve_device(args.device))
    args.device = str(device)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for process in args.processes:
            for batch in args.batches:
                data = silicon(batch, tuple(args.repeat), args.rho_max, args.seed)
                tensors = Path(tmp) / "tensors.pt"
                save_tensors(tensors, data)
                config = _config(args, process, batch)
                run = setup_run(tensors, Path(tmp) / "ckpt", process, "none", config, args.threads)
                _steps(run, 0, args.warmup)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                seconds = _steps(run, args.warmup, args.steps) / args.steps
                peak = _peak(device)
                with _NeighbourClock(device) as clock:
                    timed = _steps(run, args.warmup + args.steps, args.steps)
                rows.append(
                    {
                        "what": "train",
                        "process": process,
                        "batch": batch,
                        "nodes": int(data["n_atoms"].sum()),
                        "seconds": seconds,
                        "neighbour_s": clock.seconds / args.steps,
                        "neighbour_share": clock.seconds / timed,
                        "neighbour_calls": clock.calls / args.steps,
                        **peak,
                    }
                )
                net = f"{run.model_cfg.n_layers} x {run.model_cfg.hidden} network"
                print(
                    f"{process} training at batch {batch} ({rows[-1]['nodes']} nodes, {net}) on {device}: "
                    f"{seconds:.4f} s/step, neighbour lists {100 * rows[-1]['neighbour_share']:.0f}% of a step "
                    f"({clock.name}), peak memory {peak['peak_gib']:.2f} GiB; "
                    f"{PAPER_STEPS} steps (paper) -> {seconds * PAPER_STEPS / 3600:.2f} h"
                )
            _sampling(run, args, data, rows)
    table = pd.DataFrame(rows)
    first = ["what", "process", "batch", "n_s"]
    table = table[first + [c for c in table.columns if c not in first]]
    table = table.astype({"batch": "Int64", "n_s": "Int64", "nodes": "Int64", "neighbour_calls": "float"})
    table.insert(0, "device", torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    table.insert(1, "torch", torch.__version__)
    if args.csv:
        write_csv(args.csv, table)
    return table


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdshortcut.pipeline.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cpu")
    p.add_argument("--config", default="config/config.yaml", help="config whose model, process and training to time")
    p.add_argument("--dataset", default="a-si", help="the config's dataset whose training section is used")
    p.add_argument("--processes", nargs="+", default=["sde", "shortcut"], help="processes to time")
    p.add_argument("--batches", type=int, nargs="+", default=[32, 128], help="structures per training step")
    p.add_argument("--steps", type=int, default=50, help="timed training steps (per pass)")
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first")
    p.add_argument("--samples", type=int, default=64, help="structures sampled per run")
    p.add_argument("--long-steps", type=int, default=250, help="n_s of the long sampling run (250; fewer: projected)")
    p.add_argument("--repeat", type=int, nargs=3, default=[2, 2, 2], help="diamond cells per structure (2 2 2: 64 Si)")
    p.add_argument("--rho-max", type=float, default=0.06, help="nodes per Å^3")
    p.add_argument("--layers", type=int, default=None, help="network layers (default: the config's)")
    p.add_argument("--hidden", type=int, default=None, help="hidden width (default: the config's)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: the config's training.threads)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", default=None, help="write the figures to this CSV (e.g. results/reference/bench/gpu.csv)")
    return p


def main(argv: list[str] | None = None) -> pd.DataFrame:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
