"""Benchmarks of the pipeline's computational kernels (one function per benchmark, one CSV each).

``model_benchmark``: the cost of one sampling step of the denoiser, optimised paths against a
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

``train_benchmark``: CPU seconds of training steps, fused EGNN path against the straightforward
one; ``sampler_benchmark``: whole sampling runs of each process at chosen n_s (throughput, and
time relative to the SDE at n_s = 250); ``md_benchmark``: where a melt-quench replica's wall
time goes (LAMMPS vs Python); ``properties_benchmark``: relaxations and full labels per minute.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from mdshortcut.config import build_section, resolve_device
from mdshortcut.data.dataset import Structures
from mdshortcut.generative import ProcessConfig, make_process
from mdshortcut.io import atomic_path
from mdshortcut.md.melt_quench import ReplicaFailure, replica_seed, run_replica
from mdshortcut.md.protocol import MeltQuench
from mdshortcut.model import Batch, Denoiser, ModelConfig, NeighbourCache, wrap
from mdshortcut.properties.elastic import relax
from mdshortcut.properties.labels import PropertiesConfig, label_structure, read_checked

DENSITY = 0.05  # atoms / Å^3, amorphous silicon
STEP_DISPLACEMENT = 0.05  # Å, standard deviation per Cartesian component and sampling step
AGREEMENT_RTOL = 1e-4  # largest allowed output difference between paths, relative to the largest output


class BenchmarkError(RuntimeError):
    """A benchmarked path does not compute the same outputs as the straightforward one."""


@dataclass
class SamplerSize:
    """One system size of the sampler benchmark: ``n_atoms`` nodes (atoms + ghosts) per
    structure, on the config's network (``model="config"``) or the bench's (``"bench"``)."""

    name: str
    n_atoms: int
    model: str = "config"


@dataclass
class SamplerBench:
    """The ``bench.sampler`` section: structures per timed batch, repeats, node density
    rho_max (per Å^3), n_s levels per process, and the sizes."""

    n_structures: int = 4
    repeats: int = 1
    rho_max: float = 0.06
    steps: dict[str, list[int]] = field(default_factory=lambda: {"ode": [1, 250], "sde": [1, 250], "shortcut": [1, 5]})
    sizes: list[SamplerSize] = field(default_factory=lambda: [SamplerSize("default", 76, "config")])


@dataclass
class TrainBench:
    """The ``bench.train`` section: structures per training step, timed steps per repeat, and
    the processes timed (at every size of ``bench.sampler.sizes``)."""

    batch_size: int = 4
    steps: int = 3
    processes: list[str] = field(default_factory=lambda: ["sde", "shortcut"])


@dataclass
class BenchConfig:
    """The ``bench`` config section: timing repeats, torch/LAMMPS threads, model benchmark
    sizes (atoms per structure) and network, the sampler and training benchmarks, and the
    number of dataset structures the properties benchmark relaxes."""

    repeats: int = 3
    threads: int = 1
    n_atoms: list[int] = field(default_factory=lambda: [256, 1024])
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerBench = field(default_factory=SamplerBench)
    train: TrainBench = field(default_factory=TrainBench)
    structures: int = 16

    @classmethod
    def from_dict(cls, d: Mapping) -> BenchConfig:
        """Build from the (schema-validated) ``bench`` mapping."""
        d = dict(d)
        if "model" in d:
            d["model"] = ModelConfig.from_dict(d["model"])
        if "sampler" in d:
            sampler = dict(d["sampler"])
            if "sizes" in sampler:
                sampler["sizes"] = [build_section(SamplerSize, s, "bench sampler size") for s in sampler["sizes"]]
            d["sampler"] = build_section(SamplerBench, sampler, "bench sampler config")
        if "train" in d:
            d["train"] = build_section(TrainBench, d["train"], "bench train config")
        return build_section(cls, d, "bench config")


def bench_denoiser(model_config: ModelConfig, n_elements: int, n_levels: int = 0, seed: int = 0) -> Denoiser:
    """An untrained denoiser (eval mode, no properties) whose position outputs are of order
    1 Å, as after training (the initialisation gives ~0.01 Å, under which atoms would barely
    move and neighbour lists never be rebuilt)."""
    torch.manual_seed(seed)
    model = Denoiser(model_config, n_elements, properties=[], n_levels=n_levels).eval()
    with torch.no_grad():
        for layer in model.egnn.layers:
            layer.coord.last.weight.normal_(0, 0.25 / model_config.hidden**0.5)
    return model


def random_batch(n_atoms: int, n_structures: int, density: float, generator: torch.Generator) -> Batch:
    """Cubic cells of edge (n_atoms / density)^(1/3) Å with uniformly random positions (Å)."""
    length = (n_atoms / density) ** (1 / 3)
    cells = torch.eye(3).expand(n_structures, 3, 3) * length
    positions = [torch.rand(n_atoms, 3, generator=generator) * length for _ in range(n_structures)]
    return Batch.from_structures(cells.contiguous(), positions)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    _sync(e.device)
    start = time.perf_counter()
    for _ in range(n_steps):
        noise = torch.randn(positions.shape, generator=gen, device=positions.device)
        positions = wrap(positions + STEP_DISPLACEMENT * noise, batch.cell, batch.batch)
        step_batch = Batch(batch.cell, positions, batch.batch, batch.n_atoms)
        sampling_step(model, step_batch, e, t, straightforward, cache)
    _sync(e.device)
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
                    _sync(dev)
                    start = time.perf_counter()
                    generate(model, cells, n_steps, seed=seed + r, device=dev, batch_size=sampler.n_structures)
                    _sync(dev)
                    times.append(time.perf_counter() - start)
                rows.append({
                    "size": name, "n_atoms": n_atoms, "n_layers": model_config.n_layers, "hidden": model_config.hidden,
                    "process": process_name, "n_steps": n_steps, "n_structures": sampler.n_structures,
                    "device": str(dev), "threads": torch.get_num_threads(), "seconds": min(times),
                    "seconds_raw": " ".join(f"{t:.4f}" for t in times),
                })  # fmt: skip
    table = pd.DataFrame(rows)
    table["structure_steps_per_s"] = table["n_structures"] * table["n_steps"] / table["seconds"]
    table["seconds_per_structure"] = table["seconds"] / table["n_structures"]
    sde = table[table["process"] == "sde"].sort_values("n_steps").groupby("size")["seconds"].last()
    table["time_vs_sde_max"] = table["seconds"] / table["size"].map(sde)
    return table


def _training_batch(n_atoms: int, batch_size: int, rho_max: float, n_elements: int, generator) -> Structures:
    """Clean training structures: ``random_batch`` cells at ``rho_max`` and random one-hot
    element classes (ghosts included); no properties."""
    graph = random_batch(n_atoms, batch_size, rho_max, generator)
    classes = torch.randint(0, n_elements, (len(graph.positions),), generator=generator)
    return Structures(graph, torch.nn.functional.one_hot(classes, n_elements).float(), {})


def _trainer(model: Denoiser, process):
    """One training step as ``train_model`` takes it (process loss with the EMA network's
    targets, backward, gradient clipping at 1, AdamW, EMA update) -> step(batch, seed)."""
    from torch.optim.swa_utils import AveragedModel

    from mdshortcut.train import ema_update_fn

    ema = AveragedModel(model, multi_avg_fn=ema_update_fn(0.999))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(batch: Structures, seed: int) -> None:
        loss, _ = process.loss(model, batch, torch.Generator().manual_seed(seed), target_model=ema.module)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema.update_parameters(model)

    return step


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
    seed: int = 0,
) -> pd.DataFrame:
    """CPU seconds of training steps (``_trainer``) of each process in ``bench.train`` at each
    size (name, nodes per structure, network): the fused EGNN path against the straightforward
    one (``Denoiser.straightforward``), with the same weights, batches and random draws.

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
            steps = {path: _trainer(model, process) for path, model in paths.items()}
            for step in steps.values():
                step(batches[0], seed)  # warm-up
            seconds = {path: [] for path in paths}
            for r in range(bench.repeats):
                for path, step in steps.items():
                    start = time.process_time()
                    for k, batch in enumerate(batches[1:]):
                        step(batch, seed + 1000 * r + k)
                    seconds[path].append(time.process_time() - start)
            samples = cfg.batch_size * cfg.steps
            rows.append({
                "size": name, "process": process_name, "samples_per_cpu_second": samples / min(seconds["fused"]),
                "reference_samples_per_cpu_second": samples / min(seconds["reference"]),
                "n_atoms": n_atoms, "n_layers": model_config.n_layers, "hidden": model_config.hidden,
                "batch_size": cfg.batch_size, "steps": cfg.steps, "threads": torch.get_num_threads(),
                "max_rel_grad_diff": diff,
                "cpu_s_raw": " ".join(f"{a:.3f}/{b:.3f}" for a, b in zip(seconds["fused"], seconds["reference"])),
            })  # fmt: skip
    table = pd.DataFrame(rows)
    table.insert(4, "speedup", table["samples_per_cpu_second"] / table["reference_samples_per_cpu_second"])
    return table


