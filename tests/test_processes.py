"""The three processes against a Gaussian toy whose score, velocity and flow are known exactly.

Data: positions X_0 ~ N(m_X, diag v_X) in the middle of a 40 Å cube (no trajectory comes near
its faces, so periodicity never matters)
and element embeddings E_0 ~ N(m_E, diag v_E). Every closed form below is written from the
forward marginals of the paper / docs/design.md §1 (σ_X = 1.7 t Å, α = cos(πt/2), σ_E = 1.5
sin(πt/2); the ODE's linear interpolation), independently of the package's coefficients, so a
wrong factor in a drift, a diffusion, a loss target or a shortcut target shows up as a wrong
mean or variance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import log_ndtr, ndtri

from mdshortcut.data.dataset import Structures
from mdshortcut.generative import MaterialODE, MaterialSDE, MDShortcut, Prior, ProcessConfig, draw_prior
from mdshortcut.model.graph import Batch

Tensor = torch.Tensor
D = torch.float64  # the toys run in double precision
L = 40.0
MX = torch.tensor([20.0, 19.0, 21.0], dtype=D)
VX = torch.tensor([2.0, 2.5, 1.5], dtype=D) ** 2
ME = torch.tensor([1.0, -0.5, 0.3], dtype=D)
VE = torch.tensor([0.3, 0.5, 0.2], dtype=D) ** 2
SX, SE = 1.7, 1.5
CFG = ProcessConfig(shortcut_levels=3)


def sig_x(t):
    return SX * t


def alpha(t):
    return torch.cos(math.pi * t / 2)


def sig_e(t):
    return SE * torch.sin(math.pi * t / 2)


def gaussian_flow(x, m, v, a, s, a2, s2):
    """The PF-ODE map of N(a m, a² v + s²) onto N(a2 m, a2² v + s2²) (monotone, affine)."""
    return a2 * m + torch.sqrt(a2**2 * v + s2**2) / torch.sqrt(a**2 * v + s**2) * (x - a * m)


# small tensors: one thread is faster, and much faster on a busy machine (conftest.py)
pytestmark = pytest.mark.usefixtures("one_thread")


class ExactNoise:
    """E[ε | M_t] of the toy: σ(x - a m) / (a² v + σ²) (the ideal SDE network).

    ``t_seen`` keeps the times (B,) of the last call."""

    def new_neighbours(self):
        return None  # no graph

    def __call__(self, graph, e, t, y=None, level=None, neighbours=None, generator=None):
        self.t_seen = t
        ta = t[graph.batch][:, None]
        ex = sig_x(ta) * (graph.positions - MX) / (VX + sig_x(ta) ** 2)
        ee = sig_e(ta) * (e - alpha(ta) * ME) / (alpha(ta) ** 2 * VE + sig_e(ta) ** 2)
        return ex, ee


class ExactShortcut(ExactNoise):
    """The ideal MDShortcut network: at a shortcut level k it outputs the exact average velocity
    of the PF flow over Δt = 2^-k t_max, (u_X / σ_X^max, u_E); at level K + 1 the exact noise."""

    def __init__(self, config: ProcessConfig):
        self.top = config.shortcut_levels + 1
        self.t_max = config.t_max
        self.levels_seen: list[Tensor] = []

    def __call__(self, graph, e, t, y=None, level=None, neighbours=None, generator=None):
        self.levels_seen.append(level)
        ex, ee = super().__call__(graph, e, t)
        la = level[graph.batch][:, None]
        shortcut = la < self.top
        ta = t[graph.batch][:, None]
        dt = self.t_max * torch.pow(2.0, -la.to(t.dtype))
        t2 = torch.clamp(ta - dt, min=0.0)
        x2 = gaussian_flow(graph.positions, MX, VX, 1.0, sig_x(ta), 1.0, sig_x(t2))
        e2 = gaussian_flow(e, ME, VE, alpha(ta), sig_e(ta), alpha(t2), sig_e(t2))
        ux, ue = (graph.positions - x2) / dt, (e - e2) / dt  # M_{t-Δt} = M_t - Δt u
        return torch.where(shortcut, ux / SX, ex), torch.where(shortcut, ue, ee)


def truncated_normal_mean(m, s, lo, hi):
    """Mean of N(m, s²) truncated to [lo, hi], stable in the tails (an interval above the
    mean is mirrored below it, and the normaliser is taken in log space)."""
    a, b = (lo - m) / s, (hi - m) / s
    flip = a > 0
    a, b = np.where(flip, -b, a), np.where(flip, -a, b)
    with np.errstate(over="ignore"):  # |z| ~ 1e300 at t -> 1: its density is 0, as it should be
        log_z = log_ndtr(b) + np.log1p(-np.exp(log_ndtr(a) - log_ndtr(b)))
        r = np.exp(-0.5 * a * a - log_z) - np.exp(-0.5 * b * b - log_z)
    return m + s * np.where(flip, -r, r) / np.sqrt(2 * np.pi)


class ExactVelocity:
    """E[X_1 - X_0 | X_t] of the toy ODE (X_1 uniform in [0, L)^3, E_1 ~ N(0, I)).

    ``t_seen`` keeps the times (B,) of the last call."""

    def new_neighbours(self):
        return None  # no graph

    def __call__(self, graph, e, t, y=None, level=None, neighbours=None, generator=None):
        self.t_seen = t
        ta = t[graph.batch][:, None]
        # elements: jointly Gaussian, E[D | e] = E D + Cov(D, e) / Var(e) (e - E e), D = E_1 - E_0
        var = (1 - ta) ** 2 * VE + ta**2
        ve = -ME + (ta - (1 - ta) * VE) / var * (e - (1 - ta) * ME)
        # positions: X_0 | x_t is N(m, v) truncated to X_1 = (x - (1-t) X_0)/t in [0, L]
        x = graph.positions.numpy()
        tt = np.broadcast_to(ta.numpy(), x.shape)
        m, s = np.broadcast_to(MX.numpy(), x.shape), np.broadcast_to(VX.sqrt().numpy(), x.shape)
        one_minus = np.maximum(1 - tt, 1e-300)
        lo, hi = (x - tt * L) / one_minus, x / one_minus
        mean_x0 = truncated_normal_mean(m, s, lo, hi)
        vx = (x - mean_x0) / tt  # X_1 - X_0 = (x_t - X_0) / t
        return torch.from_numpy(vx), ve


def cube(n_struct: int) -> Tensor:
    return L * torch.eye(3, dtype=D).repeat(n_struct, 1, 1)


def sde_prior(n_struct: int, n_atoms: int, t: float, gen: torch.Generator) -> Prior:
    """The toy's exact marginal at t; embeddings divided by σ_E(t) as the samplers expect."""
    n = n_struct * n_atoms
    tt = torch.tensor(t, dtype=D)
    x = MX + torch.sqrt(VX + sig_x(tt) ** 2) * torch.randn(n, 3, generator=gen, dtype=D)
    e = alpha(tt) * ME + torch.sqrt(alpha(tt) ** 2 * VE + sig_e(tt) ** 2) * torch.randn(n, 3, generator=gen, dtype=D)
    return Prior(cube(n_struct), torch.full((n_struct,), n_atoms), x, e / sig_e(tt))


