"""MDShortcut (paper §2.2, appendix A.4): the material SDE network with a step-size input.

Levels. Shortcut steps are powers of two of the sampling span [0, t_max]: level k in 0..K
(K = shortcut_levels) is a step Δt = 2^-k·t_max from t to t - Δt, and level K + 1 is the
instantaneous network (Δt = 0) trained by the SDE loss; the network embeds the level index
(``n_levels = K + 2``).

Parameterisation (docs/design.md §3). At the instantaneous level K + 1 the network outputs a noise ε̂ (as the SDE
network does) and its velocity is the probability-flow drift of ``MaterialSDE.pf_drift``. At a
shortcut level k <= K it outputs the step's average velocity itself, u = (σ_X^max·ô_X, ô_E)
(positions in units of σ_X^max so that both outputs are O(1)), and a step is
M_{t-Δt} = M_t - Δt·u (``velocity``). The shortcut is not expressed through the PF drift: near
t_max that drift is f·E + c·ε̂_E with f ≈ -100 and c ≈ 150 (t = 0.99), so an error δ in ε̂_E
would move a one-step sample's elements by t_max·c·δ ≈ 150δ, where an error δ in ô_E moves
them by t_max·δ; the average velocity of a whole step is O(1) at every t and level.

Loss. L = L_SDE (level K + 1) on every batch, plus on a ``shortcut_fraction`` of batches
L_SC = |ô_X(M_t, t, k) - u_X/σ_X^max|² + w|ô_E(M_t, t, k) - u_E|² with, per structure, k ~ U{0..K}, the half
step h = 2^-(k+1)·t_max, t = j·2h (j ~ U{1..2^k}, so the step ends on the grid, at >= 0) and
    u1 = u(M_t, t, k+1),  M' = M_t - h·u1,  u2 = u(M', t - h, k+1),  u = (u1 + u2)/2
from the EMA network under no gradient (docs/design.md §2; the paper's Eq. 4 drops the 1/2); for
k = K the half steps use the instantaneous network (level K + 1).

Sampling. n_s <= pf_ode_max_steps: n_s probability-flow steps from t_max to exactly 0. A
non-power-of-two n_s is split into power-of-two steps that cover the span exactly: with
k = floor(log2 n_s), 2^(k+1) - n_s steps of 2^-k followed by 2n_s - 2^(k+1) steps of
2^-(k+1) (e.g. n_s = 5: 1/4, 1/4, 1/4, 1/8, 1/8), each at its own level (steps finer than
2^-K use the instantaneous level). n_s > pf_ode_max_steps: the SDE's Euler-Maruyama sampler
with the instantaneous level.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mdshortcut.model.graph import wrap

from .common import Prior, Sample, check_steps, graph_at, per_atom, weighted_l2
from .sde import MaterialSDE


class MDShortcut(MaterialSDE):
    name = "shortcut"

    @property
    def instant_level(self) -> int:
        return self.config.shortcut_levels + 1

    @property
    def n_levels(self) -> int:
        return self.config.shortcut_levels + 2

    def schedule(self, n_steps: int) -> list[tuple[float, int]]:
        """(step as a fraction of the span, level) of each of n_steps PF steps, summing to 1."""
        check_steps(n_steps)
        k = n_steps.bit_length() - 1
        coarse, fine = 2 ** (k + 1) - n_steps, 2 * n_steps - 2 ** (k + 1)
        top = self.instant_level
        return [(2.0**-k, min(k, top))] * coarse + [(2.0 ** -(k + 1), min(k + 1, top))] * fine

    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_SDE, plus L_SC on a ``shortcut_fraction`` of calls (targets from ``target_model``,
        the EMA network; default: ``model`` itself)."""
        loss, parts = super().loss(model, data, generator)
        draw = torch.rand((), generator=generator, device=data.embeddings.device)
        if float(draw) < self.config.shortcut_fraction:
            sc, sc_parts = self.shortcut_loss(
                model, target_model if target_model is not None else model, data, generator
            )
            loss = loss + sc
            parts.update(sc_parts)
        return loss, parts

    def velocity(self, e: Tensor, t: Tensor, level: Tensor, out_x: Tensor, out_e: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity (u_X (N, 3) Å per unit t, u_E (N, n_el)) of the network's outputs at E_t,
        times t (N, 1) and levels (N, 1): the average velocity of the step at shortcut levels,
        the PF drift of the predicted noise at the instantaneous level."""
        pf_x, pf_e = self.pf_drift(e, t, out_x, out_e)
        shortcut = level < self.instant_level
        return torch.where(shortcut, self.config.sigma_x_max * out_x, pf_x), torch.where(shortcut, out_e, pf_e)

    def shortcut_target(self, target_model, graph, e: Tensor, t: Tensor, half: Tensor, h: Tensor, y, generator):
        """Average velocity (u_X (N, 3), u_E (N, n_el)) of a 2h step from (M_t, t): two h steps
        at level ``half`` (B,), under no gradient. t, h (B,); graph holds wrapped X_t; e = E_t."""
        batch, cell, n_atoms = graph.batch, graph.cell, graph.n_atoms
        ta, ha, la = per_atom(t, batch), per_atom(h, batch), per_atom(half, batch)
        with torch.no_grad():
            ux1, ue1 = self.velocity(e, ta, la, *target_model(graph, e, t, y, half, None, generator=generator))
            xm = wrap(graph.positions - ha * ux1, cell, batch)
            em = e - ha * ue1
            mid = graph_at(xm, cell, batch, n_atoms)
            ux2, ue2 = self.velocity(em, ta - ha, la, *target_model(mid, em, t - h, y, half, None, generator=generator))
            return 0.5 * (ux1 + ux2), 0.5 * (ue1 + ue2)

    def shortcut_loss(self, model, target_model, data, generator: torch.Generator) -> tuple[Tensor, dict[str, Tensor]]:
        """L_SC of a batch of clean structures (terms named sc_x, sc_e)."""
        g = data.graph
        x0 = g.positions
        n = len(g.cell)
        top = self.config.shortcut_levels
        k = torch.randint(0, top + 1, (n,), generator=generator, device=x0.device)
        step = self.config.t_max * torch.pow(2.0, -k.to(x0.dtype))
        j = (
            torch.floor(
                torch.rand(n, generator=generator, device=x0.device, dtype=x0.dtype) * torch.pow(2.0, k.to(x0.dtype))
            )
            + 1
        )
        t = j * step
        xt, et, _, _ = self.noised(x0, data.embeddings, t, g.batch, generator)
        graph = graph_at(wrap(xt, g.cell, g.batch), g.cell, g.batch, g.n_atoms)
        tx, te = self.shortcut_target(
            target_model, graph, et, t, torch.clamp(k + 1, max=top + 1), 0.5 * step, data.properties, generator
        )
        px, pe = model(graph, et, t, data.properties, k, None, generator=generator)
        return weighted_l2(px - tx / self.config.sigma_x_max, pe - te, self.config.element_weight, prefix="sc_")

    def sample(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """Shortcut PF steps from t_max to 0 (n_steps <= pf_ode_max_steps), else Euler-Maruyama."""
        check_steps(n_steps)
        cfg = self.config
        if n_steps > cfg.pf_ode_max_steps:
            return super().sample(model, prior, n_steps, generator, neighbours)
        batch, cell, n_atoms = prior.batch, prior.cell, prior.n_atoms
        x = prior.positions
        e = prior.embeddings * cfg.sigma_e_max * math.sin(0.5 * math.pi * cfg.t_max)
        remaining = 1.0  # of the span; powers of two keep this exact
        for frac, level in self.schedule(n_steps):
            tb = torch.full((len(cell),), cfg.t_max * remaining, device=x.device, dtype=x.dtype)
            out = self.predict(
                model, graph_at(x, cell, batch, n_atoms), e, tb, prior.properties, level, neighbours, generator
            )
            ux, ue = self.velocity(e, per_atom(tb, batch), torch.full_like(batch[:, None], level), *out)
            x = wrap(x - cfg.t_max * frac * ux, cell, batch)
            e = e - cfg.t_max * frac * ue
            remaining -= frac
        return Sample(x, e)
