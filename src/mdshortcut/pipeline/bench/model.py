"""The model benchmark: the cost of one sampling step of the denoiser, optimised paths against a
straightforward version of the same network with the same weights, and how the cost per
structure grows with the number of atoms at a fixed density.

- straightforward: each structure on its own, a fresh neighbour list every step, Eq. 13
  written out directly (``[H_i, H_j, e_ij]`` concatenated per edge; ``EGNN.forward_reference``);
- eager: all structures of the batch in one graph, the neighbour list cached with a skin
  between steps (``NeighbourCache``), per-node first edge maps and the last edge map moved
  behind the aggregation (``EGNN.forward``);
- compiled: the eager path with the per-edge kernels under ``torch.compile`` (optional,
  reported beside; the required ratios are those of the eager path).
Between steps every atom moves by a small Gaussian displacement and is wrapped back into its
cell, as in a sampling run. Timings are wall-clock seconds per sampling step of the batch;
each repeat is a short sampling run from the same start with a fresh neighbour cache.
"""

from __future__ import annotations

import copy
import math
import time

import pandas as pd
import torch

from mdshortcut.config import resolve_device, synchronize
from mdshortcut.io import atomic_path
from mdshortcut.model import Batch, Denoiser, ModelConfig, NeighbourCache, wrap
from mdshortcut.pipeline.bench.common import (
    AGREEMENT_RTOL,
    DENSITY,
    BenchConfig,
    BenchmarkError,
    bench_denoiser,
    random_batch,
)

STEP_DISPLACEMENT = 0.05  # Å, standard deviation per Cartesian component and sampling step


def _structures(batch: Batch) -> list[tuple[Batch, slice]]:
    """Each structure of ``batch`` as a batch of one, with its atoms' slice."""
    starts = (torch.cumsum(batch.n_atoms, 0) - batch.n_atoms).tolist()
    out = []
    for b, (s, n) in enumerate(zip(starts, batch.n_atoms.tolist())):
        sl = slice(s, s + n)
        out.append(
            (Batch(batch.cell[b : b + 1], batch.positions[sl], batch.batch[sl] - b, batch.n_atoms[b : b + 1]), sl)
        )
    return out


def sampling_step(model: Denoiser, batch: Batch, e, t, straightforward: bool, cache: NeighbourCache):
    """One denoiser evaluation of a sampling step: (x_out (N, 3) Å, e_out (N, n_elements)).

    straightforward: structure by structure, fresh neighbour lists, reference EGNN path;
    otherwise the whole batch as one graph with the neighbour ``cache``.
    """
    if not straightforward:
        return model(batch, e, t, neighbours=cache)
    outs = [
        model(single, e[sl], t[b : b + 1], straightforward=True)  # fresh neighbour list
        for b, (single, sl) in enumerate(_structures(batch))
    ]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def _run(model: Denoiser, batch: Batch, e, n_steps: int, straightforward: bool, seed: int) -> tuple[float, int]:
    """A short sampling run of ``n_steps`` steps from ``batch``: seconds per step, and the
    neighbour-list builds of the cached path (0 for the straightforward path)."""
    gen = torch.Generator(device=batch.positions.device).manual_seed(seed)
    t = torch.full((len(batch.cell),), 0.5, device=e.device)
    cache = model.new_neighbours()
    positions = batch.positions
    synchronize(e.device)
    start = time.perf_counter()
    for _ in range(n_steps):
        noise = torch.randn(positions.shape, generator=gen, device=positions.device)
        positions = wrap(positions + STEP_DISPLACEMENT * noise, batch.cell, batch.batch)
        step_batch = Batch(batch.cell, positions, batch.batch, batch.n_atoms)
        sampling_step(model, step_batch, e, t, straightforward, cache)
    synchronize(e.device)
    return (time.perf_counter() - start) / n_steps, cache.n_builds


