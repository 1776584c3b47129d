"""Sampling API: load a trained model file and generate structures from it.

    model = load_model("results/models/a-sio2/shortcut-all.pt", "cuda")
    frames = generate(model, cells, n_steps=5, targets={"shear_modulus": g})  # list[ase.Atoms]

A sample of cell C holds n_a = floor(rho_max · Vol(C)) atoms (the model's rho_max); ghosts
(class 0) are removed from the returned structures, whose positions are wrapped into the cell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from ase import Atoms
from tqdm import tqdm

from mdshortcut.checkpoint import CheckpointError, read_model
from mdshortcut.data.ghost import to_atoms
from mdshortcut.generative import Process, ProcessConfig, atom_counts, draw_prior, make_process
from mdshortcut.model import Denoiser, ModelConfig


@dataclass
class LoadedModel:
    """A trained model ready to sample: the EMA network (eval mode) on ``device``, its process,
    element classes, properties and their training statistics (property -> {mean, std, min,
    max}, physical units), rho_max (atoms/Å^3), dataset name, training steps and the typical
    training cell (3, 3) Å (None for model files written before it was stored)."""

    denoiser: Denoiser
    process: Process
    elements: list[str]
    properties: list[str]
    label_stats: dict[str, dict[str, float]]
    rho_max: float
    dataset: str
    steps: int
    device: torch.device
    typical_cell: torch.Tensor | None = None


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file written by training; CheckpointError (one line) if it is missing,
    corrupt, of another format version, or its weights do not fit its own configuration."""
    meta = read_model(path)
    try:
        process = make_process(meta["process"], ProcessConfig.from_dict(meta["process_config"]))
        denoiser = Denoiser(
            ModelConfig.from_dict(meta["model_config"]), len(meta["elements"]), meta["properties"], process.n_levels
        )
        denoiser.load_state_dict(meta["state_dict"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: the stored model cannot be rebuilt ({reason})") from None
    device = torch.device(device)
    return LoadedModel(
        denoiser.to(device).eval(), process, list(meta["elements"]), list(meta["properties"]),
        dict(meta["label_stats"]), float(meta["rho_max"]), str(meta["dataset"]), int(meta["steps"]), device,
        None if meta.get("typical_cell") is None else torch.as_tensor(meta["typical_cell"], dtype=torch.float64),
    )


def normalise_targets(
    model: LoadedModel, targets: Mapping[str, torch.Tensor] | None, n: int
) -> dict[str, torch.Tensor]:
    """Physical target values (name -> (n,), NaN = null) -> the network's normalised values."""
    targets = dict(targets or {})
    unknown = sorted(set(targets) - set(model.properties))
    if unknown:
        raise KeyError(
            f"target propert{'y' if len(unknown) == 1 else 'ies'} {unknown} unknown to this model "
            f"(it knows: {model.properties or 'none'})"
        )
    out = {}
    for name, values in targets.items():
        values = torch.as_tensor(values, dtype=torch.float32, device=model.device)
        if values.shape != (n,):
            raise ValueError(f"target {name}: expected shape ({n},) for {n} cells, got {tuple(values.shape)}")
        stats = model.label_stats[name]
        out[name] = (values - stats["mean"]) / stats["std"]
    return out


def generate(
    model: LoadedModel | str | os.PathLike,
    cells: torch.Tensor,
    n_steps: int,
    targets: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    progress: bool = False,
    flow: bool = False,
) -> list[Atoms]:
    """Generate one structure per cell in n_steps sampling steps (``flow``: n_steps
    deterministic Euler steps of the instantaneous network, ``Process.sample_flow``).

    cells (B, 3, 3) Å, row vectors; targets: property -> (B,) values in physical units (NaN
    or an absent property = null). Structures are generated ``batch_size`` at a time from
    one generator seeded with ``seed`` (the same seed and batch size give the same
    structures). Returns B periodic ``Atoms``, ghosts removed, positions wrapped.
    """
    if not isinstance(model, LoadedModel):
        model = load_model(model, device)
    elif model.device != torch.device(device):
        model.denoiser.to(device)
        model.device = torch.device(device)
    cells = torch.as_tensor(cells, dtype=torch.float32, device=model.device)
    if cells.ndim != 3 or cells.shape[1:] != (3, 3):
        raise ValueError(f"cells: expected shape (B, 3, 3), got {tuple(cells.shape)}")
    n_atoms = atom_counts(cells, model.rho_max).to(model.device)
    empty = torch.nonzero(n_atoms < 1).flatten().tolist()
    if empty:
        raise ValueError(f"cells {empty}: too small for one atom at rho_max = {model.rho_max} atoms/Å^3")
    y = normalise_targets(model, targets, len(cells))
    gen = torch.Generator(model.device).manual_seed(seed)
    n_el = len(model.elements)
    frames: list[Atoms] = []
    starts = range(0, len(cells), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, disable=not progress, desc=f"generate n_s={n_steps}", unit="batch"):
            part = slice(start, start + batch_size)
            prior = draw_prior(cells[part], n_atoms[part], n_el, {k: v[part] for k, v in y.items()}, gen)
            sampler = model.process.sample_flow if flow else model.process.sample
            out = sampler(model.denoiser, prior, n_steps, gen, model.denoiser.new_neighbours())
            counts = n_atoms[part].tolist()
            for cell, pos, cls in zip(
                prior.cell.cpu(), out.positions.cpu().split(counts), out.classes.cpu().split(counts)
            ):
                frames.append(to_atoms(cell, pos, cls, model.elements))
    return frames
