"""What the three generative processes share: configuration, prior, the process interface.

Every process works on a material M = (C, X, E): cells C (B, 3, 3) Å (row vectors, fixed),
positions X (N, 3) Å and element embeddings E (N, n_elements), with the atoms of all
structures concatenated (``Batch.batch`` gives each atom's structure). Time runs from t = 1
(noise) to t = 0 (data). A process is

- ``loss(model, data, generator, target_model=None) -> (loss, parts)``: the scalar training
  loss of one batch of clean structures and a dict of its detached components;
- ``sample(model, prior, n_steps, generator, neighbours=None) -> Sample``: n_steps network
  evaluations from the prior at t = 1 down to exactly t = 0; positions come back wrapped.

``model`` is any callable with the Denoiser's signature
``model(graph, e, t, y, level, neighbours, generator=...) -> (x_out (N, 3), e_out (N, n_el))``
and ``model.new_neighbours()``: a neighbour cache to pass as ``neighbours`` to calls at the same
positions (None: a fresh list each call).
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from mdshortcut.config import build_section
from mdshortcut.data.ghost import atom_counts  # noqa: F401  (re-exported: the one n_a rule)
from mdshortcut.model.graph import Batch, to_cartesian


@dataclass
class ProcessConfig:
    """The ``process`` config section (defaults = the schema's).

    sigma_x_max (Å) and sigma_e_max: the SDE noise scales at t = 1; [t_min, t_max]: the times
    the SDE networks are trained and sampled at; element_weight: weight of the element term of
    every L2 loss. MDShortcut's recipe (shortcut.py; defaults: the paper's): shortcut_base, the
    process the shortcut is built on (sde | ode); shortcut_levels K: the finest shortcut step is
    2^-K of the sampling span; shortcut_share: what gets the self-consistency loss (batches: a
    shortcut_fraction of whole batches; structures: that fraction of every batch).
    pf_ode_max_steps: n_steps up to this samples the SDE with the probability-flow ODE and the
    shortcut with its shortcut levels, above it with the (base's) instantaneous sampler.
    t_sampling: the training times of the base losses (``draw_times``): uniform (the paper), or
    log (ln t uniform), which keeps the small-noise band's share of training when sigma_x_max
    grows (σ_X < 0.3 Å: 17 % of uniform draws at σ_max = 1.7 Å, 6 % at 5 Å, 39 % of log draws).
    pairing: the material ODE's prior-data pairing, none (the paper) or ot (``ode.ot_pairing``).
    """

    sigma_x_max: float = 1.7
    sigma_e_max: float = 1.5
    t_min: float = 0.01
    t_max: float = 0.99
    element_weight: float = 0.5
    shortcut_base: str = "sde"
    shortcut_levels: int = 7
    shortcut_share: str = "batches"
    shortcut_fraction: float = 0.25
    pf_ode_max_steps: int = 10
    t_sampling: str = "uniform"
    pairing: str = "none"

    @classmethod
    def from_dict(cls, d: Mapping) -> ProcessConfig:
        """Build from a (schema-validated) mapping; unknown keys are an error naming them."""
        choices = {
            "shortcut_base": ("sde", "ode"),
            "shortcut_share": ("batches", "structures"),
            "t_sampling": ("uniform", "log"),
            "pairing": ("none", "ot"),
        }
        cfg = build_section(cls, d, "process config", choices)
        if not 0 < cfg.t_min < cfg.t_max < 1:
            raise ValueError(f"process config: need 0 < t_min < t_max < 1 (got {cfg.t_min}, {cfg.t_max})")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Prior:
    """Where sampling starts: cells (B, 3, 3) Å, atom counts (B,) long, positions (N, 3) Å
    uniform in each cell, standard-normal element embeddings (N, n_elements), and the
    normalised properties to condition on (name -> (B,), NaN = null) or None."""

    cell: Tensor
    n_atoms: Tensor
    positions: Tensor
    embeddings: Tensor
    properties: dict[str, Tensor] | None = None

    @property
    def batch(self) -> Tensor:
        """(N,) long: the structure index of every atom."""
        return torch.repeat_interleave(torch.arange(len(self.cell), device=self.cell.device), self.n_atoms)


class Sample(NamedTuple):
    """A sampler's result: wrapped positions (N, 3) Å and final element embeddings (N, n_el)."""

    positions: Tensor
    embeddings: Tensor

    @property
    def classes(self) -> Tensor:
        """(N,) long element classes, argmax of the embeddings (class 0 = ghost)."""
        return self.embeddings.argmax(dim=-1)


def draw_prior(
    cell: Tensor,
    n_atoms: Tensor,
    n_elements: int,
    properties: Mapping[str, Tensor] | None = None,
    generator: torch.Generator | None = None,
) -> Prior:
    """X_1 uniform in each cell (B, 3, 3) Å, E_1 ~ N(0, I) of shape (N, n_elements)."""
    batch = torch.repeat_interleave(torch.arange(len(cell), device=cell.device), n_atoms)
    n = int(n_atoms.sum())
    frac = torch.rand(n, 3, generator=generator, device=cell.device, dtype=cell.dtype)
    positions = to_cartesian(frac, cell, batch)
    embeddings = torch.randn(n, n_elements, generator=generator, device=cell.device, dtype=cell.dtype)
    return Prior(cell, n_atoms, positions, embeddings, dict(properties) if properties is not None else None)


def draw_times(config: ProcessConfig, n: int, low: float, high: float, like: Tensor, generator) -> Tensor:
    """n training times (dtype and device of ``like``) in [low, high): uniform, or with ln t
    uniform over [ln max(low, t_min), ln high) when ``config.t_sampling`` is log."""
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    if config.t_sampling == "uniform":
        return low + (high - low) * u
    lo = math.log(max(low, config.t_min))
    return torch.exp(lo + (math.log(high) - lo) * u)


def per_atom(values: Tensor, batch: Tensor) -> Tensor:
    """Per-structure values (B,) -> a column (N, 1) for each atom."""
    return values[batch][:, None]


def weighted_l2(dx: Tensor, de: Tensor, weight: float, prefix: str = "") -> tuple[Tensor, dict[str, Tensor]]:
    """Mean over atoms of |dx|^2 + weight·|de|^2 for residuals dx (N, 3), de (N, n_el).

    Returns the loss and its two detached terms, named ``{prefix}x`` and ``{prefix}e``.
    """
    lx = dx.square().sum(dim=1).mean()
    le = de.square().sum(dim=1).mean()
    return lx + weight * le, {f"{prefix}x": lx.detach(), f"{prefix}e": le.detach()}


def graph_at(positions: Tensor, cell: Tensor, batch: Tensor, n_atoms: Tensor) -> Batch:
    """A ``Batch`` of the given positions (N, 3) Å in cells (B, 3, 3) Å."""
    return Batch(cell, positions, batch, n_atoms)


class Process(ABC):
    """A generative process: a training loss and a sampler (see the module docstring).

    What training (``train.train_step``), sampling (``sample.generate``) and the report use: ``name``
    (the key of ``generative.PROCESSES``: model file names, wildcards, the schema), ``title`` (the
    paper's name, in tables and figures), ``n_levels`` and ``instant_level`` (the network's level
    input), ``loss``, ``sample``, ``sample_flow`` and ``sampler`` (its sampler in words)."""

    name: str = ""
    title: str = ""
    #: the level input of every network call (None: the network takes no level); MDShortcut
    #: sets it to its instantaneous level on the base process it trains and samples with
    instant_level: int | None = None

    def __init__(self, config: ProcessConfig):
        self.config = config

    def predict(self, model, graph, e: Tensor, t: Tensor, y, neighbours, generator, level: int | None = None):
        """The network's outputs at times t (B,), at ``level`` (default: ``instant_level``) for every structure."""
        level = self.instant_level if level is None else level
        levels = None if level is None else torch.full((len(t),), level, dtype=torch.long, device=t.device)
        return model(graph, e, t, y, levels, neighbours, generator=generator)

    @property
    def n_levels(self) -> int:
        """Size of the step-size level embedding the network needs (0: no level input)."""
        return 0

    @abstractmethod
    def loss(self, model, data, generator: torch.Generator, target_model=None) -> tuple[Tensor, dict[str, Tensor]]:
        """Training loss of a batch of clean structures (``mdshortcut.data.dataset.Structures``)."""

    @abstractmethod
    def sample(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps network evaluations from ``prior`` (t = 1) to t = 0."""

    def sample_flow(self, model, prior: Prior, n_steps: int, generator: torch.Generator, neighbours=None) -> Sample:
        """n_steps deterministic (probability-flow) Euler steps of the instantaneous network."""
        return self.sample(model, prior, n_steps, generator, neighbours)

    @abstractmethod
    def sampler(self) -> str:
        """What ``sample`` does for each number of steps n_s, in words (``mdshortcut info``, README)."""


class ShortcutBase(Process):
    """A process MDShortcut can be built on (``shortcut_base``): besides a ``Process``, the
    continuous path and velocity field a shortcut distils."""

    #: the sampling span [0, span] in t: sampling starts at t = span
    span: float
    #: the unit (Å per unit t) of a shortcut level's position output, so that it is O(1)
    velocity_scale: float

    @abstractmethod
    def path(self, x0: Tensor, e0: Tensor, t: Tensor, graph, generator: torch.Generator):
        """M_t from clean (X_0 (N, 3) Å, E_0 (N, n_el)) at times t (B,): (X_t wrapped, E_t, and
        the regression targets of the instantaneous network)."""

    @abstractmethod
    def start(self, prior: Prior) -> tuple[Tensor, Tensor]:
        """(X, E) at t = span, from a prior draw."""

    @abstractmethod
    def drift(self, e: Tensor, t: Tensor, out_x: Tensor, out_e: Tensor) -> tuple[Tensor, Tensor]:
        """dM/dt (Å, embedding units per unit t) of the deterministic flow, from the instantaneous
        network's outputs at embeddings ``e`` and per-atom times ``t``."""


def host_draw(generator: torch.Generator) -> float:
    """A U[0, 1) number on the host that follows ``generator``, without a device synchronisation:
    drawn from a CPU generator itself, and from a device generator's host-side state otherwise
    (reading a CUDA draw back would wait for the queued kernels)."""
    if generator.device.type == "cpu":
        return float(torch.rand((), generator=generator))
    digest = hashlib.blake2b(generator.get_state().numpy().tobytes(), digest_size=8).digest()
    return float(torch.rand((), generator=torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)))


def check_steps(n_steps: int) -> None:
    if n_steps < 1 or int(n_steps) != n_steps:
        raise ValueError(f"n_steps must be a positive integer (got {n_steps})")
