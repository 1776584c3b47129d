"""Ghost atoms and the training tensors of a dataset.

A sample holds n_a = ⌊rho_max · Vol(C)⌋ atoms: its real atoms, then ghost atoms (element
``X``, class 0) placed uniformly in the cell by a seeded generator. A dataset of a fixed atom
count may go without ghosts (config ``ghosts: false``): a sample then holds exactly its real
atoms, the same number in every cell, since ghosts' position targets are pure noise (on a-Si
dropping them lowered the small-noise denoising loss and the share of too-close atoms,
docs/experiments/README.md). The tensors file
(``results/datasets/{id}/tensors.pt``, a plain dict; load with ``load_tensors``, which uses
``torch.load(..., weights_only=True)``) holds, for N samples:

- ``elements`` list[str]: class names, ``["X", "Si"]`` or ``["X", "Si", "O"]``
- ``cell`` (N, 3, 3) float64, Å, row vectors
- ``positions`` (Σ n_a, 3) float64, Å, samples concatenated, real atoms exactly as in the
  structures file, then the ghosts
- ``types`` (Σ n_a,) int64, class indices into ``elements``
- ``n_atoms`` (N,) int64: n_a per sample (ghosts included); ``n_real`` (N,) int64
- ``label_names`` list[str]; ``labels`` (N, n_labels) float64, NaN where missing or failed
- ``label_mean``, ``label_std`` (n_labels,) float64 over the finite labels (population std;
  NaN without finite values, 1 where the std is 0)
- ``rho_max`` float (atoms/Å^3; None without ghosts when not configured), ``dataset`` str,
  ``seed`` int
- ``atoms_per_sample`` int: the fixed atom count without ghosts, None with ghosts
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from mdshortcut.checkpoint import CheckpointError, load_file
from mdshortcut.io import GHOST, StructureError, atomic_path  # GHOST lives where structures are read


def remove_ghosts(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` without its ghost (``X``) atoms."""
    keep = [s != GHOST for s in atoms.get_chemical_symbols()]
    return atoms[keep]


def atom_counts(cell: torch.Tensor, rho_max: float) -> torch.Tensor:
    """n_a = ⌊rho_max · Vol(C)⌋ per cell, ghosts included: cell (B, 3, 3) Å, rho_max atoms/Å^3
    -> (B,) long. The one rule for the training tensors and for sampling."""
    volume = torch.linalg.det(torch.as_tensor(cell, dtype=torch.float64)).abs()
    return torch.floor(rho_max * volume).to(torch.long)


def sample_counts(cell: torch.Tensor, rho_max: float | None, atoms_per_sample: int | None = None) -> torch.Tensor:
    """Atoms (ghosts included) a sample of each cell (B, 3, 3) Å holds -> (B,) long: the fixed
    ``atoms_per_sample`` of a model trained without ghosts, else ``atom_counts`` at ``rho_max``.
    The one rule of sampling (``LoadedModel.atom_counts``) and of ``n_slots``."""
    cell = torch.as_tensor(cell)
    if atoms_per_sample is not None:
        return torch.full((len(cell),), int(atoms_per_sample), dtype=torch.long, device=cell.device)
    return atom_counts(cell, rho_max)


def n_slots(cell: np.ndarray, rho_max: float | None, atoms_per_sample: int | None = None) -> int:
    """``sample_counts`` of one cell (3, 3) Å."""
    return int(sample_counts(torch.as_tensor(cell, dtype=torch.float64)[None], rho_max, atoms_per_sample)[0])


#: a sampling cell's narrowest perpendicular width, as a fraction of the model's cutoff (1.6 Å for
#: 6.5 Å, the Si–O bond length: in a narrower cell an atom is within bonding distance of its own
#: periodic image), and its fewest atoms at rho_max (with one atom, every edge of the graph joins it to
#: its own images: a crystal)
MIN_WIDTH_FRACTION = 0.25
MIN_ATOMS = 2


