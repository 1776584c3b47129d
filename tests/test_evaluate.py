"""Evaluation metrics: Eq. 19-21 against hand-computed values, charge balance, failure counts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from mdshortcut.evaluate import composition, inverse_errors, inverse_summary, summarize_inverse


def test_inverse_errors_hand_computed():
    # errors +2, -3, 0 on targets 10, 20, 40
    e = inverse_errors([10.0, 20.0, 40.0], [12.0, 17.0, 40.0])
    assert e["mae"] == pytest.approx(5.0 / 3.0)
    assert e["rmse"] == pytest.approx(math.sqrt(13.0 / 3.0))
    assert e["mape_percent"] == pytest.approx(100.0 * (0.2 + 0.15 + 0.0) / 3.0)


def test_inverse_errors_empty_and_invalid():
    assert all(np.isnan(v) for v in inverse_errors([], []).values())
    with pytest.raises(ValueError, match="shapes"):
        inverse_errors([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="target of 0"):
        inverse_errors([0.0, 1.0], [1.0, 1.0])


@pytest.mark.parametrize(
    "symbols, balanced",
    [("SiO2", True), ("Si2O4", True), ("SiO3", False), ("Si2O3", False), ("O2", False), ("", False)],
)
def test_charge_balance(symbols, balanced):
    atoms = Atoms(symbols, cell=[5, 5, 5], pbc=True)
    c = composition(atoms)
    assert c["charge_balanced"] is balanced
    assert c["n_si"] + c["n_o"] == c["n_atoms"] == len(atoms)


def _rows(values, targets=None, balanced=None):
    n = len(values)
    targets = targets if targets is not None else np.linspace(10, 50, n)
    return pd.DataFrame(
        {
            "property": "shear_modulus",
            "model": "shortcut-all",
            "n_s": 5,
            "target": targets,
            "value": values,
            "converged": np.isfinite(values),
            "reason": ["" if np.isfinite(v) else "not converged after 300 steps" for v in values],
            "charge_balanced": balanced if balanced is not None else [True] * n,
        }
    )


def test_failed_samples_are_counted_not_dropped():
    rows = _rows([11.0, np.nan, 31.0, np.nan], targets=[10.0, 20.0, 30.0, 40.0], balanced=[True, False, False, True])
    s = summarize_inverse(rows)
    assert s["n_samples"] == 4 and s["n_failed"] == 2
    assert s["mae"] == pytest.approx(1.0)  # over the two measured samples only
    assert s["charge_balanced_fraction"] == pytest.approx(0.5)
    assert "2× not converged after 300 steps" in s["failure_reasons"]


def test_all_failed_gives_nan_errors_and_full_count():
    s = summarize_inverse(_rows([np.nan, np.nan]))
    assert s["n_failed"] == 2 and np.isnan(s["mae"])


def test_inverse_summary_joins_timings_and_requires_them(tmp_path):
    run = tmp_path / "ns5.csv"
    _rows([12.0, 20.0, 30.0]).to_csv(run, index=False)
    sidecar = tmp_path / "ns5.json"
    sidecar.write_text(
        json.dumps(
            {
                "model": "shortcut-all",
                "property": "shear_modulus",
                "n_steps": 5,
                "device": "cpu",
                "seconds": 3.0,
                "seconds_per_sample": 1.0,
                "seconds_per_10k": 1e4,
            }
        )
    )
    out = tmp_path / "summary.csv"
    s = inverse_summary([run], [sidecar], out)
    assert list(s["seconds"]) == [3.0]
    assert pd.read_csv(out)["n_samples"].tolist() == [3]
    with pytest.raises(ValueError, match="no sampling sidecar for run shortcut-all shear_modulus n_s=5"):
        inverse_summary([run], [], out)


# --- measurements through the properties module ---------------------------------------------

from ase.build import bulk  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from mdshortcut.evaluate import evaluate_shard, structure_run, write_reference  # noqa: E402
from mdshortcut.io import StructureError, read_structures, write_structures  # noqa: E402
from mdshortcut.properties.labels import PropertiesConfig, label_structure  # noqa: E402
from mdshortcut.properties.structure import StructureConfig  # noqa: E402


def _silicon(seed):
    atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def test_structure_run_against_its_own_reference_and_empty_samples(tmp_path):
    cfg = StructureConfig()
    frames = [_silicon(s) for s in range(3)]
    write_structures(tmp_path / "train.extxyz", frames)
    ref = write_reference(tmp_path / "train.extxyz", cfg, tmp_path / "ref.json")
    assert len(ref["rdf"]) == 100 and len(ref["adf"]) == 180 and ref["n_empty"] == 0
    # diamond: nothing below the first neighbour shell at 2.35 Å, a peak there
    r, g = np.array(ref["r"]), np.array(ref["rdf"])
    assert (g[r < 2.1] == 0).all() and g[(r > 2.2) & (r < 2.5)].max() > 1.0
    # the same structures plus an all-ghost sample: RMSD 0, the empty one counted, not averaged
    write_structures(tmp_path / "run.extxyz", [*frames, Atoms(cell=frames[0].cell, pbc=True)])
    run = structure_run(tmp_path / "run.extxyz", tmp_path / "ref.json", "shortcut-none", 5, cfg, tmp_path / "run.json")
    assert run["n_samples"] == 4 and run["n_empty"] == 1
    assert run["rdf_rmsd"] == pytest.approx(0.0, abs=1e-12) and run["adf_rmsd"] == pytest.approx(0.0, abs=1e-12)
    assert json.loads((tmp_path / "run.json").read_text())["model"] == "shortcut-none"
    # a different run: a positive RMSD
    write_structures(
        tmp_path / "hot.extxyz",
        [_silicon(s).copy() for s in range(2)] + [bulk("Si", "diamond", a=5.9, cubic=True).repeat(2)],
    )
    hot = structure_run(tmp_path / "hot.extxyz", tmp_path / "ref.json", "ode-none", 1, cfg, tmp_path / "hot.json")
    assert hot["rdf_rmsd"] > 0.01


def test_close_fraction_counts_atoms_closer_than_the_training_sets_closest_pair(tmp_path):
    """Reference: ideal diamond Si, closest pair √3/4·a = 2.351 Å. A run of one ideal crystal and
    one with a single atom moved 0.6 Å towards a neighbour: exactly that atom and its neighbour
    (2 of 128 atoms) are closer than 2.351 Å; atoms per sample 64 ± 0."""
    cfg = StructureConfig()
    ideal = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    write_structures(tmp_path / "train.extxyz", [ideal])
    ref = write_reference(tmp_path / "train.extxyz", cfg, tmp_path / "ref.json")
    assert ref["nn_min"] == pytest.approx(5.43 * np.sqrt(3) / 4, rel=1e-9)
    moved = ideal.copy()
    i, vec = neighbor_list("iD", moved, 2.4)
    moved.positions[i[0]] += 0.6 * vec[0] / np.linalg.norm(vec[0])  # along its first bond
    write_structures(tmp_path / "run.extxyz", [ideal, moved])
    run = structure_run(tmp_path / "run.extxyz", tmp_path / "ref.json", "shortcut-none", 1, cfg, tmp_path / "run.json")
    assert run["close_fraction"] == pytest.approx(2 / 128)
    assert run["atoms_mean"] == 64 and run["atoms_std"] == 0


def _cristobalite():
    """Ideal beta-cristobalite SiO2 (24 atoms): Si on a diamond lattice (a = 7.16 Å), O at the
    midpoint of every Si-Si bond."""
    si = bulk("Si", "diamond", a=7.16, cubic=True)
    i, j, shift = neighbor_list("ijS", si, 3.2)
    keep = i < j
    mid = (si.positions[i[keep]] + si.positions[j[keep]] + shift[keep] @ si.cell.array) / 2
    return si + Atoms(["O"] * len(mid), positions=mid)


def test_evaluate_shard_measures_like_the_labels_and_keeps_failures(tmp_path):
    cfg = PropertiesConfig(max_steps=300, structures_per_shard=2)
    silica = _cristobalite()
    frames = []
    for i, atoms in enumerate([silica, Atoms(cell=silica.cell, pbc=True), silica.copy()]):
        atoms.info.update(
            model="shortcut-all", n_steps=5, sample=i, target_property="shear_modulus", target_value=30.0 + i
        )
        frames.append(atoms)
    write_structures(tmp_path / "ns5.extxyz", frames)
    shard0 = evaluate_shard(tmp_path / "ns5.extxyz", 0, "tersoff", cfg, tmp_path / "shard0.csv")
    assert shard0["sample"].tolist() == [0, 1] and shard0["target"].tolist() == [30.0, 31.0]
    # the labels' function on the same (written and read back) structure
    expected = label_structure(read_structures(tmp_path / "ns5.extxyz")[0], "tersoff", cfg)
    assert expected["converged"]
    assert shard0.loc[0, "value"] == pytest.approx(expected["shear_modulus"])
    assert bool(shard0.loc[0, "charge_balanced"]) and shard0.loc[0, "n_si"] == 8
    assert np.isnan(shard0.loc[1, "value"]) and shard0.loc[1, "reason"] == "no atoms (every atom a ghost)"
    shard1 = evaluate_shard(tmp_path / "ns5.extxyz", 1, "tersoff", cfg, tmp_path / "shard1.csv")
    assert shard1["sample"].tolist() == [2]
    del frames[0].info["target_value"]
    write_structures(tmp_path / "bad.extxyz", frames)
    with pytest.raises(StructureError, match="bad.extxyz frame 0: no target_value"):
        evaluate_shard(tmp_path / "bad.extxyz", 0, "tersoff", cfg, tmp_path / "bad.csv")
