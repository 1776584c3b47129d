"""Sampling sweeps: which runs a dataset gets, their cells and targets, timed generation.

A *run* is one model sampled at one n_s. A dataset without ``sampling.targets`` (a-Si) is
sampled unconditionally: ``n_samples`` cells drawn (seeded) from its training structures.
A dataset with targets (a-SiO2, inverse design, paper §3.4) gets, for each target property,
``n_samples`` targets linearly spaced over the configured range in cubic cells of edge
``sampling.cell`` Å, the other properties null; only models conditioned on that property
(or on ``all``) take part. A run's name is ``{process}-{conditioning}`` or, for inverse
design, ``{process}-{conditioning}/{property}``.

Runs are split into shards of ``samples_per_shard`` samples (separate jobs, merged in order).
Each shard times its generation after a warm-up call, excluding model loading; the merged
sidecar sums the shards' times. Times in s, cells in Å.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from mdshortcut.config import build_section, resolve_device, synchronize
from mdshortcut.io import atomic_path, read_structures, write_structures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingConfig:
    """A dataset's ``sampling`` section (defaults = the schema's).

    n_steps: the n_s of the sweep; cell: edge of the cubic cells of inverse design, Å (None:
    cells of the data); targets: property -> (low, high) range of its targets; batch_size:
    structures generated together.
    """

    n_steps: tuple[int, ...] = (1, 10)
    n_samples: int = 16
    samples_per_shard: int = 64
    batch_size: int = 32
    cell: float | None = None
    targets: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Mapping) -> SamplingConfig:
        """From a dataset's (schema-validated) ``sampling`` mapping; unknown keys are an error."""
        s = dict(section)
        s["n_steps"] = tuple(s.get("n_steps", cls.n_steps))
        s["targets"] = {p: tuple(r) for p, r in s.get("targets", {}).items()}
        return build_section(cls, s, "sampling")

    @property
    def inverse_design(self) -> bool:
        return bool(self.targets)

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_samples / self.samples_per_shard)

    def shard(self, k: int) -> range:
        """Sample indices of shard k."""
        if not 0 <= k < self.n_shards:
            raise ValueError(f"shard {k} out of range (0..{self.n_shards - 1})")
        return range(k * self.samples_per_shard, min((k + 1) * self.samples_per_shard, self.n_samples))


def model_names(dataset_cfg: Mapping) -> list[str]:
    """The trained models of a dataset, '{process}-{conditioning}', in config order."""
    return [f"{process}-{cond}" for process, conds in dataset_cfg.get("models", {}).items() for cond in conds]


def can_target(model: str, prop: str) -> bool:
    """Whether a model takes ``prop`` as a condition (conditioned on it or on all labels)."""
    return model.split("-", 1)[1] in ("all", prop)


def sampling_runs(dataset_cfg: Mapping) -> list[str]:
    """Run names of a dataset: 'ode-none' (unconditional) or 'ode-all/shear_modulus'."""
    cfg = SamplingConfig.from_config(dataset_cfg.get("sampling", {}))
    models = model_names(dataset_cfg)
    if not cfg.inverse_design:
        return models
    return [f"{m}/{p}" for p in cfg.targets for m in models if can_target(m, p)]


def run_stems(dataset_cfg: Mapping) -> list[str]:
    """'{run}/ns{n_s}' for every run and n_s of a dataset (the sample files without extension)."""
    cfg = SamplingConfig.from_config(dataset_cfg.get("sampling", {}))
    return [f"{run}/ns{n_s}" for run in sampling_runs(dataset_cfg) for n_s in cfg.n_steps]


def split_run(run: str) -> tuple[str, str | None]:
    """'ode-all/ring_size' -> ('ode-all', 'ring_size'); 'ode-none' -> ('ode-none', None)."""
    model, _, prop = run.partition("/")
    return model, prop or None


def shard_seed(seed: int, *keys: object) -> int:
    """A seed derived from the config seed and the names of a job (stable across runs)."""
    return zlib.crc32("/".join(map(str, (seed, *keys))).encode()) & 0x7FFFFFFF


def target_values(low: float, high: float, n: int) -> np.ndarray:
    """n targets linearly spaced from low to high (inclusive), (n,)."""
    return np.linspace(low, high, n)


def draw_cells(structures: Sequence[Atoms], n: int, seed: int) -> np.ndarray:
    """n cells (n, 3, 3) Å drawn from the structures' cells: without replacement while n ≤ N."""
    if not structures:
        raise ValueError("no training structures to draw sampling cells from")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(structures), size=n, replace=n > len(structures))
    return np.stack([structures[i].cell.array for i in idx])


def write_cells(structures: str | os.PathLike, cfg: SamplingConfig, seed: int, out: str | os.PathLike) -> None:
    """The sampling cells of an unconditional dataset, drawn from its structures, as .npy."""
    frames = read_structures(structures)
    cells = draw_cells(frames, cfg.n_samples, seed)
    with atomic_path(out) as tmp:
        np.save(tmp, cells)
    log.info("%d cells drawn from the %d structures of %s", cfg.n_samples, len(frames), structures)


