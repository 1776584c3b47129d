"""The flexible material denoiser: property / time / level embeddings around the periodic EGNN.

Node input H^(0) = Linear([t, E_i, h_y1 .. h_yP, (level embedding)]) (paper §2.3, A.5), with the
flexible property embedding of Eq. 6. Outputs the element component from H^(L) (a linear head)
and the position component X - X^(L,0) as a minimum image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from mdshortcut.config import build_section

from .egnn import EGNN
from .graph import Batch, NeighbourCache


@dataclass
class ModelConfig:
    """The ``model`` config section: cutoff (Å), layers, widths, n_norm, neighbour skin (Å)."""

    cutoff: float = 6.5
    n_layers: int = 4
    hidden: int = 128
    vector_channels: int = 8
    property_dim: int = 16
    n_norm: float = 40.0
    skin: float = 1.0

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelConfig:
        """Build from a (schema-validated) mapping; unknown keys are an error naming them."""
        return build_section(cls, d, "model config")

    def to_dict(self) -> dict:
        return asdict(self)


class PropertyEmbedding(nn.Module):
    """Eq. 6: h_y = LayerNorm(Linear(y)) for a given (normalised) value, N(0, I) for a null one.

    A null is an absent key or a NaN entry. Each null is a fresh draw per structure and per
    call, from ``generator`` when given, else from torch's global RNG (seed it for
    reproducible sampling).
    """

    def __init__(self, properties: list[str], dim: int):
        super().__init__()
        self.properties = list(properties)
        self.dim = dim
        self.linear = nn.ModuleDict({p: nn.Linear(1, dim) for p in self.properties})
        self.norm = nn.ModuleDict({p: nn.LayerNorm(dim) for p in self.properties})

    def forward(self, y: Mapping[str, Tensor] | None, n: int, like: Tensor, generator=None) -> Tensor:
        """y: name -> (n,) normalised values. Returns (n, P * dim) with the dtype/device of ``like``."""
        y = dict(y or {})
        unknown = sorted(set(y) - set(self.properties))
        if unknown:
            raise KeyError(
                f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {unknown}; "
                f"this model knows {self.properties or 'none'}"
            )
        parts = []
        for name in self.properties:
            noise = torch.randn(n, self.dim, generator=generator, device=like.device, dtype=like.dtype)
            if name not in y:
                parts.append(noise)
                continue
            values = torch.as_tensor(y[name], dtype=like.dtype, device=like.device)
            if values.shape != (n,):
                raise ValueError(f"property {name}: expected shape ({n},), got {tuple(values.shape)}")
            given = ~torch.isnan(values)
            emb = self.norm[name](self.linear[name](torch.nan_to_num(values)[:, None]))
            parts.append(torch.where(given[:, None], emb, noise))
        return torch.cat(parts, dim=1) if parts else like.new_zeros(n, 0)


class Denoiser(nn.Module):
    """Periodic E(3)-equivariant denoiser (x_out, e_out) = f(batch, E, t, y, level).

    n_levels = 0: no step-size input (ODE / SDE); n_levels > 0: a learned embedding (dim
    ``property_dim``) of a level index 0..n_levels-1 (the shortcut step size, see generative/).
    ``properties`` lists the properties it was trained on, in order.
    """

    def __init__(self, config: ModelConfig, n_elements: int, properties: list[str], n_levels: int = 0):
        super().__init__()
        self.config = config
        self.n_elements = n_elements
        self.properties = list(properties)
        self.n_levels = n_levels
        self.property_embedding = PropertyEmbedding(self.properties, config.property_dim)
        self.level_embedding = nn.Embedding(n_levels, config.property_dim) if n_levels > 0 else None
        n_in = 1 + n_elements + config.property_dim * (len(self.properties) + (n_levels > 0))
        self.node_in = nn.Linear(n_in, config.hidden)
        self.egnn = EGNN(config.n_layers, config.hidden, config.vector_channels, config.cutoff, config.n_norm)
        self.element_out = nn.Linear(config.hidden, n_elements)
        self.straightforward = False  # default of forward's ``straightforward``

    def compile_egnn(self) -> None:
        """Run the block kernels of the fused EGNN path (hidden layer, its gradient, the
        channel displacements) under torch.compile (dynamic shapes: block sizes change every
        step). Weights and state_dict keys are unchanged; the first calls are slow (compilation)."""
        self.egnn.compiled = True

    def new_neighbours(self) -> NeighbourCache:
        """A neighbour cache with this model's cutoff and skin, to reuse across sampling steps."""
        return NeighbourCache(self.config.cutoff, self.config.skin)

    def node_features(self, batch: Batch, e: Tensor, t: Tensor, y, level, generator=None) -> Tensor:
        """H^(0) (N, d_h) from t (B,), E (N, n_elements), y and level (B,) long."""
        n_struct = len(batch.cell)
        n_atoms = len(batch.positions)
        if e.shape != (n_atoms, self.n_elements):
            raise ValueError(f"element embeddings: expected shape ({n_atoms}, {self.n_elements}), got {tuple(e.shape)}")
        if t.shape != (n_struct,):
            raise ValueError(f"t: expected shape ({n_struct},), got {tuple(t.shape)}")
        per_structure = [t[:, None].to(e.dtype), self.property_embedding(y, n_struct, e, generator)]
        if self.level_embedding is not None:
            if level is None or level.shape != (n_struct,) or bool(((level < 0) | (level >= self.n_levels)).any()):
                raise ValueError(f"this model needs a step-size level (B,) in 0..{self.n_levels - 1}, got {level}")
            per_structure.append(self.level_embedding(level))
        elif level is not None:
            raise ValueError("this model takes no step-size level (n_levels = 0)")
        node = torch.cat(per_structure, dim=1)[batch.batch]
        return self.node_in(torch.cat([node, e], dim=1))

    def forward(
        self,
        batch: Batch,
        e: Tensor,
        t: Tensor,
        y: Mapping[str, Tensor] | None = None,
        level: Tensor | None = None,
        neighbours: NeighbourCache | None = None,
        *,
        generator: torch.Generator | None = None,
        straightforward: bool | None = None,
    ) -> tuple[Tensor, Tensor]:
        """x_out (N, 3) Å = X - X^(L,0), e_out (N, n_elements).

        x_out is a displacement (a velocity or a noise estimate), not a position: it is never
        wrapped into the cell. A minimum-imaged output would make every loss periodic in it,
        so nothing would bound the raw output (it ran away to ~100 Å in a 10.7 Å cell while
        an ODE trained) and a multi-step Euler update x - Δt·v would depend on the image.

        e (N, n_elements) element embeddings; t (B,) in [0, 1]; y: property -> (B,) normalised
        values (NaN or absent = null, Eq. 6; unknown name -> KeyError); level (B,) long.
        ``neighbours``: a cache reused between calls (default: a fresh list each call).
        ``generator``: RNG of the null property embeddings (default: torch's global RNG).
        ``straightforward``: use the reference EGNN path (same function, slower; for tests and
        the benchmarks; default: the attribute ``straightforward``, False).
        """
        cache = neighbours if neighbours is not None else NeighbourCache(self.config.cutoff)
        i, j, shift = cache.edges(batch.positions, batch.cell, batch.batch)
        h = self.node_features(batch, e, t, y, level, generator)
        reference = self.straightforward if straightforward is None else straightforward
        run = self.egnn.forward_reference if reference else self.egnn
        h, dx = run(h, batch.positions, i, j, shift)
        x_out = -dx[:, 0]
        return x_out, self.element_out(h)
