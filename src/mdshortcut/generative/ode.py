"""Material ODE (paper Eq. 7-8, appendix A.2): flow matching on the optimal-transport path.

X_t = X_0 + t·pbc(X_1 - X_0), E_t = E_0 + t(E_1 - E_0), with X_1 uniform in the cell and
E_1 ~ N(0, I). The network predicts the velocity μ = (pbc(X_1 - X_0) Å, E_1 - E_0), trained
with L = |μ̂_X - μ_X|² + w|μ̂_E - μ_E|² (w = element_weight = 0.5), and samples with Euler
steps M_{t-Δt} = M_t - Δt·μ̂ on the uniform grid t = 1, 1 - 1/n, ..., 1/n.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mdshortcut.model.graph import minimum_image, wrap

from .common import Prior, Process, Sample, check_steps, draw_prior, graph_at, per_atom, weighted_l2


class MaterialODE(Process):
    name = "ode"

    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_ODE of a batch of clean structures at t ~ U[0, 1) per structure."""
        g = data.graph
        x0, e0 = g.positions, data.embeddings
        t = torch.rand(len(g.cell), generator=generator, device=x0.device, dtype=x0.dtype)
        noise = draw_prior(g.cell, g.n_atoms, e0.shape[1], generator=generator)
        vx = minimum_image(noise.positions - x0, g.cell, g.batch)
        ve = noise.embeddings - e0
        ta = per_atom(t, g.batch)
        xt = wrap(x0 + ta * vx, g.cell, g.batch)
        et = e0 + ta * ve
        px, pe = model(
            graph_at(xt, g.cell, g.batch, g.n_atoms), et, t, data.properties, None, None, generator=generator
        )
        return weighted_l2(px - vx, pe - ve, self.config.element_weight)

    def sample(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps Euler steps of size 1/n_steps from t = 1 to t = 0."""
        check_steps(n_steps)
        batch, cell = prior.batch, prior.cell
        x, e = prior.positions, prior.embeddings
        for i in range(n_steps):
            t = torch.full((len(cell),), (n_steps - i) / n_steps, device=x.device, dtype=x.dtype)
            vx, ve = model(
                graph_at(x, cell, batch, prior.n_atoms), e, t, prior.properties, None, neighbours, generator=generator
            )
            x = wrap(x - vx / n_steps, cell, batch)
            e = e - ve / n_steps
        return Sample(x, e)
