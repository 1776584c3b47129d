"""Training data: a dataset's ghost-atom tensors as a torch Dataset, collated into graphs.

The tensors dict (``results/datasets/{id}/tensors.pt``, see ``mdshortcut.data.ghost``) holds
``elements`` (class 0 = ghost X), ``cell`` (S, 3, 3) Å, concatenated ``positions`` (ΣN, 3) Å
and ``types`` (ΣN,), ``n_atoms`` (S,), ``label_names``, ``labels`` (S, n_labels) with NaN =
missing, ``label_mean`` / ``label_std`` (n_labels,), ``rho_max`` and ``dataset``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Dataset

from mdshortcut.model.graph import Batch

REQUIRED = (
    "elements",
    "cell",
    "positions",
    "types",
    "n_atoms",
    "label_names",
    "labels",
    "label_mean",
    "label_std",
    "rho_max",
)


class DatasetError(ValueError):
    """Unusable training tensors; the message names the source and the key."""


@dataclass
class Structures:
    """A training batch of clean structures: the graph (positions X_0, Å), one-hot element
    embeddings E_0 (N, n_elements) and normalised properties (name -> (B,), NaN = null)."""

    graph: Batch
    embeddings: Tensor
    properties: dict[str, Tensor]

    def to(self, device: torch.device | str) -> Structures:
        return Structures(
            self.graph.to(device), self.embeddings.to(device), {k: v.to(device) for k, v in self.properties.items()}
        )

    def split(self, n: int) -> tuple[Structures, Structures]:
        """The first ``n`` structures and the rest, as two batches (atoms are contiguous per structure)."""
        g = self.graph
        cut = int(g.n_atoms[:n].sum())
        head = Batch(g.cell[:n], g.positions[:cut], g.batch[:cut], g.n_atoms[:n])
        tail = Batch(g.cell[n:], g.positions[cut:], g.batch[cut:] - n, g.n_atoms[n:])
        props_h = {k: v[:n] for k, v in self.properties.items()}
        props_t = {k: v[n:] for k, v in self.properties.items()}
        return Structures(head, self.embeddings[:cut], props_h), Structures(tail, self.embeddings[cut:], props_t)


def require_keys(tensors: Mapping, source: str) -> None:
    """DatasetError naming ``source`` and the keys a tensors dict lacks."""
    missing = [k for k in REQUIRED if k not in tensors]
    if missing:
        raise DatasetError(f"{source}: missing key(s) {missing}")


def conditioning_properties(conditioning: str, label_names: Sequence[str]) -> list[str]:
    """The properties of a conditioning set: ``none`` -> [], ``all`` -> every label, a label's name -> [it]."""
    if conditioning == "none":
        return []
    if conditioning == "all":
        return list(label_names)
    if conditioning not in label_names:
        raise DatasetError(f"conditioning '{conditioning}': not a label of the dataset (labels: {list(label_names)})")
    return [conditioning]


def typical_cell(cells: Tensor) -> list[list[float]]:
    """The cell (3, 3) Å of median volume among ``cells`` (S, 3, 3) (the lower median)."""
    volumes = torch.linalg.det(cells.double()).abs()
    return cells[torch.argsort(volumes, stable=True)[(len(cells) - 1) // 2]].double().tolist()


class StructureDataset(Dataset):
    """Structures of a tensors dict, with the properties in ``properties`` normalised by the
    dataset's label_mean / label_std. Positions and cells are cast to ``dtype``."""

    def __init__(
        self,
        tensors: Mapping,
        properties: Sequence[str] = (),
        dtype: torch.dtype = torch.float32,
        source: str = "tensors",
    ):
        require_keys(tensors, source)
        self.elements = list(tensors["elements"])
        self.label_names = list(tensors["label_names"])
        self.rho_max = None if tensors["rho_max"] is None else float(tensors["rho_max"])
        fixed = tensors.get("atoms_per_sample")  # absent from tensors files written before it
        self.atoms_per_sample = None if fixed is None else int(fixed)
        self.dataset = str(tensors.get("dataset", ""))
        n_atoms = torch.as_tensor(tensors["n_atoms"], dtype=torch.long)
        self.cell = torch.as_tensor(tensors["cell"]).to(dtype)
        self.positions = torch.as_tensor(tensors["positions"]).to(dtype)
        self.types = torch.as_tensor(tensors["types"], dtype=torch.long)
        labels = torch.as_tensor(tensors["labels"], dtype=torch.float64)
        n = len(n_atoms)
        if n == 0:
            raise DatasetError(f"{source}: no structures")
        if self.cell.shape != (n, 3, 3) or labels.shape != (n, len(self.label_names)):
            raise DatasetError(
                f"{source}: cell {tuple(self.cell.shape)} / labels {tuple(labels.shape)} do not match {n} "
                f"structures and labels {self.label_names}"
            )
        total = int(n_atoms.sum())
        if self.positions.shape != (total, 3) or self.types.shape != (total,):
            raise DatasetError(
                f"{source}: positions {tuple(self.positions.shape)} / types {tuple(self.types.shape)} do not "
                f"match sum(n_atoms) = {total}"
            )
        if not torch.isfinite(self.positions).all() or not torch.isfinite(self.cell).all():
            raise DatasetError(f"{source}: non-finite positions or cells")
        if total and (self.types.min() < 0 or self.types.max() >= len(self.elements)):
            raise DatasetError(f"{source}: types outside 0..{len(self.elements) - 1} (elements {self.elements})")
        self.properties = [p for p in properties]
        unknown = [p for p in self.properties if p not in self.label_names]
        if unknown:
            raise DatasetError(
                f"{source}: propert{'y' if len(unknown) == 1 else 'ies'} {unknown} "
                f"not among the labels {self.label_names}"
            )
        idx = [self.label_names.index(p) for p in self.properties]
        mean = torch.as_tensor(tensors["label_mean"], dtype=torch.float64)[idx]
        std = torch.as_tensor(tensors["label_std"], dtype=torch.float64)[idx]
        raw = labels[:, idx]
        for p, column in zip(self.properties, raw.T):
            if torch.isnan(column).all():
                raise DatasetError(f"{source}: property '{p}' has no labelled structure")
        self.stats = {
            p: {"mean": float(m), "std": float(s), "min": float(c[~c.isnan()].min()), "max": float(c[~c.isnan()].max())}
            for p, m, s, c in zip(self.properties, mean, std, raw.T)
        }
        self.labels = ((raw - mean) / std).to(dtype)  # (S, P), NaN stays NaN
        self.n_atoms = n_atoms
        self.offsets = torch.cumsum(n_atoms, 0) - n_atoms

    def __len__(self) -> int:
        return len(self.n_atoms)

    def __getitem__(self, i: int) -> dict:
        start, n = int(self.offsets[i]), int(self.n_atoms[i])
        return {
            "cell": self.cell[i],
            "positions": self.positions[start : start + n],
            "types": self.types[start : start + n],
            "labels": self.labels[i],
        }

    def collate(self, items: Sequence[dict]) -> Structures:
        """Items of this dataset -> one ``Structures`` batch (usable as a DataLoader collate_fn)."""
        graph = Batch.from_structures(torch.stack([it["cell"] for it in items]), [it["positions"] for it in items])
        types = torch.cat([it["types"] for it in items])
        embeddings = torch.nn.functional.one_hot(types, len(self.elements)).to(graph.positions.dtype)
        labels = torch.stack([it["labels"] for it in items]) if items else None
        return Structures(graph, embeddings, {p: labels[:, k] for k, p in enumerate(self.properties)})
