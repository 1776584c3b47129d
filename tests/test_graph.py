"""Periodic graph: wrapping, minimum images, neighbour lists against brute force, the skin cache."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mdshortcut.model import graph
from mdshortcut.model.graph import Batch, NeighbourCache, edge_vectors, minimum_image, to_fractional, wrap

CUTOFF = 6.5


def triclinic(rng: np.random.Generator, length: float) -> np.ndarray:
    """A skewed cell (rows = lattice vectors, Å)."""
    return np.diag([length, 0.9 * length, 1.1 * length]) + rng.uniform(-0.25, 0.25, (3, 3)) * length * np.tri(3, k=-1)


def brute_force_edges(positions: np.ndarray, cell: np.ndarray, cutoff: float) -> set:
    """Every (i, j, image) with |x_j + image @ cell - x_i| < cutoff, by looping over images."""
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    reach = np.ceil(cutoff / heights).astype(int) + 1
    edges = set()
    ranges = [range(-r, r + 1) for r in reach]
    for image in itertools.product(*ranges):
        shifted = positions + np.array(image) @ cell
        dist = np.linalg.norm(shifted[None, :, :] - positions[:, None, :], axis=2)
        for i, j in zip(*np.nonzero(dist < cutoff)):
            if i != j or any(image):
                edges.add((int(i), int(j), image))
    return edges


def edge_set(i, j, shift, cell_of_edge) -> set:
    images = torch.linalg.solve(cell_of_edge.transpose(1, 2), shift[:, :, None])[:, :, 0]
    images = torch.round(images).long().tolist()
    return {(a, b, tuple(s)) for a, b, s in zip(i.tolist(), j.tolist(), images)}


def make_batch(rng, lengths, n_atoms) -> Batch:
    cells = torch.tensor(np.stack([triclinic(rng, a) for a in lengths]))
    # positions deliberately outside the cell: the list must not assume wrapped input
    positions = [torch.tensor(rng.uniform(-0.5, 1.5, (n, 3)) @ c.numpy()) for n, c in zip(n_atoms, cells)]
    return Batch.from_structures(cells, positions)


def test_wrap_and_minimum_image():
    rng = np.random.default_rng(0)
    b = make_batch(rng, [5.0, 9.0], [7, 5])
    w = wrap(b.positions, b.cell, b.batch)
    frac = to_fractional(w, b.cell, b.batch)
    assert (frac >= 0).all() and (frac < 1).all()
    jump = to_fractional(w - b.positions, b.cell, b.batch)
    assert torch.allclose(jump, torch.round(jump), atol=1e-10)  # moved by lattice vectors only

    dx = torch.tensor(rng.normal(0, 10, (12, 3)))
    mi = minimum_image(dx, b.cell, b.batch)
    f = to_fractional(mi, b.cell, b.batch)
    assert (f.abs() <= 0.5 + 1e-12).all()
    assert torch.allclose(
        to_fractional(mi - dx, b.cell, b.batch), torch.round(to_fractional(mi - dx, b.cell, b.batch)), atol=1e-10
    )


@pytest.mark.parametrize("dense", [False, True], ids=["cache", "dense"])
@pytest.mark.parametrize("length", [4.0, 8.0, 15.0])  # cutoff 6.5 Å: far above, near and below half the cell
def test_neighbour_list_matches_brute_force_batched(length, dense):
    rng = np.random.default_rng(int(length))
    b = make_batch(rng, [length, 0.8 * length], [9, 6])
    if dense:  # the GPU path, here on the CPU
        i, j, shift_int = graph._dense(b.positions, b.cell, b.n_atoms, CUTOFF)
        shift = torch.einsum("ea,eab->eb", shift_int.to(b.cell.dtype), b.cell[b.batch[i]])
    else:
        i, j, shift = NeighbourCache(CUTOFF).edges(b.positions, b.cell, b.batch)
    assert (b.batch[i] == b.batch[j]).all()
    r = edge_vectors(b.positions, i, j, shift).norm(dim=1)
    assert (r < CUTOFF).all()
    got = edge_set(i, j, shift, b.cell[b.batch[i]])
    expected = set()
    start = 0
    for cell, n in zip(b.cell.numpy(), b.n_atoms.tolist()):
        pos = b.positions[start : start + n].numpy()
        expected |= {(a + start, c + start, s) for a, c, s in brute_force_edges(pos, cell, CUTOFF)}
        start += n
    assert len(got) == len(i)  # no duplicate edges
    assert got == expected
    if length == 4.0:  # many images of the same pair, and self-images
        assert any(a == c for a, c, _ in got)


def random_batch(rng, dtype) -> Batch:
    """Structures of different sizes in one batch: skewed cells wider than twice the cutoff,
    between one and two cutoffs, shorter than the cutoff; one-atom structures; a ghost-heavy
    cell (100 atoms, 40 of them within 0.3 Å of one point)."""
    lengths = [15.0, 9.0, 5.0, 3.0, 4.0, 10.9, 7.0]
    n_atoms = [30, 20, 12, 1, 1, 77, 100]
    cells = torch.tensor(np.stack([triclinic(rng, a) for a in lengths]))
    positions = [rng.uniform(-0.5, 1.5, (n, 3)) @ c.numpy() for n, c in zip(n_atoms, cells)]
    positions[-1][:40] = positions[-1][0] + rng.uniform(-0.3, 0.3, (40, 3))
    return Batch.from_structures(cells, [torch.tensor(p) for p in positions]).to(dtype=dtype)


def sorted_edges(i, j, shift) -> list:
    return sorted(zip(i.tolist(), j.tolist(), map(tuple, shift.tolist())))


@pytest.mark.parametrize(
    "seed, dtype, chunk",
    [(0, torch.float32, graph.DENSE_CHUNK), (1, torch.float64, graph.DENSE_CHUNK), (2, torch.float32, 1)],
)
def test_dense_search_gives_vesins_edges(seed, dtype, chunk, monkeypatch):
    """The batched dense search (the GPU path) against vesin-torch structure by structure: the
    same (i, j, integer shift) edges, in one chunk or one structure a chunk."""
    monkeypatch.setattr(graph, "DENSE_CHUNK", chunk)
    b = random_batch(np.random.default_rng(seed), dtype)
    expected = sorted_edges(*graph._vesin(b.positions, b.cell, b.n_atoms, CUTOFF))
    assert len(expected) > 10_000 and len(set(expected)) == len(expected)
    assert sorted_edges(*graph._dense(b.positions, b.cell, b.n_atoms, CUTOFF)) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_build_neighbours_on_a_gpu_gives_vesins_edges():
    b = random_batch(np.random.default_rng(3), torch.float32)
    expected = sorted_edges(*graph._vesin(b.positions, b.cell, b.n_atoms, CUTOFF))
    on_gpu = b.to("cuda")
    got = graph.build_neighbours(on_gpu.positions, on_gpu.cell, on_gpu.n_atoms, CUTOFF)
    assert all(t.device.type == "cuda" for t in got)
    assert sorted_edges(*got) == expected


def test_cache_gives_the_same_edges_as_a_fresh_build():
    rng = np.random.default_rng(3)
    b = make_batch(rng, [7.0, 11.0], [20, 40])
    cache = NeighbourCache(CUTOFF, skin=1.0)
    pos = wrap(b.positions, b.cell, b.batch)
    for step in range(12):
        i, j, shift = cache.edges(pos, b.cell, b.batch)
        fresh = NeighbourCache(CUTOFF).edges(pos, b.cell, b.batch)
        cached_set = edge_set(i, j, shift, b.cell[b.batch[i]])
        assert cached_set == edge_set(*fresh, b.cell[b.batch[fresh[0]]]), step
        assert len(cached_set) == len(i)
        # small moves, then wrapped back into the cell: atoms cross the cell faces
        pos = wrap(pos + torch.tensor(rng.normal(0, 0.08, pos.shape)), b.cell, b.batch)
    assert cache.n_builds < 12  # reused at least once
    assert cache.n_builds > 1  # and rebuilt after atoms drifted more than skin/2


def test_cache_rebuilds_on_large_move_or_new_cell():
    rng = np.random.default_rng(4)
    b = make_batch(rng, [9.0], [30])
    cache = NeighbourCache(CUTOFF, skin=1.0)
    cache.edges(b.positions, b.cell, b.batch)
    cache.edges(b.positions + 0.1, b.cell, b.batch)  # a uniform small translation: reused
    assert cache.n_builds == 1
    moved = b.positions.clone()
    moved[0, 0] += 0.6  # one atom beyond skin/2
    cache.edges(moved, b.cell, b.batch)
    assert cache.n_builds == 2
    cache.edges(moved, b.cell * 1.01, b.batch)
    assert cache.n_builds == 3


def test_distances_are_differentiable():
    rng = np.random.default_rng(5)
    b = make_batch(rng, [6.0], [8])
    pos = b.positions.clone().requires_grad_(True)
    i, j, shift = NeighbourCache(CUTOFF).edges(pos, b.cell, b.batch)
    edge_vectors(pos, i, j, shift).norm(dim=1).sum().backward()
    # d/dx_k sum_edges |r_ij| = 2 sum_{edges from k} -r_kj/|r_kj| (full list: each pair twice)
    r = edge_vectors(pos, i, j, shift).detach()
    expected = torch.zeros_like(pos).index_add_(0, i, -2 * r / r.norm(dim=1, keepdim=True))
    assert torch.allclose(pos.grad, expected, atol=1e-10)
