"""The denoiser: E(3) equivariance, periodicity, permutation, batching, property embeddings,
and agreement of the optimised EGNN path with the straightforward one (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdshortcut.model import Batch, Denoiser, ModelConfig, NeighbourCache, egnn
from mdshortcut.model.egnn import smooth_cutoff

N_EL = 3
PROPS = ["shear_modulus", "ring_size"]
TOL = dict(rtol=1e-9, atol=1e-11)


def make_model(n_levels: int = 0, properties=PROPS, **options) -> Denoiser:
    """A small float64 denoiser; ``options``: ModelConfig's denoiser options."""
    torch.manual_seed(0)
    cfg = ModelConfig(n_layers=2, hidden=16, vector_channels=3, property_dim=4, skin=0.5, **options)
    model = Denoiser(cfg, N_EL, properties, n_levels).double().eval()
    with torch.no_grad():  # a position output of order 1 Å, so that tolerances are meaningful
        for layer in model.egnn.layers:
            layer.coord.last.weight.normal_(0, 0.3)
            if layer.cond is not None:  # zero at initialisation: give it a part to play
                layer.cond.weight.normal_(0, 0.3)
    return model


def structure(seed: int, n: int, length: float):
    rng = np.random.default_rng(seed)
    cell = torch.tensor(np.diag([length, 0.9 * length, 1.05 * length]) + rng.uniform(-1, 1, (3, 3)) * np.tri(3, k=-1))
    pos = torch.tensor(rng.uniform(0, 1, (n, 3))) @ cell
    e = torch.tensor(rng.normal(size=(n, N_EL)))
    return cell, pos, e


def run(model, cells, positions, e, t, y=None, level=None, **kw):
    batch = Batch.from_structures(torch.stack(list(cells)), list(positions))
    with torch.no_grad():
        return model(batch, e, torch.as_tensor(t, dtype=torch.float64), y, level, **kw)


Y = {"shear_modulus": torch.tensor([0.3]), "ring_size": torch.tensor([-1.2])}


@pytest.fixture(scope="module")
def model():
    return make_model()


@pytest.fixture(scope="module")
def sample():
    return structure(0, 14, 7.5)  # cell shorter than 2 x cutoff


def test_output_is_not_trivial(model, sample):
    cell, pos, e = sample
    x, eo = run(model, [cell], [pos], e, [0.4], Y)
    assert x.shape == (14, 3) and eo.shape == (14, N_EL)
    assert x.norm(dim=1).mean() > 0.05  # the checks below would pass for a zero output


def test_rotation_and_reflection(model, sample):
    cell, pos, e = sample
    q, _ = torch.linalg.qr(torch.tensor(np.random.default_rng(1).normal(size=(3, 3))))
    q = q @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))  # include a mirror
    x, eo = run(model, [cell], [pos], e, [0.4], Y)
    xr, eor = run(model, [cell @ q.T], [pos @ q.T], e, [0.4], Y)
    torch.testing.assert_close(xr, x @ q.T, **TOL)
    torch.testing.assert_close(eor, eo, **TOL)


def test_translation_and_lattice_shift(model, sample):
    cell, pos, e = sample
    x, eo = run(model, [cell], [pos], e, [0.4], Y)
    xt, eot = run(model, [cell], [pos + torch.tensor([3.3, -17.1, 0.7], dtype=torch.float64)], e, [0.4], Y)
    torch.testing.assert_close(xt, x, **TOL)
    torch.testing.assert_close(eot, eo, **TOL)
    shifted = pos.clone()
    shifted[5] += cell[1] - 2 * cell[2]
    xs, eos = run(model, [cell], [shifted], e, [0.4], Y)
    torch.testing.assert_close(xs, x, **TOL)
    torch.testing.assert_close(eos, eo, **TOL)


def test_permutation(model, sample):
    cell, pos, e = sample
    perm = torch.randperm(len(pos), generator=torch.Generator().manual_seed(2))
    x, eo = run(model, [cell], [pos], e, [0.4], Y)
    xp, eop = run(model, [cell], [pos[perm]], e[perm], [0.4], Y)
    torch.testing.assert_close(xp, x[perm], **TOL)
    torch.testing.assert_close(eop, eo[perm], **TOL)


