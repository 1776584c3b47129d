"""The flexible material denoiser: property / time / level embeddings around the periodic EGNN.

Node input H^(0) = Linear([t, E_i, h_y1 .. h_yP, (level embedding)]) (paper §2.3, A.5), with the
flexible property embedding of Eq. 6. Outputs the element component from H^(L) (a linear head)
and the position component X - X^(L,0) as a minimum image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from mdshortcut.config import build_section

from .egnn import DISTANCE_FEATURES, EGNN
from .graph import Batch, NeighbourCache

NOISE_EMBEDDINGS = ("input", "every_layer")
T_FLOOR = 1e-3  # ln t of the noise-level embedding is taken at max(t, T_FLOOR)


@dataclass
class ModelConfig:
    """The ``model`` config section: cutoff (Å), layers, widths, n_norm, neighbour skin (Å),
    and the denoiser options (defaults: the paper's architecture, Eq. 12-13): distance_features
    (tanh | gaussian | bessel, ``egnn.distance_features``) with n_radial basis functions;
    noise_embedding (input: t enters H^(0) once as a raw scalar; every_layer: also property_dim
    Gaussians of ln t, in H^(0) and added before every layer, with the shortcut's level
    embedding); update_distances (the EGNN's invariants from the current first channel in every
    layer)."""

    cutoff: float = 6.5
    n_layers: int = 4
    hidden: int = 128
    vector_channels: int = 8
    property_dim: int = 16
    n_norm: float = 40.0
    skin: float = 1.0
    distance_features: str = "tanh"
    n_radial: int = 16
    noise_embedding: str = "input"
    update_distances: bool = False

    @classmethod
    def from_dict(cls, d: Mapping) -> ModelConfig:
        """Build from a (schema-validated) mapping; unknown keys are an error naming them."""
        choices = {"distance_features": DISTANCE_FEATURES, "noise_embedding": NOISE_EMBEDDINGS}
        return build_section(cls, d, "model config", choices)

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
        every_layer = config.noise_embedding == "every_layer"
        cond_dim = config.property_dim * (1 + (n_levels > 0)) if every_layer else 0
        n_in = 1 + n_elements + config.property_dim * (len(self.properties) + (n_levels > 0) + every_layer)
        self.node_in = nn.Linear(n_in, config.hidden)
        self.egnn = EGNN(
            config.n_layers,
            config.hidden,
            config.vector_channels,
            config.cutoff,
            config.n_norm,
            distance=config.distance_features,
            n_radial=config.n_radial,
            cond_dim=cond_dim,
            update_distances=config.update_distances,
        )
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

    def noise_features(self, t: Tensor) -> Tensor:
        """property_dim Gaussians of ln max(t, T_FLOOR) (B, property_dim), centres evenly over
        [ln T_FLOOR, 0], width their spacing: the noise level resolved where it is small (a raw t
        differs by 0.03 between σ = 0.05 and 0.1 Å at σ_max = 1.7 Å)."""
        n = self.config.property_dim
        centres = torch.linspace(math.log(T_FLOOR), 0.0, n, device=t.device, dtype=t.dtype)
        width = -math.log(T_FLOOR) / max(n - 1, 1)
        return torch.exp(-0.5 * ((t.clamp(min=T_FLOOR).log()[:, None] - centres) / width).square())

    def node_features(self, batch: Batch, e: Tensor, t: Tensor, y, level, generator=None):
        """H^(0) (N, d_h) from t (B,), E (N, n_elements), y and level (B,) long, and the per-atom
        conditioning of every EGNN layer (N, cond_dim) (None unless noise_embedding is every_layer)."""
        n_struct = len(batch.cell)
        n_atoms = len(batch.positions)
        if e.shape != (n_atoms, self.n_elements):
            raise ValueError(f"element embeddings: expected shape ({n_atoms}, {self.n_elements}), got {tuple(e.shape)}")
        if t.shape != (n_struct,):
            raise ValueError(f"t: expected shape ({n_struct},), got {tuple(t.shape)}")
        levels = []  # the level embedding (B, property_dim), if the model takes a level
        if self.level_embedding is not None:
            if level is None or level.shape != (n_struct,) or bool(((level < 0) | (level >= self.n_levels)).any()):
                raise ValueError(f"this model needs a step-size level (B,) in 0..{self.n_levels - 1}, got {level}")
            levels.append(self.level_embedding(level))
        elif level is not None:
            raise ValueError("this model takes no step-size level (n_levels = 0)")
        per_structure = [t[:, None].to(e.dtype), self.property_embedding(y, n_struct, e, generator), *levels]
        cond = None
        if self.config.noise_embedding == "every_layer":
            noise = self.noise_features(t.to(e.dtype))
            per_structure.append(noise)
            cond = torch.cat([noise, *levels], dim=1)[batch.batch]
        node = torch.cat(per_structure, dim=1)[batch.batch]
        return self.node_in(torch.cat([node, e], dim=1)), cond

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
        h, cond = self.node_features(batch, e, t, y, level, generator)
        reference = self.straightforward if straightforward is None else straightforward
        run = self.egnn.forward_reference if reference else self.egnn
        h, dx = run(h, batch.positions, i, j, shift, cond)
        x_out = -dx[:, 0]
        return x_out, self.element_out(h)
