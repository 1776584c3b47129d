"""Inverse design as a tool: the work behind ``mdshortcut generate`` and ``mdshortcut info``.

Structures come from ``mdshortcut.sample.generate_batches`` (the DAG samples with it) and,
with relaxation, their properties from ``mdshortcut.evaluate.evaluate_structure`` (the DAG's
evaluation of generated structures: ``label_structure``, which labels the training data).
Units: cells Å, shear modulus GPa, ring size Si atoms per ring, density g/cm³, times s.

A sampling cell must let the periodic graph describe a network of distinct atoms
(``mdshortcut.data.ghost.cell_problem``, which checks the config's sampling.cell too).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from tqdm import tqdm

from mdshortcut.checkpoint import CheckpointError
from mdshortcut.data.ghost import cell_problem, perpendicular_widths
from mdshortcut.evaluate import evaluate_structure
from mdshortcut.md.potentials import POTENTIALS
from mdshortcut.properties.catalogue import PROPERTIES
from mdshortcut.properties.labels import PropertiesConfig
from mdshortcut.sample import LoadedModel, generate_batches, load_model


def _unit(name: str) -> str:
    """A property's unit ('' for a name outside the table, e.g. an older model's)."""
    return PROPERTIES[name].unit if name in PROPERTIES else ""


class DesignError(ValueError):
    """A request that cannot be generated; the message is one line naming the problem."""


def open_model(path: str, device: str = "cpu") -> LoadedModel:
    """``load_model`` for a user: a one-line error saying the file is not a valid model."""
    if device == "cuda" and not torch.cuda.is_available():
        raise DesignError("--device cuda: no CUDA device is visible to torch")
    try:
        return load_model(path, device)
    except CheckpointError as exc:
        raise CheckpointError(f"not a valid mdshortcut model: {exc}") from None


def parse_target(text: str) -> tuple[str, float]:
    """'shear_modulus=30' -> ('shear_modulus', 30.0); DesignError unless NAME=finite number."""
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name.strip() or not math.isfinite(number):
        raise DesignError(f"malformed target {text!r}: expected NAME=VALUE with a finite number, e.g. shear_modulus=30")
    return name.strip(), number


def parse_cell(text: str) -> tuple[float, float, float]:
    """'18' -> (18, 18, 18); '18,18,20' -> (18, 18, 20): orthorhombic edges, Å."""
    try:
        edges = [float(x) for x in text.split(",")]
    except ValueError:
        edges = []
    if len(edges) == 1:
        edges *= 3
    if len(edges) != 3 or not all(math.isfinite(x) and x > 0 for x in edges):
        raise DesignError(f"malformed cell {text!r}: expected one edge or three edges a,b,c in Å, each positive")
    return edges[0], edges[1], edges[2]


def seed(text: str) -> int:
    """A seed: an integer in [0, 2^63), else DesignError."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**63:
        raise DesignError(f"expected an integer from 0 to 2^63 - 1, got {text!r}")
    return value


def check_targets(model: LoadedModel, targets: Sequence[tuple[str, float]]) -> tuple[dict[str, float], list[str]]:
    """The targets as a dict and the warnings about them (outside the training range).

    DesignError for a property the model was not trained on (listing those it knows), one
    given twice, or a value outside the property's physical bounds (``catalogue.PROPERTIES``).
    """
    out: dict[str, float] = {}
    for name, value in targets:
        if name not in model.properties:
            known = ", ".join(model.properties) or "none: the model is unconditional"
            raise DesignError(f"unknown property {name!r}: this model takes {known}")
        if name in out:
            raise DesignError(f"property {name!r} targeted twice")
        if not PROPERTIES[name].possible(value):
            raise DesignError(f"target {name}={value:g} is impossible: it must be {PROPERTIES[name].bounds()}")
        out[name] = value
    warnings = []
    for name, value in out.items():
        lo, hi = model.label_stats[name]["min"], model.label_stats[name]["max"]
        if not lo <= value <= hi:
            warnings.append(
                f"target {name}={value:g} is outside the training range [{lo:.4g}, {hi:.4g}] {_unit(name)}: "
                "the model extrapolates"
            )
    return out, warnings


def sampling_cell(model: LoadedModel, edges: Sequence[float] | None) -> np.ndarray:
    """The cell (3, 3) Å to sample in: orthorhombic with ``edges`` (Å), or by default the
    model's typical training cell. DesignError if it is too small (module doc)."""
    if edges is not None:
        cell = np.diag(np.asarray(edges, dtype=float))
    elif model.typical_cell is not None:
        cell = model.typical_cell.numpy()
    else:
        raise DesignError("this model file stores no typical training cell (it predates them): give --cell")
    problem = cell_problem(cell, model.denoiser.config.cutoff, model.rho_max, model.atoms_per_sample)
    if problem:
        raise DesignError(problem)
    return cell