def toy_data(n_struct: int, n_atoms: int, gen: torch.Generator) -> Structures:
    n = n_struct * n_atoms
    x = MX + VX.sqrt() * torch.randn(n, 3, generator=gen, dtype=D)
    e = ME + VE.sqrt() * torch.randn(n, 3, generator=gen, dtype=D)
    graph = Batch.from_structures(cube(n_struct), list(x.split(n_atoms)))
    return Structures(graph, e, {})


def assert_moments(x: Tensor, mean: Tensor, var: Tensor, what: str, tol_mean: float = 0.03, tol_var: float = 0.05):
    """Per-axis mean within tol_mean·std and variance within a relative tol_var."""
    err_mean = ((x.mean(0) - mean) / var.sqrt()).abs().max().item()
    err_var = (x.var(0) / var - 1).abs().max().item()
    assert err_mean < tol_mean and err_var < tol_var, (
        f"{what}: mean error {err_mean:.3f} std, variance error {err_var:.3f}"
    )


def rms(x: Tensor) -> float:
    return x.square().mean().sqrt().item()


def w2(x: Tensor, mean: Tensor, var: Tensor) -> float:
    """Per-axis 1D Gaussian W2² of the samples' moments to the data, summed."""
    return float(((x.mean(0) - mean) ** 2 + (x.std(0) - var.sqrt()) ** 2).sum())


