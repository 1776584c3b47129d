"""Material ODE (paper Eq. 7-8, appendix A.2): flow matching on the optimal-transport path.

X_t = X_0 + t·pbc(X_1 - X_0), E_t = E_0 + t(E_1 - E_0), with X_1 uniform in the cell and
E_1 ~ N(0, I) (``pairing: ot``: the prior's atoms of each structure assigned to its data atoms
by the minimum of Σ|pbc(X_1 - X_0)|², ``ot_pairing``; the prior's law is unchanged, its atoms being
exchangeable, and the paths are shorter and cross less). The network predicts the velocity
μ = (pbc(X_1 - X_0) Å, E_1 - E_0), trained with L = |μ̂_X - μ_X|² + w|μ̂_E - μ_E|² (w = element_weight
= 0.5), and samples with Euler steps M_{t-Δt} = M_t - Δt·μ̂ on the uniform grid t = 1, 1 - 1/n, ..., 1/n.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mdshortcut.model.graph import minimum_image, wrap

from .common import (
    Prior,
    Sample,
    ShortcutBase,
    check_steps,
    draw_prior,
    draw_times,
    graph_at,
    per_atom,
    weighted_l2,
)


def ot_pairing(x0: Tensor, x1: Tensor, graph) -> Tensor:
    """x1 (N, 3) Å reordered within each structure so that Σ_i |pbc(x1_i - x0_i)|² is minimal
    (the Hungarian algorithm, scipy's linear_sum_assignment, on the host: ~0.1 ms for 74 atoms;
    one host synchronisation per training step on a GPU)."""
    from scipy.optimize import linear_sum_assignment

    order = torch.arange(len(x1), device=x1.device)
    start = 0
    for b, n in enumerate(graph.n_atoms.tolist()):
        part = slice(start, start + n)
        pairs = (x1[part, None] - x0[None, part]).reshape(-1, 3)  # [prior atom p, data atom q]
        d = minimum_image(pairs, graph.cell, torch.full((n * n,), b, device=x1.device))
        rows, cols = linear_sum_assignment(d.square().sum(1).view(n, n).T.cpu().numpy())
        order[start + torch.as_tensor(rows, device=x1.device)] = start + torch.as_tensor(cols, device=x1.device)
        start += n
    return x1[order]


class MaterialODE(ShortcutBase):
    name = "ode"
    title = "Material ODE"
    #: the sampling span [0, span] in t
    span = 1.0
    #: shortcut outputs (shortcut.py) are velocities in the instantaneous output's own units
    velocity_scale = 1.0

    def sampler(self) -> str:
        return "continuous time: any n_s (Euler steps of 1/n_s)"

    def path(self, x0: Tensor, e0: Tensor, t: Tensor, graph, generator: torch.Generator):
        """M_t on the path from clean (X_0 (N, 3) Å, E_0 (N, n_el)) at t (B,): wrapped X_t, E_t and
        the velocity (pbc(X_1 - X_0), E_1 - E_0) with a fresh prior draw (X_1, E_1)."""
        noise = draw_prior(graph.cell, graph.n_atoms, e0.shape[1], generator=generator)
        x1 = noise.positions if self.config.pairing == "none" else ot_pairing(x0, noise.positions, graph)
        vx = minimum_image(x1 - x0, graph.cell, graph.batch)
        ve = noise.embeddings - e0
        ta = per_atom(t, graph.batch)
        return wrap(x0 + ta * vx, graph.cell, graph.batch), e0 + ta * ve, vx, ve

    def start(self, prior: Prior) -> tuple[Tensor, Tensor]:
        """(X, E) at t = span: the prior itself (exact: X_1 uniform, E_1 ~ N(0, I))."""
        return prior.positions, prior.embeddings

    def drift(self, e: Tensor, t: Tensor, out_x: Tensor, out_e: Tensor) -> tuple[Tensor, Tensor]:
        """Velocity of the network's instantaneous outputs: the outputs themselves."""
        return out_x, out_e

    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_ODE of a batch of clean structures at t ~ U[0, 1) per structure (``draw_times``)."""
        g = data.graph
        t = draw_times(self.config, len(g.cell), 0.0, 1.0, g.positions, generator)
        xt, et, vx, ve = self.path(g.positions, data.embeddings, t, g, generator)
        px, pe = self.predict(model, graph_at(xt, g.cell, g.batch, g.n_atoms), et, t, data.properties, None, generator)
        return weighted_l2(px - vx, pe - ve, self.config.element_weight)

    def sample(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps Euler steps of size 1/n_steps from t = 1 to t = 0."""
        check_steps(n_steps)
        batch, cell = prior.batch, prior.cell
        x, e = prior.positions, prior.embeddings
        for i in range(n_steps):
            t = torch.full((len(cell),), (n_steps - i) / n_steps, device=x.device, dtype=x.dtype)
            vx, ve = self.predict(
                model, graph_at(x, cell, batch, prior.n_atoms), e, t, prior.properties, neighbours, generator
            )
            x = wrap(x - vx / n_steps, cell, batch)
            e = e - ve / n_steps
        return Sample(x, e)
