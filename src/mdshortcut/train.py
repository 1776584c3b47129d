"""Training of one model (process × conditioning set) on a dataset's ghost-atom tensors.

AdamW on the process loss, gradient-norm clipping, an EMA of the weights
(``torch.optim.swa_utils.AveragedModel``, decay warmed up as in ``ema_decay_at``) that also
provides MDShortcut's self-consistency targets, optionally ``torch.compile`` of the EGNN's per-edge kernels
(``Denoiser.compile_egnn``). Randomness is a pure function of (seed, step): each step draws
its batch (per-epoch permutations), times, noise and null property embeddings from
generators seeded with both, so a run resumed from a checkpoint ends with exactly the
weights of an uninterrupted one (on the CPU) without storing RNG states. The checkpoint
(model, EMA, optimiser, step) lives in its own folder, outside Snakemake's outputs, and is
written atomically every ``checkpoint_every`` steps; a rerun continues from it when the
configuration, the data and the network's weight shapes match its fingerprint (other code
changes resume). A non-finite loss or gradient stops training with an error naming the step; the
checkpoint on disk stays the last good one. The model file holds the EMA weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from mdshortcut.checkpoint import read_state, save_model, save_state
from mdshortcut.config import build_section, resolve_device
from mdshortcut.data.dataset import StructureDataset, conditioning_properties, require_keys, typical_cell
from mdshortcut.data.ghost import load_tensors
from mdshortcut.generative import ProcessConfig, make_process
from mdshortcut.model import Denoiser, ModelConfig

# training settings that may change without invalidating a checkpoint
RESUMABLE = ("steps", "checkpoint_every", "log_every", "compile", "threads")


@dataclass
class TrainingConfig:
    """The ``training`` config section (defaults = the schema's): steps, batch_size
    (structures), lr, weight_decay, ema_decay, grad_clip (max gradient norm),
    checkpoint_every and log_every (steps), compile (torch.compile of the EGNN kernels),
    threads (CPU)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 3.0e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    checkpoint_every: int = 100
    log_every: int = 10
    compile: bool = False
    threads: int = 2

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainingConfig:
        """Build from a (schema-validated) mapping; unknown keys are an error naming them."""
        return build_section(cls, d, "training config")


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the message names the step."""


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """The seed of the random draws of training step ``step`` (stream 0: the step's
    times, noise and null embeddings; stream 1: the permutation of epoch ``step``)."""
    return int(np.random.SeedSequence((seed, stream, step)).generate_state(1, dtype=np.uint64)[0] >> 1)


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Structure indices of a step: consecutive slices of a seeded permutation per epoch."""
    size = min(batch_size, n)
    per_epoch = n // size
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(step_seed(seed, epoch, stream=1)))
    return perm[k * size : (k + 1) * size].tolist()


def ema_decay_at(decay: float, n_averaged: int) -> float:
    """Decay of the EMA update that follows ``n_averaged`` averaged models:
    min(decay, (1 + n)/(10 + n)), the warm-up of TensorFlow's ExponentialMovingAverage.

    Without it, an EMA started at the initial weights keeps decay^steps of them (37% after
    1000 steps at 0.999); with it, the EMA's memory grows with the run, ~n/10 steps early on.
    """
    return min(decay, (1.0 + n_averaged) / (10.0 + n_averaged))