def design_batches(
    model: LoadedModel,
    name: str,
    targets: Mapping[str, float],
    cell: np.ndarray,
    n: int,
    n_steps: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> Iterator[tuple[list[Atoms], float]]:
    """n structures in ``cell`` (3, 3) Å for ``targets`` (property -> value, physical units;
    absent properties are null), one batch at a time as made, each with its generation time in s
    (model loading excluded). Memory stays per batch: n is not bounded by it.

    Each frame's info: model (``name``), dataset, n_steps, seed, sample, target_<property>.
    """
    cells = torch.as_tensor(cell, dtype=torch.float32).expand(n, 3, 3)  # views of one cell, not n copies
    values = {p: torch.tensor(v, dtype=torch.float32).expand(n) for p, v in targets.items()}
    batches = generate_batches(
        model, cells, n_steps, values, seed=seed, device=model.device, batch_size=batch_size, progress=progress
    )
    done = 0
    with contextlib.closing(batches):  # closing this generator ends the progress bar at once
        while True:
            start = time.perf_counter()
            frames = next(batches, None)
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            if frames is None:
                return
            seconds = time.perf_counter() - start
            for i, atoms in enumerate(frames, done):
                info = {"model": name, "dataset": model.dataset, "n_steps": n_steps, "seed": seed, "sample": i}
                atoms.info.update(info)
                atoms.info.update({f"target_{p}": v for p, v in targets.items()})
            done += len(frames)
            yield frames, seconds


def check_output_room(model: LoadedModel, cell: np.ndarray, n: int, path: str, frame_bytes) -> None:
    """DesignError unless the folder of ``path`` has room for n structures: each at most
    ``frame_bytes(frame)`` for a frame filling every slot of ``cell`` with atoms (ghosts are
    removed, so a real one is no larger)."""
    slots = int(model.atom_counts(torch.as_tensor(cell, dtype=torch.float64)[None])[0])
    full = Atoms([model.elements[1]] * slots, cell=cell, pbc=True)
    full.info.update({"model": "m" * 20, "dataset": model.dataset, "n_steps": 1, "seed": 2**62, "sample": n})
    need = n * frame_bytes(full)
    folder = Path(path).resolve().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need > free:
        raise DesignError(
            f"--n {n}: up to {need / 1e9:.3g} GB of output ({need // n} bytes per structure), more than the "
            f"{free / 1e9:.3g} GB free in {folder}"
        )


def dataset_potential(elements: Sequence[str]) -> str:
    """The potential covering exactly a model's real elements (``elements`` with the ghost first)."""
    real = set(elements[1:])
    names = [name for name, pot in POTENTIALS.items() if set(pot.elements) == real]
    if len(names) != 1:
        raise DesignError(f"no single potential for the elements {sorted(real)} (potentials: {', '.join(POTENTIALS)})")
    return names[0]


def measure(frames: Sequence[Atoms], potential: str, cfg: PropertiesConfig, progress: bool = False) -> None:
    """Relax each frame with ``potential`` and add its measured properties to its info (in
    place; the positions stay as generated), as the DAG evaluates generated structures:
    shear_modulus, ring_size, density, converged and, for a failure, reason."""
    for atoms in tqdm(frames, disable=not progress, desc="relax", unit="structure"):
        row = evaluate_structure(atoms, potential, cfg)
        atoms.info.update({p: float(row[p]) for p in PROPERTIES})
        atoms.info["converged"] = bool(row["converged"])
        if row["reason"]:  # an empty string does not survive extxyz
            atoms.info["reason"] = str(row["reason"])


def measured_summary(frames: Sequence[Atoms]) -> list[str]:
    """What ``measure`` found, one line each: relaxations converged, then per property how many
    frames have it measured and, for the others, their sample numbers by reason."""
    n = len(frames)
    lines = [f"relaxed: {sum(bool(a.info['converged']) for a in frames)} of {n} converged"]
    for prop in PROPERTIES:
        failed: dict[str, list[str]] = {}
        for k, atoms in enumerate(frames):
            if not math.isfinite(atoms.info[prop]):
                failed.setdefault(atoms.info.get("reason", "not measured"), []).append(str(k))
        why = "; ".join(f"sample(s) {', '.join(ks)}: {reason}" for reason, ks in failed.items())
        lines.append(f"{prop}: measured {n - sum(map(len, failed.values()))} of {n}" + (f" (not {why})" if why else ""))
    return lines


def n_s_note(model: LoadedModel) -> str:
    """What numbers of sampling steps the model was trained for: its process's sampler."""
    return model.process.sampler()


def describe(model: LoadedModel, path: str) -> str:
    """A model file's summary, for ``mdshortcut info``."""
    edges = "unknown"
    if model.typical_cell is not None:
        edges = " x ".join(f"{x:.2f}" for x in perpendicular_widths(model.typical_cell.numpy())) + " Å (widths)"
    lines = [
        f"model        {path}",
        f"dataset      {model.dataset}",
        f"process      {model.process.name}",
        f"elements     {', '.join(model.elements[1:])} (ghost {model.elements[0]})",
        f"rho_max      {model.rho_max:g} atoms/Å^3"
        if model.atoms_per_sample is None
        else f"atoms        {model.atoms_per_sample} per sample (no ghosts)",
        f"typical cell {edges}",
        f"cutoff       {model.denoiser.config.cutoff:g} Å",
        f"training     {model.steps} steps, {sum(p.numel() for p in model.denoiser.parameters())} parameters",
        f"n_s          {n_s_note(model)}",
        "properties   " + ("none (unconditional)" if not model.properties else "training range [min, max], mean, std:"),
    ]
    for name in model.properties:
        s = model.label_stats[name]
        lines.append(
            f"  {name:<14} [{s['min']:.4g}, {s['max']:.4g}] {_unit(name)}, mean {s['mean']:.4g}, std {s['std']:.4g}"
        )
    return "\n".join(lines)
