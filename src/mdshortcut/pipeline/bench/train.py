"""The training benchmark: CPU seconds of training's own step (``train.train_step``: the
configured loss, clipping, LR schedule and EMAs), fused EGNN path against the straightforward
one."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import pandas as pd
import torch

from mdshortcut.data.dataset import Structures
from mdshortcut.generative import ProcessConfig, make_process
from mdshortcut.model import Denoiser, ModelConfig
from mdshortcut.pipeline.bench.common import AGREEMENT_RTOL, BenchConfig, BenchmarkError, bench_denoiser, random_batch
from mdshortcut.train import Learner, TrainingConfig, train_step


def _training_batch(n_atoms: int, batch_size: int, rho_max: float, n_elements: int, generator) -> Structures:
    """Clean training structures: ``random_batch`` cells at ``rho_max`` and random one-hot
    element classes (ghosts included); no properties."""
    graph = random_batch(n_atoms, batch_size, rho_max, generator)
    classes = torch.randint(0, n_elements, (len(graph.positions),), generator=generator)
    return Structures(graph, torch.nn.functional.one_hot(classes, n_elements).float(), {})


def _gradient_difference(model: Denoiser, process, batch: Structures, seed: int) -> float:
    """Largest difference of the loss gradients of the two EGNN paths, relative to the largest
    gradient entry (same weights, batch and random draws)."""
    grads = []
    for straightforward in (False, True):
        model.zero_grad()
        model.straightforward = straightforward
        process.loss(model, batch, torch.Generator().manual_seed(seed))[0].backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    model.straightforward = False
    return ((grads[0] - grads[1]).abs().max() / grads[1].abs().max()).item()


def train_benchmark(
    sizes: Sequence[tuple[str, int, ModelConfig]],
    bench: BenchConfig,
    process_config: ProcessConfig,
    training_config: TrainingConfig,
    seed: int = 0,
) -> pd.DataFrame:
    """CPU seconds of training steps (``train_step`` under ``training_config``, at
    ``bench.train.batch_size``) of each process in ``bench.train`` at each size (name, nodes per
    structure, network): the fused EGNN path against the straightforward one
    (``Denoiser.straightforward``), with the same weights, batches and random draws.

    CPU time (``time.process_time``) and not wall time, so that a busy machine does not bias
    the ratio; each of ``bench.repeats`` rounds times both paths (interleaved) over
    ``bench.train.steps`` steps after one warm-up step; the best round counts. One row per
    (size, process): samples (structures) per CPU second of each path, ``speedup`` = fused /
    straightforward, and ``max_rel_grad_diff``, the gradient difference of the two paths on the
    first batch (BenchmarkError above AGREEMENT_RTOL).
    """
    cfg = bench.train
    rows = []
    for name, n_atoms, model_config in sizes:
        for process_name in cfg.processes:
            process = make_process(process_name, process_config)
            gen = torch.Generator().manual_seed(seed)
            batches = [
                _training_batch(n_atoms, cfg.batch_size, bench.sampler.rho_max, 2, gen) for _ in range(cfg.steps + 1)
            ]
            net = bench_denoiser(model_config, 2, process.n_levels, seed).train()
            diff = _gradient_difference(net, process, batches[0], seed)
            if not diff <= AGREEMENT_RTOL:
                raise BenchmarkError(f"training gradients of the fused path differ by {diff:.3g} (relative) at {name}")
            paths = {path: copy.deepcopy(net) for path in ("fused", "reference")}
            paths["reference"].straightforward = True
            learners = {path: Learner.new(model, process, training_config) for path, model in paths.items()}
            for learner in learners.values():
                train_step(learner, batches[0], 0, torch.Generator().manual_seed(seed))  # warm-up
            seconds = {path: [] for path in paths}
            for r in range(bench.repeats):
                for path, learner in learners.items():
                    start = time.process_time()
                    for k, batch in enumerate(batches[1:], start=1):
                        train_step(learner, batch, k, torch.Generator().manual_seed(seed + 1000 * r + k))
                    seconds[path].append(time.process_time() - start)
                    learner.health.check()
            samples = cfg.batch_size * cfg.steps
            rows.append(
                {
                    "size": name,
                    "process": process_name,
                    "samples_per_cpu_second": samples / min(seconds["fused"]),
                    "reference_samples_per_cpu_second": samples / min(seconds["reference"]),
                    "n_atoms": n_atoms,
                    "n_layers": model_config.n_layers,
                    "hidden": model_config.hidden,
                    "batch_size": cfg.batch_size,
                    "steps": cfg.steps,
                    "threads": torch.get_num_threads(),
                    "max_rel_grad_diff": diff,
                    "cpu_s_raw": " ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(seconds["fused"], seconds["reference"])),
                }
            )
    table = pd.DataFrame(rows)
    table.insert(4, "speedup", table["samples_per_cpu_second"] / table["reference_samples_per_cpu_second"])
    return table
