"""Ring sizes on crystals whose rings are known, on periodic edge cases, and against an
independent shortest-path computation (networkx on a supercell)."""

import itertools
import math

import networkx as nx
import numpy as np
import pytest
from ase import Atoms
from ase.geometry import cellpar_to_cell
from ase.neighborlist import neighbor_list
from ase.spacegroup import crystal

from mdshortcut.properties.rings import bonds, mean_ring_size, ring_sizes, shortest_rings


def alpha_quartz():
    """alpha-quartz, P3_221, a = 4.916 Å, c = 5.4054 Å; Si (0.4697, 0, 0), O (0.4135, 0.2669,
    0.1191) with the symmetry operations of the CIF (L. Levien, C. T. Prewitt, D. J. Weidner,
    Am. Mineral. 65, 920 (1980); AMCSD 0000789)."""
    ops = [
        lambda x, y, z: (x, y, z),
        lambda x, y, z: (y, x, 2 / 3 - z),
        lambda x, y, z: (-y, x - y, 2 / 3 + z),
        lambda x, y, z: (-x, -x + y, 1 / 3 - z),
        lambda x, y, z: (-x + y, -x, 1 / 3 + z),
        lambda x, y, z: (x - y, -y, -z),
    ]
    symbols, frac = [], []
    for element, site in (("Si", (0.4697, 0.0, 0.0)), ("O", (0.4135, 0.2669, 0.1191))):
        for op in ops:
            f = np.mod(op(*site), 1.0)
            if not any(np.allclose((f - g + 0.5) % 1.0 - 0.5, 0.0, atol=1e-6) for g in frac):
                symbols.append(element)
                frac.append(f)
    cell = cellpar_to_cell([4.916, 4.916, 5.4054, 90, 90, 120])
    return Atoms(symbols, scaled_positions=frac, cell=cell, pbc=True)


def beta_cristobalite():
    """Idealised beta-cristobalite, Fd-3m: Si 8a (0, 0, 0), O 16c (1/8, 1/8, 1/8), a = 7.12 Å
    (R. W. G. Wyckoff, Z. Kristallogr. 62, 189 (1925))."""
    return crystal(["Si", "O"], basis=[(0, 0, 0), (1 / 8, 1 / 8, 1 / 8)], spacegroup=227, cellpar=[7.12] * 3 + [90] * 3)


def check_tetrahedral_network(atoms, bond_range):
    i, j, d = neighbor_list("ijd", atoms, 2.0)
    counts = np.bincount(i, minlength=len(atoms))
    symbols = np.array(atoms.get_chemical_symbols())
    assert (counts[symbols == "Si"] == 4).all() and (counts[symbols == "O"] == 2).all()
    assert bond_range[0] <= d.min() and d.max() <= bond_range[1]


def test_the_crystals_are_built_as_published():
    quartz = alpha_quartz()
    assert quartz.get_chemical_formula() == "O6Si3"
    assert quartz.get_volume() == pytest.approx(113.131, abs=1e-3)  # the CIF's cell volume
    check_tetrahedral_network(quartz, (1.604, 1.615))  # Si-O 1.605 and 1.614 Å
    cristobalite = beta_cristobalite()
    assert cristobalite.get_chemical_formula() == "O16Si8"
    check_tetrahedral_network(cristobalite, (1.541, 1.542))  # a·sqrt(3)/8


@pytest.mark.parametrize("build", [alpha_quartz, beta_cristobalite])
@pytest.mark.parametrize("repeat", [(1, 1, 1), (2, 2, 2)])
def test_silica_crystals_have_six_membered_rings_in_any_supercell(build, repeat):
    atoms = build().repeat(repeat)
    assert set(ring_sizes(atoms)) == {6}
    assert mean_ring_size(atoms) == 6.0


def test_bonds_follow_the_covalent_radii():
    # Si-O bonded below 1.3 * (1.11 + 0.66) = 2.301 Å, O-O below 1.716 Å, Si-Si below 2.886 Å.
    cell = np.eye(3) * 20.0
    for pair, d, bonded in [
        ("SiO", 2.29, True),
        ("SiO", 2.31, False),
        ("OO", 1.70, True),
        ("OO", 1.73, False),
        ("SiSi", 2.88, True),
        ("SiSi", 2.89, False),
    ]:
        atoms = Atoms(pair, positions=[(5, 5, 5), (5 + d, 5, 5)], cell=cell, pbc=True)
        assert (len(bonds(atoms)[0]) == 1) == bonded, (pair, d)


def test_a_chain_that_wraps_round_the_cell_is_no_ring():
    # Si-O-Si-O... along x through the boundary: infinite chain, each bond a bridge.
    atoms = Atoms("SiO", positions=[(0.0, 5, 5), (1.6, 5, 5)], cell=[3.2, 10, 10], pbc=True)
    assert len(bonds(atoms)[0]) == 2
    assert ring_sizes(atoms) == []
    assert math.isnan(mean_ring_size(atoms))


def test_a_ring_across_the_boundary_is_found_once():
    # A planar Si3O3 ring centred on a cell corner, so that it crosses every face: Si at
    # radius 1.8 Å (Si-Si 3.12 Å, not bonded), O between them at 1.2605 Å (Si-O 1.60 Å).
    angles = np.radians(np.arange(6) * 60.0)
    radius = np.where(np.arange(6) % 2 == 0, 1.8, 1.2605)
    positions = np.stack([radius * np.cos(angles), radius * np.sin(angles), np.zeros(6)], axis=1)
    atoms = Atoms("SiOSiOSiO", positions=positions, cell=[12, 12, 12], pbc=True)
    atoms.wrap()
    assert len(bonds(atoms)[0]) == 6
    assert ring_sizes(atoms) == [3]


def test_per_bond_rings_match_networkx_on_a_supercell():
    """Disordered network: cristobalite with displaced atoms and 3 of 16 O removed. For each
    bond of the cell, the ring it closes has the length of networkx's shortest path between
    its ends, with the bond removed, in the graph of a 7x7x7 block of cells around it."""
    rng = np.random.default_rng(7)
    atoms = beta_cristobalite()
    oxygens = np.flatnonzero(np.array(atoms.get_chemical_symbols()) == "O")
    del atoms[sorted(rng.choice(oxygens, size=3, replace=False))]
    atoms.rattle(0.05, seed=1)
    rings = shortest_rings(atoms)
    i, j, shift = bonds(atoms)

    graph = nx.Graph()
    block = range(-3, 4)
    for image in itertools.product(block, block, block):
        for a, b, s in zip(i, j, shift):
            other = tuple(int(x) for x in np.add(image, s))
            if all(-3 <= x <= 3 for x in other):
                graph.add_edge((a, image), (b, other))
    lengths = []
    for a, b, s in zip(i, j, shift):
        u, v = (a, (0, 0, 0)), (b, tuple(int(x) for x in s))
        graph.remove_edge(u, v)
        try:
            lengths.append(nx.shortest_path_length(graph, u, v) + 1)  # atoms in the ring
        except nx.NetworkXNoPath:
            lengths.append(None)
        graph.add_edge(u, v)
    for ring, length in zip(rings, lengths):
        if ring is None:
            assert length is None or length > 24
        else:
            assert len(ring) == length
    assert sum(r is not None for r in rings) > len(rings) / 2
    assert len({len(r) for r in rings if r is not None}) > 1  # a varied network