def plan(
    cfg: SamplingConfig, prop: str | None, cells: str | os.PathLike | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cells (n_samples, 3, 3) Å and targets {prop: (n_samples,)} of every sample of a run.

    Inverse design: cubic cells of edge ``cfg.cell`` and linearly spaced targets of ``prop``;
    unconditional: the cells saved by ``write_cells`` and no targets.
    """
    if prop is None:
        if cells is None:
            raise ValueError("an unconditional run needs the cells file")
        return np.load(cells), {}
    if prop not in cfg.targets:
        raise ValueError(f"no sampling target range for {prop!r} (targets: {sorted(cfg.targets)})")
    if cfg.cell is None:
        raise ValueError("inverse design needs sampling.cell (edge of the cubic cells, Å)")
    edge_cells = np.broadcast_to(np.eye(3) * cfg.cell, (cfg.n_samples, 3, 3)).copy()
    return edge_cells, {prop: target_values(*cfg.targets[prop], cfg.n_samples)}


def sample_shard(
    model_path: str | os.PathLike,
    run: str,
    n_steps: int,
    shard: int,
    cfg: SamplingConfig,
    cells: str | os.PathLike | None,
    seed: int,
    device: str,
    out_structures: str | os.PathLike,
    out_timing: str | os.PathLike,
    dataset: str,
    potential: str,
    labels: Sequence[str],
    threads: int = 1,
    progress: bool = False,
    ghosts: bool = True,
) -> None:
    """Generate shard ``shard`` of a run and time it (``threads``: CPU threads of torch;
    ``progress``: a progress bar on stderr).

    The model file must be one of ``dataset`` (its ``potential``'s elements, conditioned as the
    run's name says on its ``labels``, with ghosts or without as ``ghosts`` says:
    ``mdshortcut.sample.check_model``), else CheckpointError.

    The model is loaded and warmed up (one structure, one step) before the clock starts; the
    timed call generates the whole shard in batches of ``cfg.batch_size``. Each frame's
    ``info`` gets model, n_steps, sample (index in the run) and, for inverse design,
    target_property and target_value. Writes the frames (extxyz, ghosts removed) and a timing
    JSON (seconds, n_samples, device).
    """
    import torch

    from mdshortcut.data.dataset import conditioning_properties
    from mdshortcut.io import GHOST
    from mdshortcut.md.potentials import get_potential
    from mdshortcut.sample import check_model, generate, load_model

    model_name, prop = split_run(run)
    all_cells, all_targets = plan(cfg, prop, cells)
    idx = cfg.shard(shard)
    device = resolve_device(device)
    cell_t = torch.as_tensor(all_cells[idx.start : idx.stop], dtype=torch.float32)
    targets = {p: torch.as_tensor(v[idx.start : idx.stop], dtype=torch.float32) for p, v in all_targets.items()} or None
    torch.set_num_threads(threads)
    log.info("%s n_s=%d shard %d: samples %d..%d on %s", run, n_steps, shard, idx.start, idx.stop - 1, device)

    model = load_model(model_path, device)
    properties = conditioning_properties(model_name.split("-", 1)[1], labels)
    check_model(model, model_path, dataset, [GHOST, *get_potential(potential).elements], properties, ghosts)
    warm = {p: v[:1] for p, v in targets.items()} if targets else None
    generate(model, cell_t[:1], 1, warm, seed=seed, device=device, batch_size=1, progress=False)
    synchronize(device)
    start = time.perf_counter()
    frames = generate(
        model, cell_t, n_steps, targets, seed=seed, device=device, batch_size=cfg.batch_size, progress=progress
    )
    synchronize(device)
    seconds = time.perf_counter() - start
    log.info("generated %d structures in %.3f s", len(frames), seconds)

    for i, atoms in zip(idx, frames):
        atoms.info.update({"model": model_name, "n_steps": n_steps, "sample": i})
        if prop is not None:
            atoms.info.update({"target_property": prop, "target_value": float(all_targets[prop][i])})
    write_structures(out_structures, frames)
    with atomic_path(out_timing) as tmp:
        tmp.write_text(json.dumps({"seconds": seconds, "n_samples": len(frames), "device": device}))


def write_run_timing(
    run: str,
    dataset: str,
    n_steps: int,
    timings: Sequence[str | os.PathLike],
    n_frames: int,
    out: str | os.PathLike,
) -> dict:
    """A run's timing sidecar from its shards' timings (``n_frames``: the merged run's count).

    The sidecar (JSON) holds dataset, model, property, n_steps, n_samples, device, seconds
    (sum of the shards' generation times), seconds_per_sample, seconds_per_step (the whole
    run's time per sampling step), seconds_per_10k (per 10,000 samples) and the shards' times.
    """
    parts = [json.loads(Path(p).read_text()) for p in timings]
    seconds = sum(p["seconds"] for p in parts)
    n = sum(p["n_samples"] for p in parts)
    if n != n_frames:
        raise ValueError(f"{run} n_s={n_steps}: timings count {n} samples, shards hold {n_frames}")
    model, prop = split_run(run)
    sidecar = {
        "dataset": dataset,
        "model": model,
        "property": prop,
        "n_steps": n_steps,
        "n_samples": n,
        "device": ", ".join(sorted({p["device"] for p in parts})),
        "seconds": seconds,
        "seconds_per_sample": seconds / n,
        "seconds_per_step": seconds / n_steps,
        "seconds_per_10k": seconds / n * 10_000,
        "shard_seconds": [p["seconds"] for p in parts],
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=1))
    log.info(
        "%s n_s=%d: %d samples from %d shards, %.3f s on %s", run, n_steps, n, len(parts), seconds, sidecar["device"]
    )
    return sidecar