def perpendicular_widths(cell: np.ndarray) -> np.ndarray:
    """Distances (3,) Å between opposite faces of a cell (3, 3) Å (row vectors)."""
    cell = np.asarray(cell, dtype=float)
    volume = abs(np.linalg.det(cell))
    return np.array([volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)])


def cell_problem(cell: np.ndarray, cutoff: float, rho_max: float | None, atoms_per_sample: int | None = None) -> str:
    """Why a model of ``cutoff`` Å and ``rho_max`` atoms/Å^3 (or ``atoms_per_sample`` atoms in
    every cell, without ghosts) cannot sample in ``cell`` (3, 3) Å, or '' if it can: the one check
    of ``mdshortcut generate`` and of the config's sampling.cell (which knows neither for a
    dataset without ghosts and rho_max: its atom count is checked with the tensors)."""
    width = perpendicular_widths(cell).min()
    if width < MIN_WIDTH_FRACTION * cutoff:
        return (
            f"cell too small: its narrowest width {width:.3g} Å is below {MIN_WIDTH_FRACTION} × the "
            f"{cutoff:g} Å cutoff ({MIN_WIDTH_FRACTION * cutoff:.3g} Å), "
            "so atoms would bond to their own periodic images"
        )
    if rho_max is None and atoms_per_sample is None:
        return ""
    n_atoms = n_slots(cell, rho_max, atoms_per_sample)
    if n_atoms < MIN_ATOMS:
        if atoms_per_sample is not None:
            return f"the model's fixed {n_atoms} atom(s) per sample are too few (at least {MIN_ATOMS} are needed)"
        return (
            f"cell too small: {abs(np.linalg.det(cell)):.3g} Å^3 holds {n_atoms} atom(s) at "
            f"rho_max = {rho_max:g} atoms/Å^3 (at least {MIN_ATOMS} are needed)"
        )
    return ""


