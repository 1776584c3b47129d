"""Sampling API: load a trained model file and generate structures from it.

    model = load_model("results/models/a-sio2/shortcut-all.pt", "cuda")
    frames = generate(model, cells, n_steps=5, targets={"shear_modulus": g})  # list[ase.Atoms]

A sample of cell C holds n_a = floor(rho_max · Vol(C)) atoms (the model's rho_max), or the
model's fixed ``atoms_per_sample`` if it was trained without ghosts (``LoadedModel.atom_counts``); ghosts
(class 0) are removed from the returned structures, whose positions are wrapped into the cell.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from ase import Atoms
from tqdm import tqdm

from mdshortcut.checkpoint import CheckpointError, read_model
from mdshortcut.data.ghost import sample_counts, to_atoms
from mdshortcut.generative import Process, ProcessConfig, draw_prior, make_process
from mdshortcut.model import Denoiser, ModelConfig


@dataclass
class LoadedModel:
    """A trained model ready to sample: the EMA network (eval mode) on ``device``, its process,
    element classes, properties and their training statistics (property -> {mean, std, min,
    max}, physical units), rho_max (atoms/Å^3), dataset name, training steps and the typical
    training cell (3, 3) Å (None for model files written before it was stored), and the fixed atom
    count of a model trained without ghosts (None: ghosts, n_a from rho_max)."""

    denoiser: Denoiser
    process: Process
    elements: list[str]
    properties: list[str]
    label_stats: dict[str, dict[str, float]]
    rho_max: float | None
    dataset: str
    steps: int
    device: torch.device
    typical_cell: torch.Tensor | None = None
    atoms_per_sample: int | None = None

    def atom_counts(self, cells: torch.Tensor) -> torch.Tensor:
        """Atoms (ghosts included) a sample of each cell (B, 3, 3) Å holds under this model -> (B,)
        long: the one rule of ``generate``, ``mdshortcut.design`` and ``mdshortcut generate``."""
        return sample_counts(cells, self.rho_max, self.atoms_per_sample)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file written by training; CheckpointError (one line naming the file) if it is
    missing, corrupt, of another format version, its weights are not finite or do not fit its own
    configuration."""
    meta = read_model(path)
    bad = [name for name, w in meta["state_dict"].items() if w.is_floating_point() and not torch.isfinite(w).all()]
    if bad:  # a diverged training: the network's output would be NaN, the samples empty
        raise CheckpointError(
            f"{path}: non-finite weights in {len(bad)} tensor(s), e.g. {bad[0]} (a diverged training?)"
        )
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
        denoiser.to(device).eval(),
        process,
        list(meta["elements"]),
        list(meta["properties"]),
        dict(meta["label_stats"]),
        None if meta["rho_max"] is None else float(meta["rho_max"]),
        str(meta["dataset"]),
        int(meta["steps"]),
        device,
        None if meta.get("typical_cell") is None else torch.as_tensor(meta["typical_cell"], dtype=torch.float64),
        None if meta.get("atoms_per_sample") is None else int(meta["atoms_per_sample"]),
    )


def check_model(
    model: LoadedModel,
    path: str | os.PathLike,
    dataset: str,
    elements: Sequence[str],
    properties: Sequence[str],
    ghosts: bool = True,
) -> None:
    """CheckpointError naming ``path`` unless ``model`` was trained on ``dataset`` with these element
    classes (ghost first) and conditioning properties, in this order (the network's inputs), with
    ghosts or without as ``ghosts`` says: a model file copied from another dataset or setting would
    otherwise fill one dataset's cells with the other's atoms."""
    for what, recorded, expected in (
        ("dataset", model.dataset, dataset),
        ("elements", model.elements, list(elements)),
        ("properties", model.properties, list(properties)),
        ("ghosts", model.atoms_per_sample is None, bool(ghosts)),
    ):
        if recorded != expected:
            raise CheckpointError(
                f"{path}: a model of {what} {recorded}, where this run needs {expected} "
                "(a model file of another dataset or conditioning?)"
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


def generate_batches(
    model: LoadedModel | str | os.PathLike,
    cells: torch.Tensor,
    n_steps: int,
    targets: Mapping[str, torch.Tensor] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    progress: bool = False,
    flow: bool = False,
) -> Iterator[list[Atoms]]:
    """``generate``, one list of ``batch_size`` structures at a time as they are made (memory
    and what a caller can write stay per batch: ``cells`` and ``targets`` may be expanded views
    of one cell and value, and only the batch's slice is materialised)."""
    if not isinstance(model, LoadedModel):
        model = load_model(model, device)
    elif model.device != torch.device(device):
        model.denoiser.to(device)
        model.device = torch.device(device)
    if cells.ndim != 3 or cells.shape[1:] != (3, 3):
        raise ValueError(f"cells: expected shape (B, 3, 3), got {tuple(cells.shape)}")
    targets = {name: torch.as_tensor(values) for name, values in (targets or {}).items()}
    normalise_targets(model, {name: torch.empty(0) for name in targets}, 0)  # names the model knows?
    for name, values in targets.items():
        if values.shape != (len(cells),):
            raise ValueError(
                f"target {name}: expected shape ({len(cells)},) for {len(cells)} cells, got {tuple(values.shape)}"
            )
    gen = torch.Generator(model.device).manual_seed(seed)
    n_el = len(model.elements)
    starts = range(0, len(cells), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, disable=not progress, desc=f"generate n_s={n_steps}", unit="batch"):
            part = slice(start, start + batch_size)
            batch = torch.as_tensor(cells[part], dtype=torch.float32, device=model.device)
            n_atoms = model.atom_counts(batch).to(model.device)
            empty = (torch.nonzero(n_atoms < 1).flatten() + start).tolist()
            if empty:
                raise ValueError(f"cells {empty}: too small for one atom at rho_max = {model.rho_max} atoms/Å^3")
            y = normalise_targets(model, {k: v[part] for k, v in targets.items()}, len(batch))
            prior = draw_prior(batch, n_atoms, n_el, y, gen)
            sampler = model.process.sample_flow if flow else model.process.sample
            out = sampler(model.denoiser, prior, n_steps, gen, model.denoiser.new_neighbours())
            counts = n_atoms.tolist()
            # without ghosts every slot is an atom: the argmax over the real classes only (a slot
            # read as a ghost would be dropped, and the sample lose its fixed count)
            classes = out.classes if model.atoms_per_sample is None else out.embeddings[:, 1:].argmax(dim=-1) + 1
            yield [
                to_atoms(cell, pos, cls, model.elements)
                for cell, pos, cls in zip(
                    prior.cell.cpu(), out.positions.cpu().split(counts), classes.cpu().split(counts)
                )
            ]


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
    batches = generate_batches(
        model, torch.as_tensor(cells), n_steps, targets, seed, device, batch_size, progress, flow
    )
    return [atoms for batch in batches for atoms in batch]