def md_benchmark(melt_quenches: Sequence[MeltQuench], seed: int = 0) -> pd.DataFrame:
    """Run replica 0 of each dataset's melt-quench with its configured protocol and split
    its wall time (s) into LAMMPS ``run``/``minimize`` and the Python around them (setup,
    commands, snapshots, frame read-back). One row per dataset; a failed replica keeps its
    row with the reason."""
    rows = []
    for mq in melt_quenches:
        row = {"dataset": mq.dataset, "potential": mq.potential}
        try:
            result = run_replica(mq, 0, 0, replica_seed(seed, mq.dataset, 0, 0))
        except ReplicaFailure as exc:
            rows.append({**row, "reason": str(exc)})
            continue
        python_s = result.wall_s - result.lammps_s
        rows.append({
            **row, "n_atoms": len(result.frames[0]), "frames": len(result.frames), "wall_s": result.wall_s,
            "lammps_s": result.lammps_s, "python_s": python_s, "python_overhead_pct": 100 * python_s / result.wall_s,
            "reason": "",
        })  # fmt: skip
    return pd.DataFrame(rows)


def properties_benchmark(
    datasets: Mapping[str, tuple[str | os.PathLike, str]], cfg: PropertiesConfig, n_structures: int
) -> pd.DataFrame:
    """Relax the first ``n_structures`` structures of each dataset (name -> (extxyz path,
    potential)) as the properties stage does, then label them in full (relaxation, relaxed-
    ion shear modulus, rings). One row per dataset: mean atoms, seconds per relaxation and
    per label, relaxations and labels per minute, converged relaxations."""
    rows = []
    for name, (path, potential) in datasets.items():
        frames = read_checked(path, potential)[:n_structures]
        start = time.perf_counter()
        converged = sum(relax(a, potential, cfg.fmax, cfg.max_steps).converged for a in frames)
        relax_s = (time.perf_counter() - start) / len(frames)
        start = time.perf_counter()
        for atoms in frames:
            label_structure(atoms, potential, cfg)
        label_s = (time.perf_counter() - start) / len(frames)
        rows.append({
            "dataset": name, "potential": potential, "n_structures": len(frames),
            "mean_atoms": sum(map(len, frames)) / len(frames), "converged": converged,
            "relax_s": relax_s, "relaxations_per_min": 60 / relax_s, "label_s": label_s, "labels_per_min": 60 / label_s,
        })  # fmt: skip
    return pd.DataFrame(rows)
