"""The sampling API: loading model files (and refusing bad ones) and generating structures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms

from mdshortcut.checkpoint import CheckpointError, read_model
from mdshortcut.data.ghost import build_tensors, save_tensors
from mdshortcut.sample import generate, load_model, normalise_targets
from mdshortcut.train import train_model

LABELS = ["shear_modulus", "ring_size"]
CONFIG = {
    "seed": 0,
    "device": "cpu",
    "model": {"n_layers": 2, "hidden": 16, "vector_channels": 2, "property_dim": 4, "cutoff": 4.0},
    "process": {"shortcut_levels": 3},
    "training": {"steps": 4, "batch_size": 3, "checkpoint_every": 4, "threads": 1},
}


# small tensors: one thread is faster, and much faster on a busy machine (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny MDShortcut model conditioned on both labels, and its training labels."""
    rng = np.random.default_rng(1)
    frames = [
        Atoms("Si3O6", scaled_positions=rng.random((9, 3)), cell=np.full(3, rng.uniform(6.0, 7.0)), pbc=True)
        for _ in range(6)
    ]
    labels = np.column_stack([rng.uniform(10, 50, 6), rng.uniform(4, 6, 6)])
    labels[0, 1] = np.nan
    tmp = tmp_path_factory.mktemp("model")
    save_tensors(tmp / "tensors.pt", build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0))
    train_model(tmp / "tensors.pt", tmp / "shortcut-all.pt", tmp / "ckpt", "shortcut", "all", CONFIG)
    return tmp / "shortcut-all.pt", labels


CELLS = torch.tensor(
    [
        np.diag([7.0, 7.0, 7.0]).tolist(),
        [[6.5, 0, 0], [1.0, 6.8, 0], [0.5, -0.7, 7.2]],
        np.diag([8.0, 7.5, 7.0]).tolist(),
    ],
    dtype=torch.float32,
)


@pytest.mark.parametrize("n_steps", [1, 3, 12])
def test_generate_structures(trained, n_steps):
    path, _ = trained
    model = load_model(path)
    frames = generate(model, CELLS, n_steps, seed=5, batch_size=2)
    assert len(frames) == 3
    for atoms, cell in zip(frames, CELLS):
        assert np.allclose(atoms.cell.array, cell.numpy()) and atoms.pbc.all()
        assert set(atoms.get_chemical_symbols()) <= {"Si", "O"}
        assert len(atoms) <= math.floor(0.1 * abs(np.linalg.det(cell.numpy())))
        frac = atoms.get_scaled_positions(wrap=False)
        assert (frac >= -1e-5).all() and (frac < 1 + 1e-5).all()
    again = generate(model, CELLS, n_steps, seed=5, batch_size=2)
    other = generate(model, CELLS, n_steps, seed=6, batch_size=2)
    assert all(
        np.array_equal(a.positions, b.positions) and a.get_chemical_symbols() == b.get_chemical_symbols()
        for a, b in zip(frames, again)
    )
    assert not all(len(a) == len(b) and np.allclose(a.positions, b.positions) for a, b in zip(frames, other))


def test_generate_from_a_path_with_targets(trained):
    path, _ = trained
    targets = {"shear_modulus": torch.tensor([20.0, float("nan"), 40.0])}
    frames = generate(str(path), CELLS, 2, targets=targets, seed=1)
    assert len(frames) == 3


def test_targets_are_normalised_with_the_training_statistics(trained):
    path, labels = trained
    model = load_model(path)
    values = torch.tensor([4.5, float("nan"), 5.5])
    y = normalise_targets(model, {"ring_size": values}, 3)
    finite = labels[~np.isnan(labels[:, 1]), 1]
    expect = (values.numpy() - finite.mean()) / finite.std()
    assert np.allclose(y["ring_size"].numpy(), expect, equal_nan=True, atol=1e-5)
    assert set(y) == {"ring_size"}


def test_bad_targets_are_refused(trained):
    path, _ = trained
    model = load_model(path)
    with pytest.raises(
        KeyError, match=r"\['density'\] unknown to this model \(it knows: \['shear_modulus', 'ring_size'\]\)"
    ):
        generate(model, CELLS, 1, targets={"density": torch.ones(3)})
    with pytest.raises(ValueError, match=r"target ring_size: expected shape \(3,\)"):
        generate(model, CELLS, 1, targets={"ring_size": torch.ones(2)})
    with pytest.raises(ValueError, match=r"cells \[0\]: too small for one atom"):
        generate(model, torch.eye(3)[None], 1)


def test_generate_reuses_the_neighbour_list(trained, monkeypatch):
    path, _ = trained
    model = load_model(path)
    caches = []
    new = model.denoiser.new_neighbours

    def record():
        caches.append(new())
        return caches[-1]

    monkeypatch.setattr(model.denoiser, "new_neighbours", record)
    generate(model, CELLS[:1], 40, seed=0)
    assert len(caches) == 1 and 1 <= caches[0].n_builds < 40


def test_unusable_model_files_are_refused(trained, tmp_path):
    path, _ = trained
    good = read_model(path)
    with pytest.raises(CheckpointError, match=r"missing\.pt: no such checkpoint$"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"garbage\.pt: not a readable checkpoint \(.*\)$"):
        load_model(tmp_path / "garbage.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable checkpoint"):
        load_model(tmp_path / "cut.pt")
    torch.save({**good, "version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match=r"future\.pt: format version 99, this mdshortcut reads version 1"):
        load_model(tmp_path / "future.pt")
    torch.save({"cell": torch.zeros(1, 3, 3)}, tmp_path / "tensors.pt")
    with pytest.raises(CheckpointError, match=r"tensors\.pt: not an mdshortcut-model file"):
        load_model(tmp_path / "tensors.pt")
    torch.save({**good, "model_config": {**good["model_config"], "hidden": 32}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=r"other\.pt: the stored model cannot be rebuilt \(.*size mismatch"):
        load_model(tmp_path / "other.pt")
    for name in ("garbage", "cut", "future", "tensors", "other"):
        with pytest.raises(CheckpointError) as err:
            load_model(tmp_path / f"{name}.pt")
        assert "\n" not in str(err.value)