def test_small_cell_equals_its_supercell(model, sample):
    """A 7.5 Å cell (< 2 x 6.5 Å) and its 2x2x2 supercell describe the same crystal: every atom
    must get the same outputs, which needs every periodic image in the graph."""
    cell, pos, e = sample
    images = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=torch.float64)
    super_pos = torch.cat([pos + img @ cell for img in images])
    x, eo = run(model, [cell], [pos], e, [0.4], Y)
    xs, eos = run(model, [2 * cell], [super_pos], e.repeat(8, 1), [0.4], Y)
    n = len(pos)
    for k in range(8):
        torch.testing.assert_close(xs[k * n : (k + 1) * n], x, **TOL)
        torch.testing.assert_close(eos[k * n : (k + 1) * n], eo, **TOL)


def test_batched_equals_unbatched(model):
    s1, s2 = structure(3, 10, 8.0), structure(4, 17, 10.0)
    y = {"shear_modulus": torch.tensor([0.3, -0.5]), "ring_size": torch.tensor([1.0, 0.2])}
    xb, eb = run(model, [s1[0], s2[0]], [s1[1], s2[1]], torch.cat([s1[2], s2[2]]), [0.2, 0.9], y)
    for k, (s, sl) in enumerate([(s1, slice(0, 10)), (s2, slice(10, 27))]):
        yk = {name: v[k : k + 1] for name, v in y.items()}
        x, eo = run(model, [s[0]], [s[1]], s[2], [[0.2, 0.9][k]], yk)
        torch.testing.assert_close(xb[sl], x, **TOL)
        torch.testing.assert_close(eb[sl], eo, **TOL)


@pytest.mark.parametrize("n_levels, slots", [(0, 16384), (4, 16384), (0, 7)])
def test_optimised_path_equals_straightforward(n_levels, slots, monkeypatch):
    monkeypatch.setattr(egnn, "INFERENCE_SLOTS", slots)  # 7: one atom per block
    model = make_model(n_levels)
    s1, s2 = structure(5, 12, 7.0), structure(6, 20, 9.0)
    args = ([s1[0], s2[0]], [s1[1], s2[1]], torch.cat([s1[2], s2[2]]), [0.3, 0.7])
    level = torch.tensor([0, 3]) if n_levels else None
    y = {"shear_modulus": torch.tensor([0.1, 0.2]), "ring_size": torch.tensor([0.3, 0.4])}
    x, eo = run(model, *args, y, level)
    xr, eor = run(model, *args, y, level, straightforward=True)
    torch.testing.assert_close(x, xr, **TOL)
    torch.testing.assert_close(eo, eor, **TOL)
    if n_levels:  # the level is an input
        x2, _ = run(model, *args, y, torch.tensor([1, 3]))
        assert not torch.allclose(x2[:12], x[:12])
        torch.testing.assert_close(x2[12:], x[12:], **TOL)


def test_float32_paths_agree():
    model = make_model().float()
    cell, pos, e = structure(7, 64, 11.0)
    batch = Batch.from_structures(cell[None].float(), [pos.float()])
    y = {k: v.float() for k, v in Y.items()}
    with torch.inference_mode():
        x, eo = model(batch, e.float(), torch.tensor([0.5]), y)
        xr, eor = model(batch, e.float(), torch.tensor([0.5]), y, straightforward=True)
    torch.testing.assert_close(x, xr, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(eo, eor, rtol=1e-4, atol=1e-5)


def test_cached_neighbours_give_the_same_outputs(model, sample):
    cell, pos, e = sample
    cache = NeighbourCache(model.config.cutoff, skin=1.0)
    p = pos
    for step in range(4):
        x, eo = run(model, [cell], [p], e, [0.4], Y)
        xc, eoc = run(model, [cell], [p], e, [0.4], Y, neighbours=cache)
        torch.testing.assert_close(xc, x, **TOL)
        torch.testing.assert_close(eoc, eo, **TOL)
        p = p + 0.05 * torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(step))
    assert cache.n_builds == 1


def test_unknown_property_is_refused(model, sample):
    cell, pos, e = sample
    with pytest.raises(KeyError, match="density.*shear_modulus.*ring_size"):
        run(model, [cell], [pos], e, [0.4], {"density": torch.tensor([0.0])})