@pytest.mark.parametrize("pf_max, n_steps", [(1000, 200), (0, 300)], ids=["probability-flow", "euler-maruyama"])
def test_sde_samplers_reproduce_gaussian(pf_max, n_steps):
    gen = torch.Generator().manual_seed(1)
    sde = MaterialSDE(ProcessConfig(pf_ode_max_steps=pf_max))
    prior = sde_prior(4, 4000, sde.config.t_max, gen)
    out = sde.sample(ExactNoise(), prior, n_steps, gen)
    assert_moments(out.positions, MX, VX, "positions")
    assert_moments(out.embeddings, ME, VE, "elements")
    if pf_max:  # deterministic: each sample follows the exact flow from t_max to 0
        tm, zero = torch.tensor(sde.config.t_max, dtype=D), torch.tensor(0.0, dtype=D)
        exact_x = gaussian_flow(prior.positions, MX, VX, 1.0, sig_x(tm), 1.0, zero)
        exact_e = gaussian_flow(prior.embeddings * sig_e(tm), ME, VE, alpha(tm), sig_e(tm), 1.0, zero)
        assert rms(out.positions - exact_x) < 0.02 and rms(out.embeddings - exact_e) < 0.02


def test_ode_sampler_reproduces_gaussian():
    """Euler on the exact velocity: moments of the data, and each sample near its exact
    transport (in 1D per axis the flow is the monotone map: the data quantile of the prior's)."""
    gen = torch.Generator().manual_seed(2)
    prior = draw_prior(cube(4), torch.full((4,), 4000), 3, generator=gen)
    out = MaterialODE(CFG).sample(ExactVelocity(), prior, 300, gen)
    assert_moments(out.positions, MX, VX, "positions", tol_var=0.07)
    assert_moments(out.embeddings, ME, VE, "elements", tol_var=0.07)
    exact_x = MX + VX.sqrt() * torch.from_numpy(ndtri(prior.positions.numpy() / L))
    exact_e = ME + VE.sqrt() * prior.embeddings
    assert (out.positions - exact_x).abs().median() < 0.02 and rms(out.embeddings - exact_e) < 0.005


def test_shortcut_many_steps_uses_instantaneous_level():
    gen = torch.Generator().manual_seed(3)
    sc = MDShortcut(ProcessConfig(shortcut_levels=3, pf_ode_max_steps=10))
    prior = sde_prior(4, 4000, sc.config.t_max, gen)
    out = sc.sample(ExactShortcut(sc.config), prior, 300, gen)  # Euler-Maruyama, level K + 1
    assert_moments(out.positions, MX, VX, "positions")
    assert_moments(out.embeddings, ME, VE, "elements")


def test_shortcut_one_step_beats_sde_one_step():
    """A perfectly learned shortcut lands on the data in one step; the SDE's one step does not."""
    gen = torch.Generator().manual_seed(4)
    sc = MDShortcut(CFG)
    prior = sde_prior(4, 5000, CFG.t_max, gen)
    short = sc.sample(ExactShortcut(CFG), prior, 1, gen)
    sde = MaterialSDE(CFG).sample(ExactNoise(), prior, 1, gen)
    d_short = w2(short.positions, MX, VX) + w2(short.embeddings, ME, VE)
    d_sde = w2(sde.positions, MX, VX) + w2(sde.embeddings, ME, VE)
    assert d_short < 0.01 and d_short < 0.05 * d_sde, (d_short, d_sde)
    # the shortcut carries each sample along the exact flow from t_max to 0 ...
    tm = torch.tensor(CFG.t_max, dtype=D)
    exact = gaussian_flow(prior.positions, MX, VX, 1.0, sig_x(tm), 1.0, torch.tensor(0.0, dtype=D))
    assert torch.allclose(short.positions, exact, atol=1e-8)
    # ... while the SDE's single step is the posterior mean E[M_0 | M_t_max] (it shrinks the spread)
    a, sx, se = alpha(tm), sig_x(tm), sig_e(tm)
    e1 = prior.embeddings * se
    assert torch.allclose(sde.positions, MX + VX / (VX + sx**2) * (prior.positions - MX), atol=1e-8)
    assert torch.allclose(sde.embeddings, ME + a * VE / (a**2 * VE + se**2) * (e1 - a * ME), atol=1e-8)


@pytest.mark.parametrize("n_steps, levels", [(2, 4), (3, 4), (5, 4), (10, 4), (10, 3)])
def test_shortcut_few_steps_follow_the_flow(n_steps, levels):
    """Any n_s <= 10 lands where the exact flow goes (the split into powers of two covers [0, t_max])."""
    cfg = ProcessConfig(shortcut_levels=levels)
    sc = MDShortcut(cfg)
    steps = sc.schedule(n_steps)
    assert len(steps) == n_steps and sum(f for f, _ in steps) == 1.0
    assert all(f == 2.0**-lv or lv == cfg.shortcut_levels + 1 for f, lv in steps)
    gen = torch.Generator().manual_seed(5)
    prior = sde_prior(2, 500, cfg.t_max, gen)
    out = sc.sample(ExactShortcut(cfg), prior, n_steps, gen)
    tm = torch.tensor(cfg.t_max, dtype=D)
    exact = gaussian_flow(prior.positions, MX, VX, 1.0, sig_x(tm), 1.0, torch.tensor(0.0, dtype=D))
    err = rms(out.positions - exact)
    # steps finer than 2^-K use the instantaneous drift (Euler): exact only up to O(Δt)
    assert err < (1e-8 if all(lv <= levels for _, lv in steps) else 0.05)


