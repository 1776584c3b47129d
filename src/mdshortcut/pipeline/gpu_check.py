"""``make gpu-check``: the paper-size training and sampling on one accelerator, timed.

Paper-size network (config/paper.yaml: 4 layers x 128, 8 channels, cutoff 6.5 Å), 256-atom
Si cells padded with ghosts at rho_max 0.06 (307 nodes), batch 32: ``--steps`` SDE training
steps (``bench``'s training step: loss, backward, clipping, AdamW, EMA); then sampling of
``--samples`` structures at n_s = 1 and 250 (``sample.generate``). Prints seconds per step,
peak accelerator memory and the projected time of the paper's configuration (200,000 training
steps; 10,000 samples per n_s). The structures are diamond Si with 0.3 Å Gaussian noise, not a
melt-quench: the cost depends on the graph (edges per atom), not on the order in the cell.
The test suite runs it on the CPU at a tiny size (so that it keeps working without a device).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from ase.build import bulk

from mdshortcut.config import resolve_device
from mdshortcut.data.dataset import StructureDataset
from mdshortcut.data.ghost import build_tensors
from mdshortcut.generative import ProcessConfig, make_process
from mdshortcut.model import ModelConfig
from mdshortcut.pipeline.bench import _trainer, bench_denoiser

PAPER_STEPS = 200_000  # config/paper.yaml training.steps
PAPER_SAMPLES = 10_000  # config/paper.yaml a-Si sampling.n_samples per n_s


def silicon(n_structures: int, repeat: tuple[int, int, int], rho_max: float, seed: int) -> StructureDataset:
    """Diamond Si supercells (``repeat`` conventional cells) with 0.3 Å noise, ghost-padded."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_structures):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True).repeat(repeat)
        atoms.positions += rng.normal(0, 0.3, atoms.positions.shape)
        frames.append(atoms)
    labels = np.zeros((n_structures, 0))
    return StructureDataset(build_tensors(frames, ["Si"], rho_max, [], labels, "gpu-check", seed))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args: argparse.Namespace) -> dict[str, float]:
    """Train and sample as described in the module docstring; print and return the figures."""
    from mdshortcut.sample import LoadedModel, generate

    device = torch.device(resolve_device(args.device))
    model_config = ModelConfig(n_layers=args.layers, hidden=args.hidden, vector_channels=args.channels)
    process = make_process("sde", ProcessConfig())
    data = silicon(args.batch, tuple(args.repeat), args.rho_max, args.seed)
    batch = data.collate([data[i] for i in range(len(data))]).to(device)
    net = bench_denoiser(model_config, len(data.elements), process.n_levels, args.seed).to(device).train()
    step = _trainer(net, process)
    step(batch, args.seed)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for k in range(args.steps):
        step(batch, args.seed + 1 + k)
    _sync(device)
    out = {"train_s_per_step": (time.perf_counter() - start) / args.steps}
    out["train_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    print(f"device {device}: {len(batch.graph.positions)} nodes per batch of {args.batch}, {model_config}")
    print(f"training: {out['train_s_per_step']:.4f} s/step, peak memory {out['train_peak_gib']:.2f} GiB; "
          f"{PAPER_STEPS} steps (paper) -> {out['train_s_per_step'] * PAPER_STEPS / 3600:.2f} h")  # fmt: skip
    loaded = LoadedModel(net.eval(), process, data.elements, [], {}, data.rho_max, "gpu-check", 0, device)
    cells = data.cell[:1].expand(args.samples, 3, 3).contiguous()
    for n_steps in (1, 250):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _sync(device)
        run_steps = min(n_steps, args.long_steps)  # a shortened run is projected to n_s by its steps
        start = time.perf_counter()
        generate(loaded, cells, run_steps, seed=args.seed, device=device, batch_size=args.samples)
        _sync(device)
        seconds = (time.perf_counter() - start) * n_steps / run_steps
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
        out[f"sample_s_ns{n_steps}"] = seconds
        print(f"sampling {args.samples} structures at n_s = {n_steps}: {seconds:.2f} s, peak memory {peak:.2f} GiB; "
              f"{PAPER_SAMPLES} samples (paper) -> {seconds * PAPER_SAMPLES / args.samples / 3600:.3f} h")  # fmt: skip
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mdshortcut.pipeline.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto", help="auto (cuda if available), cuda, cpu")
    p.add_argument("--steps", type=int, default=200, help="timed training steps")
    p.add_argument("--batch", type=int, default=32, help="structures per training step")
    p.add_argument("--samples", type=int, default=64, help="structures sampled per run")
    p.add_argument("--long-steps", type=int, default=250, help="n_s of the long sampling run (250; fewer: projected)")
    p.add_argument("--repeat", type=int, nargs=3, default=[4, 4, 2], help="diamond cells per structure (4 4 2: 256 Si)")
    p.add_argument("--rho-max", type=float, default=0.06, help="nodes per Å^3")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> dict[str, float]:
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    main()
