"""The properties benchmark: relaxations and full labels per minute on dataset structures."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import pandas as pd

from mdshortcut.properties.elastic import relax
from mdshortcut.properties.labels import PropertiesConfig, label_structure, read_checked


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
        rows.append(
            {
                "dataset": name,
                "potential": potential,
                "n_structures": len(frames),
                "mean_atoms": sum(map(len, frames)) / len(frames),
                "converged": converged,
                "relax_s": relax_s,
                "relaxations_per_min": 60 / relax_s,
                "label_s": label_s,
                "labels_per_min": 60 / label_s,
            }
        )
    return pd.DataFrame(rows)