def ema_update_fn(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: EMA with the warm-up of ``ema_decay_at``."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        d = ema_decay_at(decay, int(n_averaged))
        torch._foreach_lerp_(averaged, current, 1.0 - d)

    return update


# the modules that define what a training computes (the train rule's code inputs too)
TRAINING_MODULES = (
    "train", "checkpoint", "data/dataset", "generative/common", "generative/ode", "generative/sde",
    "generative/shortcut", "model/graph", "model/egnn", "model/denoiser",
)  # fmt: skip


def training_sources() -> list[Path]:
    """Source files of ``TRAINING_MODULES``."""
    root = Path(__file__).parent
    return [root / f"{name}.py" for name in TRAINING_MODULES]


def fingerprint(paths: Iterable[str | os.PathLike], parts: Mapping) -> str:
    """Hash of the files' bytes (the tensors file, the training code) and of the settings a
    checkpoint depends on."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()


class _Log:
    """The training log: loss-curve lines, and a tqdm progress bar written as its own lines
    (at most every 10 s); nothing when path is None."""

    def __init__(self, path: str | os.PathLike | None, total: int, initial: int):
        self.fh = open(path, "a") if path is not None else None  # noqa: SIM115 - closed in close()
        self.bar = tqdm(total=total, initial=initial, file=self, disable=self.fh is None, mininterval=10, ascii=True)

    def write(self, text: str) -> None:
        """tqdm's output: one line per refresh instead of carriage returns."""
        text = text.replace("\r", "").strip()
        if text and self.fh is not None:
            self.fh.write(text + "\n")

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def line(self, text: str) -> None:
        self.write(text)
        self.flush()

    def close(self) -> None:
        self.bar.close()
        if self.fh is not None:
            self.fh.close()


def train_model(
    tensors: str | os.PathLike,
    output: str | os.PathLike,
    checkpoints: str | os.PathLike,
    process: str,
    conditioning: str,
    config: Mapping,
    log: str | os.PathLike | None = None,
    threads: int | None = None,
) -> None:
    """Train ``process`` (ode, sde, shortcut) conditioned on ``conditioning`` (none, all, a
    label) and write the model file ``output``.

    ``config``: the whole validated config (sections model, process, training; seed, device).
    ``checkpoints``: folder of the training state (resumed when it matches). ``log``: the
    loss curve (step, loss and its parts averaged since the last line, lr, seconds) and a
    progress bar. ``threads``: CPU threads (default: training.threads).
    """
    cfg = TrainingConfig.from_dict(config.get("training", {}))
    model_cfg = ModelConfig.from_dict(config.get("model", {}))
    process_cfg = ProcessConfig.from_dict(config.get("process", {}))
    seed = int(config.get("seed", 0))
    device = torch.device(resolve_device(config.get("device", "auto")))
    torch.set_num_threads(threads or cfg.threads)

    raw = load_tensors(tensors)
    require_keys(raw, str(tensors))
    props = conditioning_properties(conditioning, raw["label_names"])
    data = StructureDataset(raw, props, source=str(tensors))
    proc = make_process(process, process_cfg)
    torch.manual_seed(seed)
    model = Denoiser(model_cfg, len(data.elements), props, proc.n_levels).to(device)
    if cfg.compile:
        model.compile_egnn()  # the EMA copy below inherits it
    ema = AveragedModel(model, multi_avg_fn=ema_update_fn(cfg.ema_decay))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    settings = {k: v for k, v in asdict(cfg).items() if k not in RESUMABLE}
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]  # a changed network restarts
    key = fingerprint([tensors, *training_sources()], {  # changed code restarts
        "model": model_cfg.to_dict(), "process": process_cfg.to_dict(), "training": settings,
        "seed": seed, "name": process, "properties": props, "weights": shapes,
    })  # fmt: skip
    state_path = Path(checkpoints) / "state.pt"
    start, elapsed, saved, note = 0, 0.0, None, "starting"
    if state_path.is_file():
        state = read_state(state_path)
        if state["fingerprint"] == key:
            model.load_state_dict(state["model"])
            ema.load_state_dict(state["ema"])
            opt.load_state_dict(state["optimizer"])
            start, elapsed, note = int(state["step"]), float(state["elapsed"]), f"resuming from {state_path} at"
            saved = start
        else:
            note = f"ignoring {state_path} (other settings, data or code); starting"
    out = _Log(log, cfg.steps, min(start, cfg.steps))
    out.line(
        f"# {process}-{conditioning} on {data.dataset or tensors}: {len(data)} structures, properties {props}, "
        f"{sum(p.numel() for p in model.parameters())} parameters, device {device}; {note} step {start} of {cfg.steps}"
    )

    def stop(step: int, what: str, value: torch.Tensor) -> TrainingError:
        kept = f"the last good checkpoint is {state_path} (step {saved})" if saved else "no checkpoint was written"
        return TrainingError(f"step {step}: the {what} is {value.item()}; training stopped, {kept}")

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    clock = time.perf_counter()
    try:
        for step in range(start, cfg.steps):
            gen = torch.Generator(device).manual_seed(step_seed(seed, step))
            batch = data.collate([data[i] for i in batch_indices(len(data), cfg.batch_size, step, seed)]).to(device)
            loss, parts = proc.loss(model, batch, gen, target_model=ema.module)
            if not torch.isfinite(loss):
                raise stop(step, "loss", loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if not torch.isfinite(norm):
                raise stop(step, "gradient norm", norm)
            opt.step()
            ema.update_parameters(model)
            for name, value in {"loss": loss.detach(), **parts}.items():
                sums[name] = sums.get(name, 0.0) + float(value)
                counts[name] = counts.get(name, 0) + 1
            done = step + 1
            now = time.perf_counter()
            elapsed, clock = elapsed + now - clock, now
            out.bar.update(1)
            if done % cfg.log_every == 0 or done == cfg.steps:
                values = " ".join(f"{k}={sums[k] / counts[k]:.5g}" for k in sums)
                out.line(f"step={done} {values} lr={opt.param_groups[0]['lr']:.3g} seconds={elapsed:.1f}")
                sums.clear()
                counts.clear()
            if done % cfg.checkpoint_every == 0 or done == cfg.steps:
                save_state(
                    state_path, fingerprint=key, step=done, elapsed=elapsed,
                    model=model.state_dict(), ema=ema.state_dict(), optimizer=opt.state_dict(),
                )  # fmt: skip
                saved = done
        steps_done = max(start, cfg.steps)
        save_model(
            output, process=process, dataset=data.dataset, elements=data.elements, properties=props,
            label_stats=data.stats, model_config=model_cfg.to_dict(), process_config=process_cfg.to_dict(),
            state_dict={k: v.detach().cpu() for k, v in ema.module.state_dict().items()},
            rho_max=data.rho_max, steps=steps_done, typical_cell=typical_cell(data.cell),
        )  # fmt: skip
        out.line(f"# wrote {output} (EMA weights after {steps_done} steps, {elapsed:.1f} s of training)")
    except TrainingError as exc:
        out.line(f"# ERROR {exc}")
        raise
    finally:
        out.close()
