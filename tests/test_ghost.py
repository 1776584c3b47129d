"""Ghost-atom padding and the tensors file: exact round trip, n_a, seeds, labels, errors."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from ase import Atoms
from ase.io import read, write

from mdshortcut.config import ConfigError
from mdshortcut.data.build import write_dataset_tensors
from mdshortcut.data.ghost import (
    build_tensors,
    label_statistics,
    load_tensors,
    n_slots,
    remove_ghosts,
    samples,
    save_tensors,
    to_atoms,
)
from mdshortcut.io import StructureError
from mdshortcut.pipeline.validation import validate_config


def silica(n_si, length, seed):
    rng = np.random.default_rng(seed)
    cell = np.diag([length, length * 1.1, length * 0.9])
    cell[2, 0] = 0.7
    symbols = ["Si", "O", "O"] * n_si
    rng.shuffle(symbols)
    return Atoms(symbols, scaled_positions=rng.random((3 * n_si, 3)), cell=cell, pbc=True)


REPO = Path(__file__).resolve().parents[1]
FRAMES = [silica(4, 8.0, 0), silica(6, 9.5, 1), silica(5, 8.7, 2)]


def test_round_trip_is_exact(tmp_path):
    labels = np.array([[30.0, 5.5], [np.nan, 6.0], [25.0, np.nan]])
    tensors = build_tensors(FRAMES, ["Si", "O"], 0.1, ["shear_modulus", "ring_size"], labels, "a-sio2", seed=0)
    save_tensors(tmp_path / "tensors.pt", tensors)
    loaded = torch.load(tmp_path / "tensors.pt", weights_only=True)
    assert loaded["elements"] == ["X", "Si", "O"] and loaded["dataset"] == "a-sio2"
    for original, back in zip(FRAMES, samples(load_tensors(tmp_path / "tensors.pt"))):
        assert back.get_chemical_symbols() == original.get_chemical_symbols()
        assert np.array_equal(back.positions, original.positions)
        assert np.array_equal(back.cell.array, original.cell.array)
        assert back.pbc.all()
    assert np.array_equal(loaded["labels"].numpy(), labels, equal_nan=True)


def test_padding_to_floor_rho_max_volume_with_uniform_ghosts():
    rho_max = 0.1
    tensors = build_tensors(FRAMES, ["Si", "O"], rho_max, [], np.zeros((3, 0)), "a-sio2", seed=5)
    n_atoms = tensors["n_atoms"].numpy()
    assert n_atoms.tolist() == [math.floor(rho_max * a.get_volume()) for a in FRAMES]
    assert tensors["n_real"].tolist() == [len(a) for a in FRAMES]
    assert tensors["positions"].shape == (n_atoms.sum(), 3) and tensors["types"].dtype == torch.int64
    start = 0
    for atoms, n in zip(FRAMES, n_atoms):
        types = tensors["types"][start : start + n].numpy()
        positions = tensors["positions"][start : start + n].numpy()
        assert (types[: len(atoms)] > 0).all() and (types[len(atoms) :] == 0).all()
        frac = np.linalg.solve(atoms.cell.array.T, positions[len(atoms) :].T).T
        assert ((frac >= 0) & (frac < 1)).all()
        start += n
    ghosts = tensors["positions"][tensors["types"] == 0]
    again = build_tensors(FRAMES, ["Si", "O"], rho_max, [], np.zeros((3, 0)), "a-sio2", seed=5)
    other = build_tensors(FRAMES, ["Si", "O"], rho_max, [], np.zeros((3, 0)), "a-sio2", seed=6)
    assert torch.equal(ghosts, again["positions"][again["types"] == 0])
    assert not torch.equal(ghosts, other["positions"][other["types"] == 0])


def test_ghost_positions_are_uniform_in_the_cell():
    big = Atoms("Si", positions=[(0, 0, 0)], cell=np.diag([30.0, 30.0, 30.0]), pbc=True)
    tensors = build_tensors([big], ["Si"], 0.2, [], np.zeros((1, 0)), "a-si", seed=1)
    frac = tensors["positions"][1:].numpy() / 30.0
    assert len(frac) == 5399
    for axis in range(3):
        counts, _ = np.histogram(frac[:, axis], bins=10, range=(0, 1))
        assert np.abs(counts - len(frac) / 10).max() < 4 * np.sqrt(len(frac) / 10)


def test_to_atoms_removes_ghosts_and_remove_ghosts_agrees():
    cell = np.eye(3) * 5.0
    atoms = to_atoms(
        torch.tensor(cell), torch.tensor([[0.0, 0, 0], [1, 1, 1], [2, 2, 2]]), torch.tensor([1, 0, 2]), ["X", "Si", "O"]
    )
    assert atoms.get_chemical_symbols() == ["Si", "O"]
    assert np.array_equal(atoms.positions, [[0, 0, 0], [2, 2, 2]])
    with_x = Atoms("SiXO", positions=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], cell=cell, pbc=True)
    assert remove_ghosts(with_x).get_chemical_symbols() == ["Si", "O"]


def test_too_many_atoms_names_the_frame_and_rho_max():
    dense = silica(10, 6.0, 3)  # 30 atoms in ~240 Å^3: n_a = 24 at rho_max 0.1
    assert n_slots(dense.cell.array, 0.1) < len(dense)
    with pytest.raises(StructureError, match=r"data.extxyz frame 1: 30 atoms exceed n_a .* larger rho_max"):
        build_tensors([FRAMES[0], dense], ["Si", "O"], 0.1, [], np.zeros((2, 0)), "a-sio2", 0, source="data.extxyz")


def test_label_statistics_use_finite_values_only():
    mean, std = label_statistics(np.array([[1.0, np.nan, 2.0], [3.0, np.nan, 2.0], [np.nan, np.nan, 2.0]]))
    assert mean[0] == 2.0 and std[0] == 1.0
    assert math.isnan(mean[1]) and math.isnan(std[1])
    assert mean[2] == 2.0 and std[2] == 1.0  # zero spread: std 1, normalisation is a shift


def test_dataset_tensors_from_files(tmp_path):
    write(tmp_path / "structures.extxyz", FRAMES, format="extxyz")
    table = pd.DataFrame(
        {
            "index": [0, 1, 2],
            "shear_modulus": [30.0, np.nan, 25.0],
            "ring_size": [5.5, np.nan, 6.0],
            "density": [2.2, np.nan, 2.3],
            "converged": [True, False, True],
            "reason": ["", "relaxation not converged", ""],
        }
    )
    table.to_csv(tmp_path / "labels.csv", index=False)
    n = write_dataset_tensors(
        tmp_path / "structures.extxyz",
        tmp_path / "labels.csv",
        tmp_path / "t.pt",
        "a-sio2",
        "tersoff",
        ["ring_size", "shear_modulus"],
        0.1,
        0,
    )
    t = load_tensors(tmp_path / "t.pt")
    assert n == 3 and t["label_names"] == ["ring_size", "shear_modulus"]
    assert np.array_equal(t["labels"].numpy(), [[5.5, 30.0], [np.nan, np.nan], [6.0, 25.0]], equal_nan=True)
    assert np.allclose(t["label_mean"].numpy(), [5.75, 27.5])
    for original, back in zip(read(tmp_path / "structures.extxyz", ":"), samples(t)):
        assert np.array_equal(back.positions, original.positions)
        assert np.array_equal(back.cell.array, original.cell.array)
    table.iloc[:2].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(StructureError, match="short.csv: rows do not match the 3 frames"):
        write_dataset_tensors(
            tmp_path / "structures.extxyz",
            tmp_path / "short.csv",
            tmp_path / "t.pt",
            "a-sio2",
            "tersoff",
            ["ring_size"],
            0.1,
            0,
        )
    with pytest.raises(StructureError, match="element"):
        write_dataset_tensors(tmp_path / "structures.extxyz", None, tmp_path / "t.pt", "a-si", "sw", [], 0.1, 0)


# --- a dataset without ghosts (config ghosts: false): a fixed atom count ---

FIXED = [silica(4, 8.0, 0), silica(4, 8.3, 1), silica(4, 7.8, 2)]  # 12 atoms each, volumes differ


def test_without_ghosts_the_tensors_hold_exactly_the_real_atoms():
    tensors = build_tensors(FIXED, ["Si", "O"], None, [], np.zeros((3, 0)), "a-sio2", 0, ghosts=False)
    assert tensors["atoms_per_sample"] == 12 and tensors["rho_max"] is None
    assert tensors["n_atoms"].tolist() == tensors["n_real"].tolist() == [12, 12, 12]
    assert np.array_equal(tensors["positions"].numpy(), np.concatenate([a.positions for a in FIXED]))
    assert (tensors["types"] != 0).all()
    with_ghosts = build_tensors(FIXED, ["Si", "O"], 0.1, [], np.zeros((3, 0)), "a-sio2", 0)
    assert with_ghosts["atoms_per_sample"] is None and (with_ghosts["n_atoms"] > 12).all()


def test_without_ghosts_another_atom_count_is_refused_in_one_line(tmp_path):
    write(tmp_path / "structures.extxyz", [*FIXED, silica(5, 8.7, 3)], format="extxyz")
    with pytest.raises(StructureError) as err:
        write_dataset_tensors(
            tmp_path / "structures.extxyz", None, tmp_path / "t.pt", "a-sio2", "tersoff", [], None, 0, ghosts=False
        )
    assert str(err.value) == "a-sio2: ghosts: false needs one atom count in every frame, found [12, 15]"
    assert not (tmp_path / "t.pt").exists()


def _ghostless(name="a-sio2", **changes):
    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    ds = cfg["datasets"][name]
    ds["ghosts"] = False
    ds.pop("rho_max")
    for key, value in changes.items():
        ds[key] = value
    return cfg


def test_check_config_refuses_what_cannot_have_a_fixed_atom_count():
    plain = _ghostless("a-si")
    del plain["architecture"]
    validate_config(plain, REPO / "config/schema.yaml", ["c.yaml"])  # diamond: fixed, no rho_max
    # the architecture ablation's paper variant trains with the paper's ghosts: they need a density
    paper = r"architecture\.variants\.paper\.dataset\.ghosts: ghosts \(the paper's\) need datasets\.a-si\.rho_max"
    with pytest.raises(ConfigError, match=paper):
        validate_config(_ghostless("a-si"), REPO / "config/schema.yaml", ["c.yaml"])
    validate_config(_ghostless("a-si", rho_max=0.06), REPO / "config/schema.yaml", ["c.yaml"])
    with pytest.raises(ConfigError, match=r"a-sio2.initial.n_atoms: \[24, 36\] is a range, but ghosts: false"):
        validate_config(_ghostless(), REPO / "config/schema.yaml", ["c.yaml"])
    fixed = {"kind": "random", "n_atoms": [24, 24], "formula": {"Si": 1, "O": 2}, "volume_factor": 4.0}
    validate_config(_ghostless(initial=fixed), REPO / "config/schema.yaml", ["c.yaml"])
    sampling = {"n_steps": [1], "n_samples": 4, "cell": 8.0, "targets": {"density": [2.0, 2.4]}}
    labelled = _ghostless(initial=fixed, labels=["density"], models={"ode": ["all"]}, sampling=sampling)
    with pytest.raises(ConfigError, match=r"a-sio2.sampling.targets.density: with ghosts: false .* set by the cell"):
        validate_config(labelled, REPO / "config/schema.yaml", ["c.yaml"])
    with_ghosts = _ghostless("a-si")
    del with_ghosts["datasets"]["a-si"]["ghosts"]
    with pytest.raises(ConfigError, match=r"a-si.rho_max: required to train models with ghosts"):
        validate_config(with_ghosts, REPO / "config/schema.yaml", ["c.yaml"])


def test_ghostless_model_generates_its_fixed_count_and_old_files_use_rho_max(tmp_path, one_thread):
    from conftest import TINY_TRAINING
    from mdshortcut.checkpoint import CheckpointError, read_model, save_model
    from mdshortcut.sample import check_model, generate, load_model
    from mdshortcut.train import train_model

    save_tensors(
        tmp_path / "t.pt", build_tensors(FIXED, ["Si", "O"], None, [], np.zeros((3, 0)), "a-sio2", 0, ghosts=False)
    )
    train_model(tmp_path / "t.pt", tmp_path / "m.pt", tmp_path / "ckpt", "ode", "none", TINY_TRAINING)
    model = load_model(tmp_path / "m.pt")
    assert model.atoms_per_sample == 12 and model.rho_max is None
    cells = torch.tensor(np.array([np.eye(3) * 7.0, np.eye(3) * 11.0]), dtype=torch.float32)
    frames = generate(model, cells, 2, seed=1)
    assert [len(a) for a in frames] == [12, 12]
    assert all(set(a.get_chemical_symbols()) <= {"Si", "O"} for a in frames)
    check_model(model, "m.pt", "a-sio2", ["X", "Si", "O"], [], ghosts=False)
    with pytest.raises(CheckpointError, match=r"m.pt: a model of ghosts False, where this run needs True"):
        check_model(model, "m.pt", "a-sio2", ["X", "Si", "O"], [])
    # a model file from before the record (no atoms_per_sample): n_a = floor(rho_max · Vol) as before
    meta = read_model(tmp_path / "m.pt")
    old = {k: v for k, v in meta.items() if k not in ("format", "version", "atoms_per_sample")}
    save_model(tmp_path / "old.pt", **{**old, "rho_max": 0.05})
    old_model = load_model(tmp_path / "old.pt")
    assert old_model.atoms_per_sample is None
    slots = [math.floor(0.05 * 7.0**3), math.floor(0.05 * 11.0**3)]  # 17, 66
    assert old_model.atom_counts(cells).tolist() == slots
    frames = generate(old_model, cells, 2, seed=1)
    assert all(len(a) <= n for a, n in zip(frames, slots))
    check_model(old_model, "old.pt", "a-sio2", ["X", "Si", "O"], [])
