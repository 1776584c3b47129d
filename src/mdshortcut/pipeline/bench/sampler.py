"""The sampler benchmark: whole sampling runs of each process at chosen n_s (throughput, and
time relative to the SDE at n_s = 250)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
import torch

from mdshortcut.config import resolve_device, synchronize
from mdshortcut.generative import ProcessConfig, make_process
from mdshortcut.model import ModelConfig
from mdshortcut.pipeline.bench.common import SamplerBench, bench_denoiser


def sampler_benchmark(
    sizes: Sequence[tuple[str, int, ModelConfig]],
    sampler: SamplerBench,
    process_config: ProcessConfig,
    device: str = "cpu",
    seed: int = 0,
) -> pd.DataFrame:
    """Time whole sampling runs (``sample.generate``, as in the DAG) of every process at each
    of its ``sampler.steps`` levels, for each size (name, nodes per structure, network).

    The networks are untrained (``bench_denoiser``), so the time per step is that of a trained
    model of the same size; the structures are not meaningful. Each run generates
    ``sampler.n_structures`` structures in cubic cells holding ``n_atoms`` nodes at
    ``sampler.rho_max``, after a warm-up run of one structure and one step. One row per
    (size, process, n_s): best and raw seconds over ``sampler.repeats``, structure-steps per
    second, seconds per structure, and ``time_vs_sde_max``: seconds relative to the SDE run
    with the most steps at the same size (n_s = 250 by default; NaN without SDE runs).
    """
    from mdshortcut.sample import LoadedModel, generate

    dev = torch.device(resolve_device(device))
    rows = []
    for name, n_atoms, model_config in sizes:
        edge = ((n_atoms + 0.5) / sampler.rho_max) ** (1 / 3)  # floor(rho_max · edge^3) = n_atoms
        cells = torch.eye(3).expand(sampler.n_structures, 3, 3) * edge
        for process_name, levels in sampler.steps.items():
            process = make_process(process_name, process_config)
            net = bench_denoiser(model_config, 2, process.n_levels, seed).to(dev)
            model = LoadedModel(net, process, ["X", "Si"], [], {}, sampler.rho_max, "bench", 0, dev)
            generate(model, cells[:1], 1, seed=seed, device=dev, batch_size=1)  # warm-up
            for n_steps in levels:
                times = []
                for r in range(sampler.repeats):
                    synchronize(dev)
                    start = time.perf_counter()
                    generate(model, cells, n_steps, seed=seed + r, device=dev, batch_size=sampler.n_structures)
                    synchronize(dev)
                    times.append(time.perf_counter() - start)
                rows.append(
                    {
                        "size": name,
                        "n_atoms": n_atoms,
                        "n_layers": model_config.n_layers,
                        "hidden": model_config.hidden,
                        "process": process_name,
                        "n_steps": n_steps,
                        "n_structures": sampler.n_structures,
                        "device": str(dev),
                        "threads": torch.get_num_threads(),
                        "seconds": min(times),
                        "seconds_raw": " ".join(f"{t:.4f}" for t in times),
                    }
                )
    table = pd.DataFrame(rows)
    table["structure_steps_per_s"] = table["n_structures"] * table["n_steps"] / table["seconds"]
    table["seconds_per_structure"] = table["seconds"] / table["n_structures"]
    sde = table[table["process"] == "sde"].sort_values("n_steps").groupby("size")["seconds"].last()
    table["time_vs_sde_max"] = table["seconds"] / table["size"].map(sde)
    return table
