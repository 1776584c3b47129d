"""What the benchmarks share: the ``bench`` config section, an untrained denoiser with outputs of
a trained one's size, and random periodic batches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from mdshortcut.config import build_section
from mdshortcut.model import Batch, Denoiser, ModelConfig

DENSITY = 0.05  # atoms / Å^3, amorphous silicon
AGREEMENT_RTOL = 1e-4  # largest allowed output difference between paths, relative to the largest output


class BenchmarkError(RuntimeError):
    """A benchmarked path does not compute the same outputs as the straightforward one."""


@dataclass
class SamplerSize:
    """One system size of the sampler benchmark: ``n_atoms`` nodes (atoms + ghosts) per
    structure, on the config's network (``model="config"``) or the bench's (``"bench"``)."""

    name: str
    n_atoms: int
    model: str = "config"


@dataclass
class SamplerBench:
    """The ``bench.sampler`` section: structures per timed batch, repeats, node density
    rho_max (per Å^3), n_s levels per process, and the sizes."""

    n_structures: int = 4
    repeats: int = 1
    rho_max: float = 0.06
    steps: dict[str, list[int]] = field(default_factory=lambda: {"ode": [1, 250], "sde": [1, 250], "shortcut": [1, 5]})
    sizes: list[SamplerSize] = field(default_factory=lambda: [SamplerSize("default", 76, "config")])


@dataclass
class TrainBench:
    """The ``bench.train`` section: structures per training step, timed steps per repeat, and
    the processes timed (at every size of ``bench.sampler.sizes``)."""

    batch_size: int = 4
    steps: int = 3
    processes: list[str] = field(default_factory=lambda: ["sde", "shortcut"])


@dataclass
class BenchConfig:
    """The ``bench`` config section: timing repeats, torch/LAMMPS threads, model benchmark
    sizes (atoms per structure) and network, the sampler and training benchmarks, and the
    number of dataset structures the properties benchmark relaxes."""

    repeats: int = 3
    threads: int = 1
    n_atoms: list[int] = field(default_factory=lambda: [256, 1024])
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerBench = field(default_factory=SamplerBench)
    train: TrainBench = field(default_factory=TrainBench)
    structures: int = 16

    @classmethod
    def from_dict(cls, d: Mapping) -> BenchConfig:
        """Build from the (schema-validated) ``bench`` mapping."""
        d = dict(d)
        if "model" in d:
            d["model"] = ModelConfig.from_dict(d["model"])
        if "sampler" in d:
            sampler = dict(d["sampler"])
            if "sizes" in sampler:
                sampler["sizes"] = [build_section(SamplerSize, s, "bench sampler size") for s in sampler["sizes"]]
            d["sampler"] = build_section(SamplerBench, sampler, "bench sampler config")
        if "train" in d:
            d["train"] = build_section(TrainBench, d["train"], "bench train config")
        return build_section(cls, d, "bench config")


def bench_denoiser(model_config: ModelConfig, n_elements: int, n_levels: int = 0, seed: int = 0) -> Denoiser:
    """An untrained denoiser (eval mode, no properties) whose position outputs are of order
    1 Å, as after training (the initialisation gives ~0.01 Å, under which atoms would barely
    move and neighbour lists never be rebuilt)."""
    torch.manual_seed(seed)
    model = Denoiser(model_config, n_elements, properties=[], n_levels=n_levels).eval()
    with torch.no_grad():
        for layer in model.egnn.layers:
            layer.coord.last.weight.normal_(0, 0.25 / model_config.hidden**0.5)
    return model


def random_batch(n_atoms: int, n_structures: int, density: float, generator: torch.Generator) -> Batch:
    """Cubic cells of edge (n_atoms / density)^(1/3) Å with uniformly random positions (Å)."""
    length = (n_atoms / density) ** (1 / 3)
    cells = torch.eye(3).expand(n_structures, 3, 3) * length
    positions = [torch.rand(n_atoms, 3, generator=generator) * length for _ in range(n_structures)]
    return Batch.from_structures(cells.contiguous(), positions)