def model_benchmark(
    model_config: ModelConfig,
    bench: BenchConfig,
    n_elements: int = 2,
    n_structures: int = 4,
    n_steps: int = 10,
    device: str = "cpu",
    compile: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Time sampling steps of the denoiser for each size in ``bench.n_atoms``.

    Each of ``bench.repeats`` rounds runs every path at every size (interleaved, so that a
    busy machine slows all alike); a run is ``n_steps`` steps of ``n_structures`` structures.
    One row per size: the best and raw seconds per step of each path (straightforward, eager,
    compiled if ``compile``); for each optimised path its largest output difference from the
    straightforward one relative to the largest output (BenchmarkError above AGREEMENT_RTOL)
    and its neighbour-list builds per run; mean edges per atom; and
    ``speedup_vs_straightforward``: best straightforward / best eager step time,
    ``scaling_1024_over_256``: eager cost per structure at 1024 vs 256 atoms (NaN unless both
    sizes are benchmarked), and the same for the compiled path (``*_compiled_*``).
    """
    dev = torch.device(resolve_device(device))
    model = bench_denoiser(model_config, n_elements, seed=seed).to(dev)
    paths = {"straightforward": model, "eager": model}
    if compile:
        paths["compiled"] = copy.deepcopy(model)
        paths["compiled"].compile_egnn()
    gen = torch.Generator().manual_seed(seed)
    inputs, rows = {}, {}
    with torch.inference_mode():
        for n_atoms in bench.n_atoms:
            batch = random_batch(n_atoms, n_structures, DENSITY, gen).to(dev)
            e = torch.randn(len(batch.positions), n_elements, generator=gen).to(dev)
            t = torch.full((n_structures,), 0.5, device=dev)
            cache = model.new_neighbours()
            reference = sampling_step(model, batch, e, t, True, cache)
            row = rows[n_atoms] = {
                "n_atoms": n_atoms,
                "n_structures": n_structures,
                "n_steps": n_steps,
                "device": str(dev),
                "threads": torch.get_num_threads(),
            }
            row["edges_per_atom"] = len(cache.edges(batch.positions, batch.cell, batch.batch)[0]) / len(batch.positions)
            for name in paths:
                if name != "straightforward":  # also the warm-up (compilation) of this path
                    out = sampling_step(paths[name], batch, e, t, False, cache)
                    diff = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(out, reference))
                    if not diff <= AGREEMENT_RTOL:
                        raise BenchmarkError(
                            f"{name} path differs from straightforward by {diff:.3g} (relative) at {n_atoms} atoms"
                        )
                    row[f"{name}_max_rel_diff"] = diff
                    row[f"{name}_neighbour_builds"] = 0
                row[f"{name}_s"] = []
            inputs[n_atoms] = (batch, e)
        for r in range(bench.repeats):
            for n_atoms, (batch, e) in inputs.items():
                row = rows[n_atoms]
                for name, net in paths.items():
                    seconds, builds = _run(net, batch, e, n_steps, name == "straightforward", seed + r)
                    row[f"{name}_s"].append(seconds)
                    if name != "straightforward":
                        row[f"{name}_neighbour_builds"] = max(row[f"{name}_neighbour_builds"], builds)
    for row in rows.values():
        for name in paths:
            times = row.pop(f"{name}_s")
            row[f"{name}_s_per_step"] = min(times)
            row[f"{name}_s_raw"] = " ".join(f"{x:.5f}" for x in times)
    table = pd.DataFrame(list(rows.values()))
    first = ["n_atoms", "speedup_vs_straightforward", "scaling_1024_over_256"]
    for name, suffix in [("eager", "")] + ([("compiled", "_compiled")] if compile else []):
        table[f"speedup{suffix}_vs_straightforward"] = table["straightforward_s_per_step"] / table[f"{name}_s_per_step"]
        per_structure = dict(zip(table["n_atoms"], table[f"{name}_s_per_step"]))  # same n_structures
        both = {256, 1024} <= per_structure.keys()
        table[f"scaling{suffix}_1024_over_256"] = per_structure[1024] / per_structure[256] if both else math.nan
    return table[first + [c for c in table.columns if c not in first]]


def write_model_benchmark(
    path,
    model_config: ModelConfig,
    bench: BenchConfig,
    device: str = "cpu",
    threads: int = 1,
    compile: bool = True,
    seed: int = 0,
    log=None,
) -> pd.DataFrame:
    """Run ``model_benchmark`` on ``threads`` CPU threads, write its table to the CSV ``path``
    atomically and append a short summary to the text file ``log`` (if given)."""
    torch.set_num_threads(threads)
    table = model_benchmark(model_config, bench, device=device, compile=compile, seed=seed)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    if log is not None:
        lines = [f"model {model_config}", f"bench {bench}, device {device}, threads {threads}, compile {compile}"]
        for row in table.itertuples():
            lines.append(
                f"{row.n_atoms} atoms: straightforward {row.straightforward_s_per_step:.4f} s/step, "
                f"optimised (eager) {row.speedup_vs_straightforward:.2f}x faster"
            )
        lines.append(f"cost per structure 1024 vs 256 atoms: {table['scaling_1024_over_256'].iloc[0]:.2f}")
        if compile:
            lines.append(
                f"compiled: {' '.join(f'{x:.2f}x' for x in table['speedup_compiled_vs_straightforward'])} faster, "
                f"scaling {table['scaling_compiled_1024_over_256'].iloc[0]:.2f}"
            )
        with open(log, "a") as fh:  # appended: the rule's log may hold the job's stderr already
            fh.write("\n".join(lines) + "\n")
    return table