def test_shortcut_output_errors_are_not_amplified_near_t_max():
    """An error δ in the level-0 element output moves a one-step sample's elements by exactly
    -t_max·δ (the output is the step's average velocity), not by t_max·c(t_max)·δ ≈ 150δ as it
    would through the PF drift of a noise."""

    class Off(ExactShortcut):
        def __call__(self, graph, e, t, y=None, level=None, neighbours=None, generator=None):
            ox, oe = super().__call__(graph, e, t, y, level, neighbours, generator)
            return ox, oe + 0.01

    gen = torch.Generator().manual_seed(11)
    sc = MDShortcut(CFG)
    prior = sde_prior(2, 200, CFG.t_max, gen)
    exact = sc.sample(ExactShortcut(CFG), prior, 1, gen)
    off = sc.sample(Off(CFG), prior, 1, gen)
    assert torch.allclose(
        off.embeddings - exact.embeddings, torch.full_like(exact.embeddings, -CFG.t_max * 0.01), atol=1e-12
    )
    assert torch.equal(off.positions, exact.positions)


def test_shortcut_target_matches_exact_double_step():
    """Two exact Δt shortcuts (averaged, Eq. 4 with the 1/2) give the exact 2Δt shortcut."""
    gen = torch.Generator().manual_seed(6)
    sc = MDShortcut(CFG)
    top = CFG.shortcut_levels
    model = ExactShortcut(CFG)
    data = toy_data(8, 400, gen)
    g = data.graph
    for k in range(top + 1):
        kk = torch.full((8,), k)
        step = CFG.t_max * 2.0**-k
        t = step * torch.randint(1, 2**k + 1, (8,), generator=gen).to(torch.float64)
        xt, et, _, _ = sc.base.noised(g.positions, data.embeddings, t, g.batch, gen)
        graph = Batch(g.cell, xt, g.batch, g.n_atoms)
        tx, te = sc.shortcut_target(
            model, graph, et, t, torch.clamp(kk + 1, max=top + 1), torch.full((8,), step / 2, dtype=D), None, gen
        )
        px, pe = model(graph, et, t, level=kk)
        tx = tx / SX  # the network's position output is u_X / σ_X^max
        # levels < K: exact composition; level K: two Euler half steps of the instantaneous drift
        rel = 1e-8 if k < top else 0.15
        for a, b, what in ((tx, px, "positions"), (te, pe, "elements")):
            err = ((a - b).norm() / b.norm()).item()
            assert err < rel, f"level {k} {what}: relative target error {err:.2e}"


def test_sde_loss_of_the_exact_network_is_the_irreducible_noise():
    """With ε̂ = E[ε|M_t], L_SDE = mean_t Σ Var(ε|M_t) = mean_t Σ_axes v/(v + σ²) (+ the same
    for E with a² v/(a² v + σ²)), over the times the loss drew."""
    gen = torch.Generator().manual_seed(7)
    model = ExactNoise()
    _, parts = MaterialSDE(CFG).loss(model, toy_data(400, 50, gen), gen)
    t = model.t_seen[:, None]
    assert CFG.t_min <= t.min() and t.max() <= CFG.t_max
    expect_x = (VX / (VX + sig_x(t) ** 2)).sum(1).mean().item()
    expect_e = (alpha(t) ** 2 * VE / (alpha(t) ** 2 * VE + sig_e(t) ** 2)).sum(1).mean().item()
    assert parts["x"].item() == pytest.approx(expect_x, rel=0.03)
    assert parts["e"].item() == pytest.approx(expect_e, rel=0.03)


def test_ode_loss_of_the_exact_network_is_the_irreducible_velocity_variance():
    """Element part of L_ODE with the exact velocity: E_t Σ Var(E_1 - E_0 | E_t)."""
    gen = torch.Generator().manual_seed(8)
    model = ExactVelocity()
    _, parts = MaterialODE(CFG).loss(model, toy_data(400, 50, gen), gen)
    t = model.t_seen[:, None]
    expect = (1 + VE - (t - (1 - t) * VE) ** 2 / ((1 - t) ** 2 * VE + t**2)).sum(1).mean().item()
    assert parts["e"].item() == pytest.approx(expect, rel=0.03)


