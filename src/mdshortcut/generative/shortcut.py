"""MDShortcut (paper §2.2, appendix A.4): a base process's network with a step-size input.

Base. The shortcut is built on the material SDE (``shortcut_base: sde``, the paper) or on the
material ODE (``ode``, flow matching as in Frans et al. 2025: bounded velocities and an exact
uniform prior). The base's loss trains the instantaneous level, its path gives M_t, its
``drift`` turns instantaneous outputs into a velocity and its sampler serves n_s above
``pf_ode_max_steps``. Time runs over the base's span [0, span] (ODE: 1, SDE: t_max).

Levels. Shortcut steps are powers of two of the span: level k in 0..K (K = shortcut_levels) is a
step Δt = 2^-k·span from t to t - Δt, and level K + 1 is the instantaneous network (Δt = 0)
trained by the base's loss; the network embeds the level index (``n_levels = K + 2``).

Parameterisation. At the instantaneous level the network outputs what the base's network does
(SDE: a noise ε̂, ODE: a velocity). At a shortcut level it outputs the step's average velocity
itself, u = (s·ô_X, ô_E) with s = ``base.velocity_scale`` (SDE: σ_X^max Å, so both outputs are
O(1); ODE: 1), and a step is M_{t-Δt} = M_t - Δt·u. For the SDE base the shortcut is not
expressed through the PF drift (docs/design.md §3): near t_max that drift is f·E + c·ε̂_E with
c ≈ 150 (t = 0.99), so an output error δ would move a one-step sample's elements by ≈ 150δ
instead of t_max·δ.

Self-consistency loss L_SC = |ô_X(M_t, t, k) - u_X/s|² + w|ô_E(M_t, t, k) - u_E|² with the half
step h = 2^-(k+1)·span, t = j·2h (j ~ U{1..2^k}, so every step ends on the grid, at >= 0) and
    u1 = u(M_t, t, k+1),  M' = M_t - h·u1,  u2 = u(M', t - h, k+1),  u = (u1 + u2)/2
from ``target_model`` under no gradient (docs/design.md §2: the paper's Eq. 4 drops the 1/2); for k = K the half
steps use the instantaneous level. Which structures get L_SC (``shortcut_share``):
- ``batches`` (the paper): the base loss on every batch, plus L_SC on the whole batch for a
  ``shortcut_fraction`` of batches, k ~ U{0..K} per structure;
- ``structures`` (Frans et al.): in every batch the first round(fraction·B) structures get L_SC
  with levels spread evenly over them (consecutive levels from a random offset) and the rest the
  base loss; the loss is the atom-weighted mean of the two.

Sampling. n_s <= pf_ode_max_steps: n_s shortcut steps from t = span to exactly 0. A
non-power-of-two n_s is split into power-of-two steps that cover the span exactly: with
k = floor(log2 n_s), 2^(k+1) - n_s steps of 2^-k followed by 2n_s - 2^(k+1) steps of
2^-(k+1) (e.g. n_s = 5: 1/4, 1/4, 1/4, 1/8, 1/8), each at its own level (steps finer than
2^-K use the instantaneous level). n_s > pf_ode_max_steps: the base's sampler at the
instantaneous level (SDE: Euler-Maruyama; ODE: Euler).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mdshortcut.model.graph import wrap

from .common import Prior, Process, ProcessConfig, Sample, check_steps, graph_at, host_draw, per_atom, weighted_l2
from .ode import MaterialODE
from .sde import MaterialSDE

BASES = {"ode": MaterialODE, "sde": MaterialSDE}


class MDShortcut(Process):
    name = "shortcut"
    title = "MDShortcut"

    def sampler(self) -> str:
        k, n = self.config.shortcut_levels, self.config.pf_ode_max_steps
        trained = ", ".join(str(2**i) for i in range(k + 1))
        base = "Euler-Maruyama" if self.config.shortcut_base == "sde" else "Euler steps"
        return (
            f"shortcuts trained for n_s = {trained} (levels 0..{k}); other n_s <= {n} combine them; "
            f"n_s > {n}: the {self.base.title}'s sampler ({base}) with the instantaneous network"
        )

    def __init__(self, config: ProcessConfig):
        super().__init__(config)
        self.base = BASES[config.shortcut_base](config)
        self.base.instant_level = self.instant_level

    @property
    def instant_level(self) -> int:
        return self.config.shortcut_levels + 1

    @property
    def n_levels(self) -> int:
        return self.config.shortcut_levels + 2

    def schedule(self, n_steps: int) -> list[tuple[float, int]]:
        """(step as a fraction of the span, level) of each of n_steps shortcut steps, summing to 1."""
        check_steps(n_steps)
        k = n_steps.bit_length() - 1
        coarse, fine = 2 ** (k + 1) - n_steps, 2 * n_steps - 2 ** (k + 1)
        top = self.instant_level
        return [(2.0**-k, min(k, top))] * coarse + [(2.0 ** -(k + 1), min(k + 1, top))] * fine

    def velocity(self, e: Tensor, t: Tensor, level: Tensor, out_x: Tensor, out_e: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity (u_X (N, 3) Å per unit t, u_E (N, n_el)) of the network's outputs at E_t,
        times t (N, 1) and levels (N, 1): the average velocity of the step at shortcut levels,
        the base's drift at the instantaneous level."""
        drift_x, drift_e = self.base.drift(e, t, out_x, out_e)
        shortcut = level < self.instant_level
        return torch.where(shortcut, self.base.velocity_scale * out_x, drift_x), torch.where(shortcut, out_e, drift_e)

    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """The base loss plus L_SC, shared out as ``shortcut_share`` says (targets from
        ``target_model``; default: ``model`` itself)."""
        cfg = self.config
        target_model = target_model if target_model is not None else model
        n = len(data.graph.cell)
        draw = host_draw(generator)
        if cfg.shortcut_share == "batches":
            loss, parts = self.base.loss(model, data, generator)
            if draw < cfg.shortcut_fraction:
                device = data.graph.positions.device
                k = torch.randint(0, cfg.shortcut_levels + 1, (n,), generator=generator, device=device)
                sc, sc_parts = self.shortcut_loss(model, target_model, data, k, generator)
                loss, parts = loss + sc, {**parts, **sc_parts}
            return loss, parts
        n_sc = min(n, round(cfg.shortcut_fraction * n))
        if n_sc == 0:
            return self.base.loss(model, data, generator)
        head, tail = data.split(n_sc)
        offset = int(draw * (cfg.shortcut_levels + 1))
        k = (offset + torch.arange(n_sc, device=data.graph.positions.device)) % (cfg.shortcut_levels + 1)
        loss, parts = self.shortcut_loss(model, target_model, head, k, generator)
        if n_sc < n:
            share = len(head.graph.positions) / len(data.graph.positions)
            base, base_parts = self.base.loss(model, tail, generator)
            loss, parts = share * loss + (1 - share) * base, {**parts, **base_parts}
        return loss, parts

    def shortcut_target(
        self, target_model, graph, e: Tensor, t: Tensor, half: Tensor, h: Tensor, y, generator, neighbours=None
    ):
        """Average velocity (u_X (N, 3), u_E (N, n_el)) of a 2h step from (M_t, t): two h steps
        at level ``half`` (B,), under no gradient. t, h (B,); graph holds wrapped X_t; e = E_t;
        ``neighbours``: the cache of X_t's edges (default: a fresh list)."""
        batch, cell, n_atoms = graph.batch, graph.cell, graph.n_atoms
        ta, ha, la = per_atom(t, batch), per_atom(h, batch), per_atom(half, batch)
        with torch.no_grad():
            out = target_model(graph, e, t, y, half, neighbours, generator=generator)
            ux1, ue1 = self.velocity(e, ta, la, *out)
            xm = wrap(graph.positions - ha * ux1, cell, batch)
            em = e - ha * ue1
            mid = graph_at(xm, cell, batch, n_atoms)
            ux2, ue2 = self.velocity(em, ta - ha, la, *target_model(mid, em, t - h, y, half, None, generator=generator))
            return 0.5 * (ux1 + ux2), 0.5 * (ue1 + ue2)

    def shortcut_loss(self, model, target_model, data, k: Tensor, generator: torch.Generator):
        """L_SC of a batch of clean structures at levels k (B,) long (terms named sc_x, sc_e)."""
        g = data.graph
        x0 = g.positions
        levels = k.to(x0.dtype)
        step = self.base.span * torch.pow(2.0, -levels)
        j = torch.floor(
            torch.rand(len(k), generator=generator, device=x0.device, dtype=x0.dtype) * torch.pow(2.0, levels)
        )
        t = (j + 1) * step
        xt, et, _, _ = self.base.path(x0, data.embeddings, t, g, generator)
        graph = graph_at(xt, g.cell, g.batch, g.n_atoms)
        half = torch.clamp(k + 1, max=self.instant_level)
        # X_t's edges serve the target's first half step and the prediction: 3 neighbour builds a
        # step, not 4 (they were 14 % of a batch-32 step on an H200: results/reference/bench/gpu.csv)
        cache = model.new_neighbours()
        tx, te = self.shortcut_target(target_model, graph, et, t, half, 0.5 * step, data.properties, generator, cache)
        px, pe = model(graph, et, t, data.properties, k, cache, generator=generator)
        scale = self.base.velocity_scale
        return weighted_l2(px - tx / scale, pe - te, self.config.element_weight, prefix="sc_")

    def sample(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """Shortcut steps from t = span to 0 (n_steps <= pf_ode_max_steps), else the base's sampler."""
        check_steps(n_steps)
        if n_steps > self.config.pf_ode_max_steps:
            return self.base.sample(model, prior, n_steps, generator, neighbours)
        span = self.base.span
        batch, cell, n_atoms = prior.batch, prior.cell, prior.n_atoms
        x, e = self.base.start(prior)
        remaining = 1.0  # of the span; powers of two keep this exact
        for frac, level in self.schedule(n_steps):
            tb = torch.full((len(cell),), span * remaining, device=x.device, dtype=x.dtype)
            graph = graph_at(x, cell, batch, n_atoms)
            out = self.base.predict(model, graph, e, tb, prior.properties, neighbours, generator, level=level)
            ux, ue = self.velocity(e, per_atom(tb, batch), torch.full_like(batch[:, None], level), *out)
            x = wrap(x - span * frac * ux, cell, batch)
            e = e - span * frac * ue
            remaining -= frac
        return Sample(x, e)

    def sample_flow(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps deterministic Euler steps of the instantaneous level (the flow the shortcuts distil)."""
        return self.base.sample_flow(model, prior, n_steps, generator, neighbours)
