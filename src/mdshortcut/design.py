"""Inverse design as a tool: the work behind ``mdshortcut generate`` and ``mdshortcut info``.

Structures come from ``mdshortcut.sample.generate`` (the function the DAG samples with) and,
with relaxation, their properties from ``mdshortcut.evaluate.evaluate_structure`` (the DAG's
evaluation of generated structures: ``label_structure``, which labels the training data).
Units: cells Å, shear modulus GPa, ring size Si atoms per ring, density g/cm³, times s.

A sampling cell must let the periodic graph describe a network of distinct atoms: every
perpendicular width of the cell is at least ``MIN_WIDTH_FRACTION`` × the model's cutoff (1.6 Å
for the 6.5 Å cutoff, the Si–O bond length: in a narrower cell an atom is within bonding
distance of its own periodic image), and the cell holds at least ``MIN_ATOMS`` atoms at the
model's rho_max (with one atom, every edge of the graph joins it to its own images: a crystal).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from ase import Atoms
from tqdm import tqdm

from mdshortcut.checkpoint import CheckpointError
from mdshortcut.data.ghost import n_slots
from mdshortcut.evaluate import evaluate_structure
from mdshortcut.md.potentials import POTENTIALS
from mdshortcut.properties.catalogue import PROPERTIES
from mdshortcut.properties.labels import PropertiesConfig
from mdshortcut.sample import LoadedModel, generate, load_model

MIN_WIDTH_FRACTION = 0.25
MIN_ATOMS = 2


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


def positive_int(text: str) -> int:
    """An integer ≥ 1 from its text, else DesignError."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise DesignError(f"expected a positive integer, got {text!r}")
    return value


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


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (3,) Å between opposite faces of a cell (3, 3) Å (row vectors)."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def sampling_cell(model: LoadedModel, edges: Sequence[float] | None) -> np.ndarray:
    """The cell (3, 3) Å to sample in: orthorhombic with ``edges`` (Å), or by default the
    model's typical training cell. DesignError if it is too small (module doc)."""
    if edges is not None:
        cell = np.diag(np.asarray(edges, dtype=float))
    elif model.typical_cell is not None:
        cell = model.typical_cell.numpy()
    else:
        raise DesignError("this model file stores no typical training cell (it predates them): give --cell")
    cutoff = model.denoiser.config.cutoff
    width = perpendicular_widths(cell).min()
    if width < MIN_WIDTH_FRACTION * cutoff:
        raise DesignError(
            f"cell too small: its narrowest width {width:.3g} Å is below {MIN_WIDTH_FRACTION} × the "
            f"{cutoff:g} Å cutoff ({MIN_WIDTH_FRACTION * cutoff:.3g} Å), "
            "so atoms would bond to their own periodic images"
        )
    n_atoms = n_slots(cell, model.rho_max)
    if n_atoms < MIN_ATOMS:
        raise DesignError(
            f"cell too small: {abs(np.linalg.det(cell)):.3g} Å^3 holds {n_atoms} atom(s) at "
            f"rho_max = {model.rho_max:g} atoms/Å^3 (at least {MIN_ATOMS} are needed)"
        )
    return cell


def generate_designs(
    model: LoadedModel,
    name: str,
    targets: Mapping[str, float],
    cell: np.ndarray,
    n: int,
    n_steps: int,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[list[Atoms], float]:
    """n structures in ``cell`` (3, 3) Å for ``targets`` (property -> value, physical units;
    absent properties are null), and the generation time in s (model loading excluded).

    Each frame's info: model (``name``), dataset, n_steps, seed, sample, target_<property>.
    """
    cells = torch.as_tensor(np.broadcast_to(cell, (n, 3, 3)).copy(), dtype=torch.float32)
    values = {p: torch.full((n,), v, dtype=torch.float32) for p, v in targets.items()}
    start = time.perf_counter()
    frames = generate(
        model, cells, n_steps, values, seed=seed, device=model.device, batch_size=batch_size, progress=progress
    )
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    seconds = time.perf_counter() - start
    for i, atoms in enumerate(frames):
        atoms.info.update({"model": name, "dataset": model.dataset, "n_steps": n_steps, "seed": seed, "sample": i})
        atoms.info.update({f"target_{p}": v for p, v in targets.items()})
    return frames, seconds


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
        f"rho_max      {model.rho_max:g} atoms/Å^3",
        f"typical cell {edges}",
        f"cutoff       {model.denoiser.config.cutoff:g} Å",
        f"training     {model.steps} steps, {sum(p.numel() for p in model.denoiser.parameters())} parameters",
        f"n_s          {n_s_note(model)}",
        "properties   " + ("none (unconditional)" if not model.properties else "training range [min, max], mean, std:"),
    ]
    for name in model.properties:
        s = model.label_stats[name]
        lines.append(
            f"  {name:<14} [{s['min']:.4g}, {s['max']:.4g}] {_unit(name)}, "
            f"mean {s['mean']:.4g}, std {s['std']:.4g}"
        )
    return "\n".join(lines)