def test_null_property_is_random_given_is_deterministic(model):
    s1, s2 = structure(8, 10, 8.0), structure(9, 11, 8.0)
    args = ([s1[0], s2[0]], [s1[1], s2[1]], torch.cat([s1[2], s2[2]]), [0.5, 0.5])
    full = {"shear_modulus": torch.tensor([0.3, -0.2]), "ring_size": torch.tensor([1.0, 0.0])}
    a, b = run(model, *args, full), run(model, *args, full)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # structure 0: ring_size null (NaN); structure 1: both given
    partial = {"shear_modulus": torch.tensor([0.3, -0.2]), "ring_size": torch.tensor([float("nan"), 0.0])}
    p1, p2 = run(model, *args, partial), run(model, *args, partial)
    assert not torch.allclose(p1[1][:10], p2[1][:10])  # fresh draw per call
    torch.testing.assert_close(p1[1][10:], p2[1][10:], rtol=0, atol=0)
    # an absent key is null for every structure; a seeded generator reproduces the draw
    g = lambda: torch.Generator().manual_seed(11)  # noqa: E731
    n1 = run(model, *args, {"shear_modulus": full["shear_modulus"]}, generator=g())
    n2 = run(model, *args, {"shear_modulus": full["shear_modulus"]}, generator=g())
    torch.testing.assert_close(n1, n2, rtol=0, atol=0)
    assert not torch.allclose(n1[1], run(model, *args, None, generator=g())[1])


def test_level_required_exactly_when_configured(sample):
    cell, pos, e = sample
    with pytest.raises(ValueError, match="level"):
        run(make_model(n_levels=3), [cell], [pos], e, [0.4], Y)
    with pytest.raises(ValueError, match="level"):
        run(make_model(n_levels=3), [cell], [pos], e, [0.4], Y, torch.tensor([3]))
    with pytest.raises(ValueError, match="level"):
        run(make_model(), [cell], [pos], e, [0.4], Y, torch.tensor([0]))


def test_smooth_cutoff_values():
    r = torch.tensor([0.0, 3.25, 6.5, 9.0], dtype=torch.float64)
    expected = 2 * np.tanh(np.array([1.0, 0.5, 0.0, 0.0])) ** 2
    torch.testing.assert_close(smooth_cutoff(r, 6.5), torch.tensor(expected))


def test_outputs_are_smooth_in_positions(sample):
    """Gradients w.r.t. positions exist and match finite differences (fixed edge set)."""
    model = make_model(properties=[])
    cell, pos, e = sample
    pos = pos[:6].clone().requires_grad_(True)

    def f(p):
        batch = Batch.from_structures(cell[None], [p])
        return model(batch, e[:6], torch.tensor([0.4], dtype=torch.float64))[0]

    assert torch.autograd.gradcheck(f, (pos,), eps=1e-6, atol=1e-6)


def test_training_gradients_equal_straightforward(monkeypatch):
    """Back-propagation through the optimised path (blocks, in-place scatters) gives the
    reference path's parameter gradients."""
    monkeypatch.setattr(egnn, "CHUNK_SLOTS", 50)
    model = make_model(n_levels=3)
    cell, pos, e = structure(10, 16, 8.0)
    batch = Batch.from_structures(cell[None], [pos])
    grads = []
    for straightforward in (False, True):
        model.zero_grad()
        x, eo = model(
            batch, e, torch.tensor([0.6], dtype=torch.float64), Y, torch.tensor([2]), straightforward=straightforward
        )
        (x.square().sum() + eo.square().sum()).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) == len(list(model.parameters()))
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-8, atol=1e-12, msg=name)


