"""Material SDE (paper Eq. 9-10, appendix A.3), with coefficients derived from its marginals.

Forward marginals (docs/design.md §1): positions variance-exploding, X_t = X_0 + σ_X(t)·ε_X with
σ_X = σ_X^max·t (Å); element embeddings variance-preserving with a cosine schedule,
E_t = α(t)·E_0 + σ_E(t)·ε_E with α = cos(πt/2), σ_E = σ_E^max·sin(πt/2). The network predicts
the noise (ε̂_X, ε̂_E); the score is -ε̂/σ; the loss is |ε̂_X - ε_X|² + w|ε̂_E - ε_E|² at
t ~ U[t_min, t_max].

The SDE the marginals imply (Song et al. 2021): dM = f·M dt + g dW with f = d log α/dt and
g² = dσ²/dt - 2fσ², i.e.
  positions: f = 0,                g² = 2 (σ_X^max)² t;
  elements:  f = -(π/2) tan(πt/2), g² = (σ_E^max)² π tan(πt/2).
In the paper's sign convention (M_{t-Δt} = M_t - Δt·μ + √Δt·g·z) the reverse-time drift is
μ = f·M - g²·score and the probability-flow drift is μ = f·M - g²/2·score; with score = -ε̂/σ:
  PF drift:      μ_X = σ_X^max·ε̂_X,    μ_E = f·E + c·ε̂_E,   c = σ_E' - fσ_E = σ_E^max (π/2)/cos(πt/2)
  reverse drift: μ_X = 2σ_X^max·ε̂_X,   μ_E = f·E + 2c·ε̂_E.
(The paper's Eq. 9 and 11 print σ² in place of g² and lose these factors.)

Sampling (n_s network evaluations): the prior's positions are used as X at t_max (uniform in
the cell, the paper's M_1) and its standard-normal embeddings are scaled to σ_E(t_max); n_s - 1
steps on the uniform grid t_max -> t_min, probability-flow Euler steps when
n_s <= pf_ode_max_steps, Euler-Maruyama otherwise, then one denoising step to t = 0 with the
posterior mean (Tweedie): X_0 = X - σ_X ε̂_X, E_0 = (E - σ_E ε̂_E)/α. With n_s = 1 that
denoising step is the whole sampler.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mdshortcut.model.graph import wrap

from .common import Prior, Sample, ShortcutBase, check_steps, draw_times, graph_at, per_atom, weighted_l2


class MaterialSDE(ShortcutBase):
    name = "sde"
    title = "Material SDE"

    def sampler(self) -> str:
        n = self.config.pf_ode_max_steps
        return f"continuous time: any n_s (probability-flow ODE up to n_s = {n}, Euler-Maruyama above)"

    @property
    def span(self) -> float:
        """The sampling span [0, t_max] in t."""
        return self.config.t_max

    @property
    def velocity_scale(self) -> float:
        """Shortcut position outputs (shortcut.py) are velocities in units of σ_X^max Å, like ε̂_X."""
        return self.config.sigma_x_max

    # --- schedules; t may have any shape -----------------------------------------------
    def sigma_x(self, t: Tensor) -> Tensor:
        """σ_X(t) = σ_X^max·t (Å)."""
        return self.config.sigma_x_max * t

    def alpha(self, t: Tensor) -> Tensor:
        """α(t) = cos(πt/2), the element signal scale."""
        return torch.cos(0.5 * math.pi * t)

    def sigma_e(self, t: Tensor) -> Tensor:
        """σ_E(t) = σ_E^max·sin(πt/2)."""
        return self.config.sigma_e_max * torch.sin(0.5 * math.pi * t)

    def _f(self, t: Tensor) -> Tensor:
        """d log α/dt = -(π/2) tan(πt/2)."""
        return -0.5 * math.pi * torch.tan(0.5 * math.pi * t)

    def _c(self, t: Tensor) -> Tensor:
        """σ_E' - f·σ_E = σ_E^max (π/2) / cos(πt/2): the PF drift per unit of ε̂_E."""
        return self.config.sigma_e_max * 0.5 * math.pi / torch.cos(0.5 * math.pi * t)

    # --- drifts in the paper's sign convention (M_{t-Δt} = M_t - Δt·μ); t: (N, 1) ---------
    def pf_drift(self, e: Tensor, t: Tensor, eps_x: Tensor, eps_e: Tensor) -> tuple[Tensor, Tensor]:
        """Probability-flow drift (μ_X (N, 3) Å per unit t, μ_E (N, n_el)) from predicted noise."""
        return self.config.sigma_x_max * eps_x, self._f(t) * e + self._c(t) * eps_e

    def reverse_step(
        self, x: Tensor, e: Tensor, t: Tensor, dt: float, eps_x: Tensor, eps_e: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """One Euler-Maruyama step of the reverse SDE from t to t - dt (t: (N, 1))."""
        gx = self.config.sigma_x_max * torch.sqrt(2 * t)
        ge = self.config.sigma_e_max * torch.sqrt(math.pi * torch.tan(0.5 * math.pi * t))
        zx = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        ze = torch.randn(e.shape, generator=generator, device=e.device, dtype=e.dtype)
        x = x - dt * 2 * self.config.sigma_x_max * eps_x + math.sqrt(dt) * gx * zx
        e = e - dt * (self._f(t) * e + 2 * self._c(t) * eps_e) + math.sqrt(dt) * ge * ze
        return x, e

    def denoise(self, x: Tensor, e: Tensor, t: Tensor, eps_x: Tensor, eps_e: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean of (X_0, E_0) given M_t and the predicted noise (Tweedie)."""
        return x - self.sigma_x(t) * eps_x, (e - self.sigma_e(t) * eps_e) / self.alpha(t)

    # --- network --------------------------------------------------------------------
    def noised(self, x0: Tensor, e0: Tensor, t: Tensor, batch: Tensor, generator: torch.Generator):
        """M_t from clean (X_0 (N, 3) Å, E_0 (N, n_el)) at t (B,): returns X_t (unwrapped), E_t, ε_X, ε_E."""
        eps_x = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        eps_e = torch.randn(e0.shape, generator=generator, device=e0.device, dtype=e0.dtype)
        ta = per_atom(t, batch)
        return x0 + self.sigma_x(ta) * eps_x, self.alpha(ta) * e0 + self.sigma_e(ta) * eps_e, eps_x, eps_e

    def path(self, x0: Tensor, e0: Tensor, t: Tensor, graph, generator: torch.Generator):
        """M_t from clean (X_0, E_0) at t (B,) as ``noised``, with X_t wrapped into the cells."""
        xt, et, eps_x, eps_e = self.noised(x0, e0, t, graph.batch, generator)
        return wrap(xt, graph.cell, graph.batch), et, eps_x, eps_e

    def start(self, prior: Prior) -> tuple[Tensor, Tensor]:
        """(X, E) at t = t_max: the prior's positions (the paper's M_1) and its embeddings scaled to σ_E(t_max)."""
        return prior.positions, prior.embeddings * self.config.sigma_e_max * math.sin(0.5 * math.pi * self.config.t_max)

    def drift(self, e: Tensor, t: Tensor, out_x: Tensor, out_e: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity of the network's instantaneous outputs: the PF drift of the predicted noise."""
        return self.pf_drift(e, t, out_x, out_e)

    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_SDE of a batch of clean structures at t ~ U[t_min, t_max] per structure (``draw_times``)."""
        g = data.graph
        cfg = self.config
        t = draw_times(cfg, len(g.cell), cfg.t_min, cfg.t_max, g.positions, generator)
        xt, et, eps_x, eps_e = self.path(g.positions, data.embeddings, t, g, generator)
        px, pe = self.predict(model, graph_at(xt, g.cell, g.batch, g.n_atoms), et, t, data.properties, None, generator)
        return weighted_l2(px - eps_x, pe - eps_e, cfg.element_weight)

    def sample_flow(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps probability-flow Euler steps, whatever pf_ode_max_steps says."""
        return self.sample(model, prior, n_steps, generator, neighbours, pf=True)

    def sample(
        self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None, pf: bool | None = None
    ) -> Sample:
        """n_steps network evaluations from t_max ending at t = 0: probability-flow Euler steps
        (``pf``; default: when n_steps <= pf_ode_max_steps), else Euler-Maruyama."""
        check_steps(n_steps)
        cfg = self.config
        pf = n_steps <= cfg.pf_ode_max_steps if pf is None else pf
        times = (
            torch.linspace(cfg.t_max, cfg.t_min, n_steps, dtype=torch.float64).tolist() if n_steps > 1 else [cfg.t_max]
        )
        batch, cell, n_atoms = prior.batch, prior.cell, prior.n_atoms
        x, e = self.start(prior)
        for k, t in enumerate(times):
            tb = torch.full((len(cell),), t, device=x.device, dtype=x.dtype)
            ta = per_atom(tb, batch)
            graph = graph_at(x, cell, batch, n_atoms)
            eps_x, eps_e = self.predict(model, graph, e, tb, prior.properties, neighbours, generator)
            if k == len(times) - 1:
                x, e = self.denoise(x, e, ta, eps_x, eps_e)
            elif pf:
                dt = t - times[k + 1]
                ux, ue = self.pf_drift(e, ta, eps_x, eps_e)
                x, e = x - dt * ux, e - dt * ue
            else:
                x, e = self.reverse_step(x, e, ta, t - times[k + 1], eps_x, eps_e, generator)
            x = wrap(x, cell, batch)
        return Sample(x, e)
