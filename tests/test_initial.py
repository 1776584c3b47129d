"""Initial structures of replicas: diamond crystal and random packing (paper A.9.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mdshortcut.md.initial import InitialStructureError, initial_structure
from mdshortcut.md.protocol import Initial

SIO2 = Initial(kind="random", n_atoms=(24, 36), formula={"Si": 1, "O": 2}, volume_factor=4.0, min_distance=1.2)


def test_diamond_geometry():
    atoms = initial_structure(Initial(kind="diamond", repeat=(2, 2, 2)), np.random.default_rng(0))
    assert len(atoms) == 64 and atoms.pbc.all()
    assert np.allclose(atoms.cell.lengths(), 2 * 5.431)
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    # every atom has 4 nearest neighbours at a*sqrt(3)/4 = 2.3517 Å
    assert np.allclose(d.min(axis=1), 5.431 * math.sqrt(3) / 4)
    assert ((d < 2.5).sum(axis=1) == 4).all()


def test_random_structure_follows_the_paper():
    """Whole SiO2 units in range, cubic cell of volume 4 * sum (4/3) pi r_cov^3 with the
    covalent radii Si 1.11 Å, O 0.66 Å, no pair closer than min_distance."""
    for seed in range(20):
        atoms = initial_structure(SIO2, np.random.default_rng(seed))
        n_si, n_o = atoms.symbols.count("Si"), atoms.symbols.count("O")
        assert n_o == 2 * n_si and 24 <= len(atoms) <= 36
        expected = 4.0 * (n_si * 4 / 3 * math.pi * 1.11**3 + n_o * 4 / 3 * math.pi * 0.66**3)
        assert atoms.get_volume() == pytest.approx(expected)
        assert np.allclose(atoms.cell.angles(), 90) and np.ptp(atoms.cell.lengths()) < 1e-12
        d = atoms.get_all_distances(mic=True)
        assert d[np.triu_indices(len(atoms), 1)].min() >= 1.2
        frac = atoms.get_scaled_positions(wrap=False)
        assert ((frac >= 0) & (frac < 1)).all()


def test_random_sizes_cover_the_range():
    sizes = {len(initial_structure(SIO2, np.random.default_rng(s))) for s in range(200)}
    assert sizes == {24, 27, 30, 33, 36}


def test_random_structure_is_deterministic_per_seed():
    a = initial_structure(SIO2, np.random.default_rng(7))
    b = initial_structure(SIO2, np.random.default_rng(7))
    c = initial_structure(SIO2, np.random.default_rng(8))
    assert a == b
    assert len(a) != len(c) or not np.allclose(a.positions, c.positions)


def test_random_placement_fails_clearly():
    crowded = Initial(kind="random", n_atoms=(30, 30), formula={"Si": 1, "O": 2}, volume_factor=1.0, min_distance=3.0)
    with pytest.raises(InitialStructureError, match="min_distance: cannot place atom"):
        initial_structure(crowded, np.random.default_rng(0))


def test_no_whole_formula_unit_in_range():
    bad = Initial(kind="random", n_atoms=(25, 26), formula={"Si": 1, "O": 2})
    with pytest.raises(InitialStructureError, match=r"n_atoms: no whole number of SiO2 units"):
        initial_structure(bad, np.random.default_rng(0))