def test_a_runaway_position_output_is_penalised_not_wrapped():
    """The position output is a displacement: scaled far past the cell, it must stay as large
    (and the ODE loss grow with its square), not be folded back into the cell, where the loss
    saturates at about twice its trivial value and nothing pulls the output back (the a-Si ODE
    of the first default run drifted to ~100 Å outputs in a 10.7 Å cell exactly so)."""
    from mdshortcut.data.dataset import Structures
    from mdshortcut.generative import MaterialODE, ProcessConfig

    model = make_model(properties=[])
    cell, pos, e = structure(3, 24, 7.0)
    batch = Batch.from_structures(cell[None], [pos])
    gen = torch.Generator().manual_seed(0)
    losses = {}
    for scale in (1.0, 100.0):
        with torch.no_grad():
            for layer in model.egnn.layers:
                layer.coord.last.weight.mul_(scale)
            x_out, _ = model(batch, e, torch.tensor([0.5], dtype=torch.float64))
            width = cell.diagonal().min().item()
            losses[scale] = (
                MaterialODE(ProcessConfig()).loss(model, Structures(batch, e, {}), gen.manual_seed(1))[1]["x"].item()
            )
    assert x_out.abs().max() > width, "a displacement larger than the cell must not be wrapped"
    trivial = 3 * width**2 / 12  # E|pbc(X_1 - X_0)|² of uniform noise, about
    assert losses[100.0] > 100 * trivial and losses[100.0] > 100 * losses[1.0]


@pytest.mark.parametrize("slots", [8192, 64])
def test_fused_path_matches_reference_in_float32(slots, monkeypatch):
    """Training precision: the fused path's outputs and gradients w.r.t. the positions, the
    element inputs and every weight equal those of the straightforward Eq. 13 path (autograd
    through the written-out formula) to 1e-5 of each tensor's largest entry. Blocks of 64
    slots hold one or two atoms each: many blocks."""
    monkeypatch.setattr(egnn, "CHUNK_SLOTS", slots)
    torch.manual_seed(1)
    cfg = ModelConfig(n_layers=3, hidden=32, vector_channels=4, property_dim=4)
    model = Denoiser(cfg, N_EL, PROPS, n_levels=3)
    with torch.no_grad():
        for layer in model.egnn.layers:
            layer.coord.last.weight.normal_(0, 0.2)
            layer.coord.last.bias.normal_(0, 0.1)
    structures = [structure(20, 24, 8.0), structure(21, 30, 9.0)]
    batch = Batch.from_structures(torch.stack([s[0] for s in structures]).float(), [s[1].float() for s in structures])
    batch.positions.requires_grad_(True)
    e = torch.cat([s[2] for s in structures]).float().requires_grad_(True)
    y = {"shear_modulus": torch.tensor([0.3, float("nan")]), "ring_size": torch.tensor([-1.0, 0.5])}
    weights = torch.Generator().manual_seed(2)
    results = []
    for straightforward in (False, True):
        model.zero_grad()
        batch.positions.grad = e.grad = None
        x, eo = model(
            batch,
            e,
            torch.tensor([0.3, 0.8]),
            y,
            torch.tensor([0, 2]),
            generator=torch.Generator().manual_seed(3),
            straightforward=straightforward,
        )
        gx = torch.randn(x.shape, generator=weights.manual_seed(4))
        ge = torch.randn(eo.shape, generator=weights.manual_seed(5))
        ((x * gx).sum() + (eo * ge).sum()).backward()
        named = {"x_out": x, "e_out": eo, "d/dpositions": batch.positions.grad, "d/de": e.grad}
        named.update({f"d/d{n}": p.grad for n, p in model.named_parameters()})
        results.append({k: v.detach().clone() for k, v in named.items()})
    fused, reference = results
    assert fused.keys() == reference.keys() and all(v is not None for v in fused.values())
    assert x.abs().max() > 0.1  # outputs of order 1 Å: the comparison is not of zeros
    for name, ref in reference.items():
        err = ((fused[name] - ref).abs().max() / ref.abs().max()).item()
        assert err <= 1e-5, f"{name}: relative difference {err:.2e}"