def pad(
    atoms: Atoms,
    elements: Sequence[str],
    rho_max: float | None,
    rng: np.random.Generator,
    where: str,
    n_a: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (n_a, 3) Å and class indices (n_a,) of ``atoms`` filled up with ghosts
    (n_a given: that many slots, e.g. the atoms' own count for none, else ⌊rho_max · Vol⌋).

    Raises StructureError (naming ``where``) when the structure has more atoms than n_a or
    an element outside ``elements``.
    """
    symbols = atoms.get_chemical_symbols()
    unknown = sorted(set(symbols) - set(elements) - {GHOST})
    if unknown:
        raise StructureError(f"{where}: element(s) {', '.join(unknown)} not in {list(elements)}")
    if GHOST in symbols:
        raise StructureError(f"{where}: already holds ghost atoms")
    n_a = n_slots(atoms.cell.array, rho_max, n_a)
    if len(atoms) > n_a:
        raise StructureError(
            f"{where}: {len(atoms)} atoms exceed n_a = floor(rho_max * volume) = {n_a} "
            f"(rho_max {rho_max} atoms/Å^3, volume {atoms.cell.volume:.1f} Å^3); use a larger rho_max"
        )
    ghosts = rng.random((n_a - len(atoms), 3)) @ atoms.cell.array
    positions = np.concatenate([atoms.positions, ghosts])
    types = np.array([elements.index(s) for s in symbols] + [0] * len(ghosts), dtype=np.int64)
    return positions, types


def label_statistics(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std (n_labels,) of each column's finite values of (N, n_labels)."""
    mean = np.full(labels.shape[1], np.nan)
    std = np.full(labels.shape[1], np.nan)
    for k in range(labels.shape[1]):
        finite = labels[np.isfinite(labels[:, k]), k]
        if len(finite):
            mean[k] = finite.mean()
            std[k] = finite.std() or 1.0
    return mean, std


def fixed_count(frames: Sequence[Atoms], dataset: str) -> int:
    """The atom count every frame shares; StructureError naming ``dataset`` and the counts if
    they differ (a dataset without ghosts needs one count)."""
    counts = sorted({len(a) for a in frames})
    if len(counts) != 1:
        raise StructureError(
            f"{dataset}: ghosts: false needs one atom count in every frame, found {counts[:5]}"
            + (" ..." if len(counts) > 5 else "")
        )
    return counts[0]


def build_tensors(
    frames: Sequence[Atoms],
    elements: Sequence[str],
    rho_max: float | None,
    label_names: Sequence[str],
    labels: np.ndarray,
    dataset: str,
    seed: int,
    source: str = "structures",
    ghosts: bool = True,
) -> dict:
    """The tensors dict (module doc) of ``frames``; ``labels`` (N, n_labels), NaN = missing.

    ``elements``: the real elements in class order (class 0, the ghost, is prepended).
    ``ghosts`` False: no padding (``rho_max`` may be None), every frame must have the same
    number of atoms. Errors name ``source`` and the frame.
    """
    classes = [GHOST, *elements]
    labels = np.asarray(labels, dtype=np.float64).reshape(len(frames), len(label_names))
    rng = np.random.default_rng(seed)
    if ghosts:
        padded = [pad(a, classes, rho_max, rng, f"{source} frame {k}") for k, a in enumerate(frames)]
        per_sample = None
    else:
        per_sample = fixed_count(frames, dataset)
        padded = [pad(a, classes, None, rng, f"{source} frame {k}", n_a=per_sample) for k, a in enumerate(frames)]
    mean, std = label_statistics(labels)
    return {
        "elements": classes,
        "cell": torch.tensor(np.array([a.cell.array for a in frames]).reshape(-1, 3, 3), dtype=torch.float64),
        "positions": torch.tensor(np.concatenate([p for p, _ in padded]).reshape(-1, 3), dtype=torch.float64),
        "types": torch.tensor(np.concatenate([t for _, t in padded]), dtype=torch.int64),
        "n_atoms": torch.tensor([len(t) for _, t in padded], dtype=torch.int64),
        "n_real": torch.tensor([len(a) for a in frames], dtype=torch.int64),
        "label_names": list(label_names),
        "labels": torch.tensor(labels, dtype=torch.float64),
        "label_mean": torch.tensor(mean, dtype=torch.float64),
        "label_std": torch.tensor(std, dtype=torch.float64),
        "rho_max": None if rho_max is None else float(rho_max),
        "dataset": str(dataset),
        "seed": int(seed),
        "atoms_per_sample": per_sample,
    }


def save_tensors(path: str | os.PathLike, tensors: dict) -> None:
    """Write the tensors dict atomically."""
    with atomic_path(path) as tmp:
        torch.save(tensors, tmp)


def load_tensors(path: str | os.PathLike) -> dict:
    """The tensors dict of ``path`` (``weights_only=True``: plain data, no code); CheckpointError
    naming the file if it is missing, truncated or not a dict."""
    tensors = load_file(path, "tensors file")
    if not isinstance(tensors, dict):
        raise CheckpointError(f"{path}: not a tensors file (a {type(tensors).__name__}, not a dict)")
    return tensors


def to_atoms(cell, positions, types, elements: Sequence[str]) -> Atoms:
    """A periodic structure from one sample, ghosts (class 0) removed.

    cell (3, 3) Å, positions (n, 3) Å, types (n,) class indices; tensors or arrays.
    """
    types = np.asarray(types, dtype=np.int64)
    real = types != 0
    return Atoms(
        symbols=[elements[t] for t in types[real]],
        positions=np.asarray(positions, dtype=np.float64)[real],
        cell=np.asarray(cell, dtype=np.float64),
        pbc=True,
    )


def samples(tensors: dict) -> list[Atoms]:
    """Every sample of a tensors dict as Atoms, ghosts removed."""
    ends = np.cumsum(tensors["n_atoms"].numpy())
    starts = ends - tensors["n_atoms"].numpy()
    return [
        to_atoms(tensors["cell"][k], tensors["positions"][s:e], tensors["types"][s:e], tensors["elements"])
        for k, (s, e) in enumerate(zip(starts, ends))
    ]
