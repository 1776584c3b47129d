"""A dataset's tensors file from its structures and labels (the DAG's ``tensors`` rule)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from mdshortcut.data.ghost import build_tensors, save_tensors
from mdshortcut.io import StructureError, read_structures, read_table
from mdshortcut.md.potentials import get_potential


def label_matrix(table, label_names: Sequence[str], n_frames: int, source: str) -> np.ndarray:
    """(n_frames, n_labels) float64 from a labels table; rows in frame order, NaN = missing."""
    if table["index"].tolist() != list(range(n_frames)):
        raise StructureError(f"{source}: rows do not match the {n_frames} frames one to one")
    missing = [name for name in label_names if name not in table.columns]
    if missing:
        raise StructureError(f"{source}: no column(s) {', '.join(missing)}")
    return table[list(label_names)].to_numpy(dtype=np.float64).reshape(n_frames, len(label_names))


def write_dataset_tensors(
    structures: str | os.PathLike,
    labels: str | os.PathLike | None,
    out: str | os.PathLike,
    dataset: str,
    potential: str,
    label_names: Sequence[str],
    rho_max: float | None,
    seed: int,
    ghosts: bool = True,
) -> int:
    """Pad every frame of ``structures`` with ghosts (``ghosts`` False: none, every frame must
    have the same atom count) and write the tensors dict to ``out``.

    Classes: X then the potential's elements. ``labels`` (labels.csv) is required when
    ``label_names`` is not empty. Returns the number of samples.
    """
    elements = get_potential(potential).elements
    frames = read_structures(structures, elements)
    if label_names:
        if labels is None:
            raise StructureError(f"{dataset}: labels {list(label_names)} requested but no labels table given")
        matrix = label_matrix(read_table(labels, ["index"]), label_names, len(frames), str(labels))
    else:
        matrix = np.zeros((len(frames), 0))
    tensors = build_tensors(frames, elements, rho_max, label_names, matrix, dataset, seed, str(structures), ghosts)
    save_tensors(out, tensors)
    return len(frames)