# the denoiser options (docs/design.md §7): each alone and all together
OPTIONS = [
    {"distance_features": "gaussian", "n_radial": 8},
    {"distance_features": "bessel", "n_radial": 6},
    {"noise_embedding": "every_layer"},
    {"update_distances": True},
    {"distance_features": "gaussian", "n_radial": 8, "noise_embedding": "every_layer", "update_distances": True},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_options_fused_path_and_gradients_equal_straightforward(options, monkeypatch):
    """Every option computes the same function and gradients (weights, positions, elements) on
    the fused path as on the written-out one, with blocks of a few atoms each."""
    monkeypatch.setattr(egnn, "CHUNK_SLOTS", 50)
    model = make_model(n_levels=3, **options)
    cell, pos, e = structure(10, 16, 8.0)
    batch = Batch.from_structures(cell[None], [pos])
    batch.positions.requires_grad_(True)
    e = e.clone().requires_grad_(True)
    results = []
    for straightforward in (False, True):
        model.zero_grad()
        batch.positions.grad = e.grad = None
        x, eo = model(
            batch, e, torch.tensor([0.05], dtype=torch.float64), Y, torch.tensor([2]), straightforward=straightforward
        )
        (x.square().sum() + eo.square().sum()).backward()
        named = {"x": x, "e": eo, "d/dpositions": batch.positions.grad, "d/de": e.grad}
        named.update({n: p.grad for n, p in model.named_parameters()})
        results.append({k: v.detach().clone() for k, v in named.items() if v is not None})
    assert results[0].keys() == results[1].keys() and len(results[0]) == 4 + len(list(model.parameters()))
    for name in results[0]:
        torch.testing.assert_close(results[0][name], results[1][name], rtol=1e-8, atol=1e-11, msg=name)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_options_keep_the_symmetries(options, sample):
    """Rotation with a mirror, and a cell against its 2x2x2 supercell, with every option."""
    model = make_model(**options)
    cell, pos, e = sample
    q, _ = torch.linalg.qr(torch.tensor(np.random.default_rng(1).normal(size=(3, 3))))
    x, eo = run(model, [cell], [pos], e, [0.2], Y)
    xr, eor = run(model, [cell @ q.T], [pos @ q.T], e, [0.2], Y)
    torch.testing.assert_close(xr, x @ q.T, **TOL)
    torch.testing.assert_close(eor, eo, **TOL)
    images = torch.tensor([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=torch.float64)
    xs, _ = run(model, [2 * cell], [torch.cat([pos + img @ cell for img in images])], e.repeat(8, 1), [0.2], Y)
    torch.testing.assert_close(xs[: len(pos)], x, **TOL)


def test_distance_features_against_their_formulas():
    """Values at hand-picked distances: SchNet's Gaussians (centre spacing 6.5/4 Å = width) and
    DimeNet's Bessel functions, computed here from their printed definitions."""
    r = torch.tensor([0.5, 2.35, 6.0], dtype=torch.float64)
    g = egnn.distance_features(r, 6.5, "gaussian", 5)
    assert g.shape == (3, 5)
    torch.testing.assert_close(g[1, 1], torch.tensor(np.exp(-0.5 * ((2.35 - 1.625) / 1.625) ** 2)))
    b = egnn.distance_features(r, 6.5, "bessel", 3)
    torch.testing.assert_close(b[2, 2], torch.tensor(np.sqrt(2 / 6.5) * np.sin(3 * np.pi * 6.0 / 6.5) / 6.0))
    torch.testing.assert_close(egnn.distance_features(r, 6.5, "tanh", 16)[:, 0], 2 * torch.tanh(r**2 / 6.5**2) - 1)
    with pytest.raises(ValueError, match="one of tanh, gaussian, bessel"):
        egnn.distance_features(r, 6.5, "cosine", 4)


def test_update_distances_gradients_are_reproducible_on_two_threads():
    """The same float32 backward three times on 2 threads gives bit-identical gradients with distances updated
    in every layer (advanced indexing's backward summed in a thread-dependent order: the SLURM and
    local runs of the cluster test trained different weights)."""
    model = make_model(n_levels=3, distance_features="gaussian", n_radial=8, update_distances=True).float().train()
    structures = [structure(seed, 150, 12.0) for seed in range(4)]
    batch = Batch.from_structures(
        torch.stack([c for c, _, _ in structures]).float(), [p.float() for _, p, _ in structures]
    )
    e = torch.cat([e for _, _, e in structures]).float()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(3):
            model.zero_grad()
            x, eo = model(batch, e, torch.full((4,), 0.05), {k: v.expand(4) for k, v in Y.items()}, torch.full((4,), 2))
            (x.square().sum() + eo.square().sum()).backward()
            grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for g in grads[1:] for a, b in zip(grads[0], g))