def test_shortcut_loss_adds_self_consistency_on_a_fraction_of_batches():
    gen = torch.Generator().manual_seed(9)
    data = toy_data(4, 50, gen)
    model = ExactShortcut(CFG)
    for fraction, expect in ((0.0, 0), (1.0, 20)):
        sc = MDShortcut(ProcessConfig(shortcut_levels=3, shortcut_fraction=fraction))
        hits = sum("sc_x" in sc.loss(model, data, gen)[1] for _ in range(20))
        assert hits == expect
    sc = MDShortcut(ProcessConfig(shortcut_levels=3, shortcut_fraction=0.25))
    hits = sum("sc_x" in sc.loss(model, data, gen)[1] for _ in range(400))
    assert 70 < hits < 130
    # each L_SC call: teacher, teacher (level k + 1, capped at K + 1), then the student (level k)
    model.levels_seen.clear()
    for _ in range(10):
        sc.shortcut_loss(model, model, data, torch.randint(0, 4, (4,), generator=gen), gen)
    first, second, student = (torch.cat(model.levels_seen[i::3]) for i in range(3))
    assert set(student.tolist()) == {0, 1, 2, 3}
    assert torch.equal(first, torch.clamp(student + 1, max=4)) and torch.equal(second, first)


def test_ot_pairing_is_the_exhaustive_optimum():
    """The Hungarian pairing's Σ|pbc(x1 - x0)|² equals the minimum over all 6! orders of the
    prior atoms, found by brute force, in each of two skewed cells of one batch."""
    import itertools

    from mdshortcut.generative.ode import ot_pairing
    from mdshortcut.model.graph import Batch, minimum_image

    gen = torch.Generator().manual_seed(4)
    cells = torch.stack([torch.tensor([[5.0, 0, 0], [1.0, 6.0, 0], [0.5, -1.0, 5.5]]), 7.0 * torch.eye(3)]).double()
    x0 = [torch.rand(6, 3, generator=gen, dtype=torch.float64) @ c for c in cells]
    x1 = [torch.rand(6, 3, generator=gen, dtype=torch.float64) @ c for c in cells]
    graph = Batch.from_structures(cells, x0)
    paired = ot_pairing(graph.positions, torch.cat(x1), graph)

    def cost(b, p):
        return minimum_image(p - x0[b], cells, torch.full((6,), b)).square().sum().item()

    for b in range(2):
        best = min(cost(b, x1[b][list(perm)]) for perm in itertools.permutations(range(6)))
        assert cost(b, paired[6 * b : 6 * b + 6]) == pytest.approx(best, rel=1e-12)
        assert sorted(map(tuple, paired[6 * b : 6 * b + 6].tolist())) == sorted(map(tuple, x1[b].tolist()))


def test_shortcut_loss_shares_the_edges_of_m_t(monkeypatch):
    """A real denoiser's L_SC step builds 3 neighbour lists (M_t's, shared by the target's first
    half step and the prediction; the midpoint's; the base loss's), not 4, and the loss equals
    the one with a fresh list per call."""
    from mdshortcut.model import Denoiser, ModelConfig
    from mdshortcut.model import graph as graph_module

    builds = []
    build = graph_module.build_neighbours
    monkeypatch.setattr(graph_module, "build_neighbours", lambda *a: builds.append(1) or build(*a))
    torch.manual_seed(0)
    sc = MDShortcut(ProcessConfig(shortcut_levels=2, shortcut_share="structures", shortcut_fraction=0.5))
    model = Denoiser(ModelConfig(n_layers=2, hidden=16, vector_channels=2, cutoff=4.0), 3, [], sc.n_levels).double()
    gen = torch.Generator().manual_seed(1)
    cells = 9.0 * torch.eye(3, dtype=D).repeat(4, 1, 1)
    x = [9.0 * torch.rand(20, 3, generator=gen, dtype=D) for _ in range(4)]
    data = Structures(Batch.from_structures(cells, x), torch.randn(80, 3, generator=gen, dtype=D), {})
    shared, _ = sc.loss(model, data, torch.Generator().manual_seed(2))
    assert len(builds) == 3
    monkeypatch.setattr(model, "new_neighbours", lambda: None)
    fresh, _ = sc.loss(model, data, torch.Generator().manual_seed(2))
    assert len(builds) == 7
    assert shared.item() == pytest.approx(fresh.item(), rel=1e-10)
