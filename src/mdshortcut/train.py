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
configuration, the data's content (not the tensors file's bytes: ``torch.save`` records the
temporary file's name, so an identical rebuild differs in bytes), the training code and the
network's weight shapes match its fingerprint. The training log is appended to in the
checkpoint folder, across resumes (Snakemake clears a rule's log when it reruns the rule). A loss
term above ``spike_factor`` × its running mean is logged with its step. A non-finite loss or
gradient stops training with an error naming the step; the checkpoint on disk stays the last
good one. The model file holds the EMA weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from mdshortcut.checkpoint import read_model, read_state, save_model, save_state
from mdshortcut.config import build_section, resolve_device
from mdshortcut.data.dataset import StructureDataset, Structures, conditioning_properties, require_keys, typical_cell
from mdshortcut.data.ghost import load_tensors
from mdshortcut.generative import Process, ProcessConfig, make_process
from mdshortcut.model import Denoiser, ModelConfig
from mdshortcut.pipeline.sources import sources

# training settings that may change without invalidating a checkpoint
RESUMABLE = ("steps", "cpu_budget_s", "checkpoint_every", "log_every", "compile", "threads", "spike_factor")
SPIKE_WINDOW = 100  # steps of the running mean that a spike is measured against
LOG_NAME = "train.log"  # the training log across resumes, in the checkpoint folder


@dataclass
class TrainingConfig:
    """The ``training`` config section (defaults = the schema's): steps, batch_size
    (structures), lr, weight_decay, ema_decay, grad_clip (max gradient norm), lr_warmup_steps
    (linear warm-up), lr_schedule (constant | cosine: decay to 0 at the end of training),
    target_ema_decay (MDShortcut's self-consistency targets: None = the model EMA, 0 = the live
    network, else an EMA of its own), shortcut_init (scratch | baseline: MDShortcut starts from
    the trained base model, ``warm_start``), cpu_budget_s (stop once training, a warm start's
    baseline included, has used this many CPU seconds; progress for the LR schedule is then the
    larger of the step and CPU-time fractions), checkpoint_every and log_every (steps), compile
    (torch.compile of the EGNN kernels), threads (CPU), spike_factor (a loss term above this × its
    running mean is logged)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 3.0e-4
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    lr_warmup_steps: int = 0
    lr_schedule: str = "constant"
    target_ema_decay: float | None = None
    shortcut_init: str = "scratch"
    cpu_budget_s: float | None = None
    checkpoint_every: int = 100
    log_every: int = 10
    compile: bool = False
    threads: int = 2
    spike_factor: float = 10.0

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainingConfig:
        """Build from a (schema-validated) mapping; unknown keys are an error naming them."""
        choices = {"lr_schedule": ("constant", "cosine"), "shortcut_init": ("scratch", "baseline")}
        return build_section(cls, d, "training config", choices)

    def resumable(self) -> tuple[str, ...]:
        """Settings that may change without invalidating a checkpoint: ``RESUMABLE``, less the
        run's length under a cosine schedule (it shapes every step's LR)."""
        return tuple(k for k in RESUMABLE if not (k in ("steps", "cpu_budget_s") and self.lr_schedule == "cosine"))


def lr_factor(cfg: TrainingConfig, step: int, cpu_seconds: float) -> float:
    """Multiplier of ``cfg.lr`` at ``step``: linear warm-up over lr_warmup_steps, then constant
    or a cosine to 0 over the rest of training (progress by steps, or by CPU time under a budget)."""
    if step < cfg.lr_warmup_steps:
        return (step + 1) / cfg.lr_warmup_steps
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (step - cfg.lr_warmup_steps) / max(1, cfg.steps - cfg.lr_warmup_steps)
    if cfg.cpu_budget_s:
        progress = max(progress, cpu_seconds / cfg.cpu_budget_s)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


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


def ema_decay_at(decay: float, n_averaged: int | torch.Tensor) -> float | torch.Tensor:
    """Decay of the EMA update that follows ``n_averaged`` averaged models:
    min(decay, (1 + n)/(10 + n)), the warm-up of TensorFlow's ExponentialMovingAverage.

    Without it, an EMA started at the initial weights keeps decay^steps of them (37% after
    1000 steps at 0.999); with it, the EMA's memory grows with the run, ~n/10 steps early on (docs/design.md §5).
    """
    warm = (1.0 + n_averaged) / (10.0 + n_averaged)
    return warm.clamp(max=decay) if isinstance(warm, torch.Tensor) else min(decay, warm)


def ema_update_fn(decay: float):
    """``multi_avg_fn`` for ``AveragedModel``: EMA with the warm-up of ``ema_decay_at``, computed
    on the parameters' device (no host synchronisation)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        d = ema_decay_at(decay, n_averaged.to(averaged[0].dtype))
        torch._foreach_lerp_(averaged, current, 1.0 - d)

    return update


def warm_start(model: Denoiser, path: str | os.PathLike, base: str) -> float:
    """Load the trained ``base`` model file ``path`` into the MDShortcut network ``model``: every
    weight of the same name and shape, and node_in's columns of time, properties and elements.
    The level embedding keeps its random start and its node_in columns start at 0, so every level
    starts as the baseline's network and the levels separate as they train. Returns the
    baseline's training CPU seconds (0 for files that did not record them)."""
    meta = read_model(path)
    theirs, ours = meta["state_dict"], model.state_dict()
    mismatch = [
        what
        for what, a, b in (
            ("process", meta["process"], base),
            ("model config", meta["model_config"], model.config.to_dict()),
            ("properties", list(meta["properties"]), model.properties),
            ("elements", len(meta["elements"]), model.n_elements),
        )
        if a != b
    ]
    if mismatch:
        raise TrainingError(f"{path}: cannot warm-start the shortcut from it (other {', '.join(mismatch)})")
    lead = 1 + model.config.property_dim * len(model.properties)  # t, then the property embeddings
    w = torch.zeros_like(ours["node_in.weight"])
    w[:, :lead] = theirs["node_in.weight"][:, :lead]
    w[:, lead + model.config.property_dim :] = theirs["node_in.weight"][:, lead:]
    merged = {k: theirs[k] if k in theirs and theirs[k].shape == v.shape else v for k, v in ours.items()}
    model.load_state_dict(merged | {"node_in.weight": w})
    return float(meta.get("cpu_seconds", 0.0))


def self_consistency_targets(model: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """The EMA MDShortcut's targets come from when it is neither the model EMA (``decay`` None)
    nor the live network (decay 0): an EMA of its own."""
    if decay is None or decay == 0:
        return None
    return AveragedModel(model, multi_avg_fn=ema_update_fn(decay))


def training_sources() -> list[Path]:
    """The source files a training runs: this module and every package module it imports,
    followed as the train rule's ``code=`` input follows them (``pipeline.sources``)."""
    return [Path(p) for p in sources(__name__)]


def content(data: Mapping) -> dict:
    """A tensors dict as JSON-able values: each tensor by its dtype, shape and the SHA-256 of its
    bytes (the data, whatever file holds it)."""
    return {
        k: [str(v.dtype), list(v.shape), hashlib.sha256(v.cpu().contiguous().numpy().tobytes()).hexdigest()]
        if isinstance(v, torch.Tensor)
        else v
        for k, v in data.items()
    }


def fingerprint(paths: Iterable[str | os.PathLike], parts: Mapping) -> str:
    """Hash of the files' bytes (the training code) and of the settings and data (``content``)
    a checkpoint depends on."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()


class _Log:
    """The training log: loss-curve lines, and a tqdm progress bar written as its own lines
    (at most every 10 s), appended to each of ``paths`` (None: skipped)."""

    def __init__(self, paths: Iterable[str | os.PathLike | None], total: int, initial: int):
        self.files = [open(p, "a") for p in paths if p is not None]  # noqa: SIM115 - closed in close()
        self.bar = tqdm(total=total, initial=initial, file=self, disable=not self.files, mininterval=10, ascii=True)

    def write(self, text: str) -> None:
        """tqdm's output: one line per refresh instead of carriage returns."""
        text = text.replace("\r", "").strip()
        for fh in self.files if text else []:
            fh.write(text + "\n")

    def flush(self) -> None:
        for fh in self.files:
            fh.flush()

    def line(self, text: str) -> None:
        self.write(text)
        self.flush()

    def close(self) -> None:
        self.bar.close()
        for fh in self.files:
            fh.close()


class SpikeWatch:
    """Flags loss terms above ``factor`` × their running mean over the last ``window`` steps
    (from the 10th step on), e.g. the self-consistency loss that jumped from 0.06 to 5,000 in
    one step of a 300-step test training."""

    def __init__(self, factor: float, window: int = SPIKE_WINDOW):
        self.factor = factor
        self.history: dict[str, deque[float]] = {}
        self.window = window

    def __call__(self, values: Mapping[str, float]) -> list[str]:
        """The spiking terms of one step ('name=value (k× its running mean m)'); then adds
        ``values`` to the running means."""
        spikes = []
        for name, value in values.items():
            past = self.history.setdefault(name, deque(maxlen=self.window))
            mean = sum(past) / len(past) if len(past) >= 10 else math.inf
            if value > self.factor * mean:
                spikes.append(f"{name}={value:.5g} ({value / mean:.3g}x its running mean {mean:.3g})")
            past.append(value)
        return spikes


class _Curve:
    """The loss curve: each step's loss terms kept on the device, read at log time in one
    synchronisation (none inside a step), checked for spikes step by step."""

    def __init__(self, spike_factor: float):
        self.watch = SpikeWatch(spike_factor)
        self.pending: list[tuple[int, str, torch.Tensor]] = []  # (step done, term, value)

    def add(self, step: int, terms: Mapping[str, torch.Tensor]) -> None:
        self.pending += [(step, name, value.detach().float()) for name, value in terms.items()]

    def read(self) -> tuple[list[str], str]:
        """The spike lines of the steps since the last read and the terms' means over the steps
        that have them ('loss=… x=…'; the shortcut terms are drawn on some steps only)."""
        values = torch.stack([v for *_, v in self.pending]).tolist()
        steps: dict[int, dict[str, float]] = {}
        for (step, name, _), value in zip(self.pending, values):
            steps.setdefault(step, {})[name] = value
        self.pending.clear()
        spikes = [
            f"# spike at step={k}: {', '.join(found)}" for k, terms in steps.items() if (found := self.watch(terms))
        ]
        names = dict.fromkeys(name for terms in steps.values() for name in terms)
        means = " ".join(f"{n}={np.mean([t[n] for t in steps.values() if n in t]):.5g}" for n in names)
        return spikes, means


@dataclass
class TrainingRun:
    """A training run: the model, its EMA and optimiser, the data and what a checkpoint must match."""

    process: str
    conditioning: str
    cfg: TrainingConfig
    model_cfg: ModelConfig
    process_cfg: ProcessConfig
    seed: int
    device: torch.device
    data: StructureDataset
    learner: Learner
    key: str  # the fingerprint a resumable checkpoint carries
    state_path: Path
    start: int = 0  # first step to run
    done: int = 0  # steps done
    elapsed: float = 0.0  # seconds of training so far, resumed runs included
    cpu: float = 0.0  # CPU seconds of training so far, a warm start's baseline included
    baseline_cpu: float = 0.0  # CPU seconds of the warm start's baseline
    saved: int | None = None  # step of the last checkpoint written or resumed

    @property
    def model(self) -> Denoiser:
        return self.learner.model

    def batch(self, step: int) -> Structures:
        """The structures of ``step`` (``batch_indices``), collated on the run's device."""
        idx = batch_indices(len(self.data), self.cfg.batch_size, step, self.seed)
        return self.data.collate([self.data[i] for i in idx]).to(self.device)

    def generator(self, step: int) -> torch.Generator:
        """The generator of ``step``'s times, noise and null embeddings (``step_seed``)."""
        return torch.Generator(self.device).manual_seed(step_seed(self.seed, step))

    def kept(self) -> str:
        """What survives a stop, for TrainingError's message."""
        if self.saved:
            return f"the last good checkpoint is {self.state_path} (step {self.saved})"
        return "no checkpoint was written"


def setup_run(
    tensors, checkpoints, process, conditioning, config: Mapping, threads: int | None, init=None
) -> TrainingRun:
    """The run's data, network (warm-started from ``init`` under shortcut_init: baseline), EMAs and
    optimiser from the config, and its checkpoint fingerprint."""
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
    warm = process == "shortcut" and cfg.shortcut_init == "baseline"
    if warm and init is None:
        raise TrainingError("shortcut_init: baseline needs the trained base model (init=...)")
    baseline_cpu = warm_start(model, init, process_cfg.shortcut_base) if warm else 0.0
    if cfg.compile:
        model.compile_egnn()  # the EMA copies of the learner inherit it

    settings = {k: v for k, v in asdict(cfg).items() if k not in cfg.resumable()}
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]  # a changed network restarts
    key = fingerprint(
        [*training_sources(), *([init] if warm else [])],
        {  # changed code restarts
            "model": model_cfg.to_dict(),
            "process": process_cfg.to_dict(),
            "training": settings,
            "seed": seed,
            "name": process,
            "properties": props,
            "weights": shapes,
            "data": content(raw),
        },
    )
    return TrainingRun(
        process,
        conditioning,
        cfg,
        model_cfg,
        process_cfg,
        seed,
        device,
        data,
        Learner.new(model, proc, cfg),
        key,
        Path(checkpoints) / "state.pt",
        cpu=baseline_cpu,
        baseline_cpu=baseline_cpu,
    )


def _resume(run: TrainingRun) -> str:
    """Load the checkpoint when its fingerprint matches the run's; returns what was done, for the log."""
    if not run.state_path.is_file():
        return "starting"
    state = read_state(run.state_path)
    if state["fingerprint"] != run.key:
        return f"ignoring {run.state_path} (other settings, data or code); starting"
    learner = run.learner
    learner.model.load_state_dict(state["model"])
    learner.ema.load_state_dict(state["ema"])
    learner.opt.load_state_dict(state["optimizer"])
    if learner.targets is not None:
        learner.targets.load_state_dict(state["targets"])
    run.start = run.saved = run.done = int(state["step"])
    run.elapsed, run.cpu = float(state["elapsed"]), float(state["cpu_seconds"])
    return f"resuming from {run.state_path} at"


def _checkpoint(run: TrainingRun, done: int) -> None:
    learner = run.learner
    run.learner.health.check(run.kept())  # a bad step never reaches the disk
    save_state(
        run.state_path,
        fingerprint=run.key,
        step=done,
        elapsed=run.elapsed,
        cpu_seconds=run.cpu,
        model=learner.model.state_dict(),
        ema=learner.ema.state_dict(),
        optimizer=learner.opt.state_dict(),
        **({"targets": learner.targets.state_dict()} if learner.targets is not None else {}),
    )
    run.saved = done


class _Health:
    """Non-finite losses and gradient norms, watched on the device without a per-step host
    synchronisation: a bad step's gradients are zeroed (the weights stay finite) and the first
    such step is remembered; ``check`` reads it (at log and checkpoint time, before any state is
    written) and raises TrainingError naming it."""

    def __init__(self, device: torch.device):
        self.first = torch.full((), -1, dtype=torch.long, device=device)  # first bad step, -1: none
        self.values = torch.zeros(2, device=device)  # its loss and gradient norm

    def watch(self, step: int, loss: torch.Tensor, norm: torch.Tensor, params: Iterable[torch.Tensor]) -> None:
        ok = torch.isfinite(loss) & torch.isfinite(norm)
        for p in params:
            if p.grad is not None:
                p.grad.masked_fill_(~ok, 0.0)
        new = ~ok & (self.first < 0)
        self.first = torch.where(new, step, self.first)
        self.values = torch.where(new, torch.stack([loss.detach(), norm.detach()]).to(self.values.dtype), self.values)

    def check(self, kept: str = "") -> None:
        """Raise TrainingError if a step was non-finite; ``kept`` says what state survives."""
        step = int(self.first)
        if step < 0:
            return
        loss, norm = self.values.tolist()
        what, value = ("loss", loss) if not math.isfinite(loss) else ("gradient norm", norm)
        raise TrainingError(f"step {step}: the {what} is {value}; training stopped" + (f", {kept}" if kept else ""))


@dataclass
class Learner:
    """What a training step updates: the network, its EMA, the self-consistency targets' own EMA
    (if any), the optimiser, and the non-finite watch; with the process and settings it uses."""

    proc: Process
    cfg: TrainingConfig
    model: torch.nn.Module
    ema: AveragedModel
    opt: torch.optim.Optimizer
    targets: AveragedModel | None
    health: _Health

    @classmethod
    def new(cls, model: torch.nn.Module, proc: Process, cfg: TrainingConfig) -> Learner:
        """AdamW at ``cfg.lr``, the EMAs of ``cfg`` and a fresh watch, on the model's device."""
        device = next(model.parameters()).device
        ema = AveragedModel(model, multi_avg_fn=ema_update_fn(cfg.ema_decay))
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        return cls(proc, cfg, model, ema, opt, self_consistency_targets(model, cfg.target_ema_decay), _Health(device))

    @property
    def target_model(self) -> torch.nn.Module:
        """Where MDShortcut's self-consistency targets come from (``target_ema_decay``)."""
        if self.cfg.target_ema_decay == 0:
            return self.model
        return (self.targets or self.ema).module


def train_step(
    learner: Learner, batch, step: int, generator: torch.Generator, cpu_seconds: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training step (every caller's: ``train_model``, the training benchmark, ``gpu_check``,
    the recipe tests): the process loss on ``batch`` with the targets of ``learner.target_model``,
    backward, gradient-norm clipping at ``grad_clip``, AdamW at the scheduled LR (``lr_factor`` at
    ``step`` and ``cpu_seconds``), the EMA updates. A non-finite loss or gradient norm zeroes the
    step's gradients and is remembered by ``learner.health`` (no host synchronisation here).
    Returns the loss and its parts, still on the device."""
    cfg = learner.cfg
    for group in learner.opt.param_groups:
        group["lr"] = cfg.lr * lr_factor(cfg, step, cpu_seconds)
    loss, parts = learner.proc.loss(learner.model, batch, generator, target_model=learner.target_model)
    learner.opt.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(learner.model.parameters(), cfg.grad_clip)
    learner.health.watch(step, loss, norm, learner.model.parameters())
    learner.opt.step()
    learner.ema.update_parameters(learner.model)
    if learner.targets is not None:
        learner.targets.update_parameters(learner.model)
    return loss, parts


def _loop(run: TrainingRun, out: _Log) -> None:
    """Steps ``run.start`` to ``training.steps`` (or until the CPU budget is spent): ``train_step``
    on each step's batch. Loss parts stay on the device and are read only at log time
    (``_Curve``), so the host never waits for the device inside a step."""
    cfg, curve = run.cfg, _Curve(run.cfg.spike_factor)
    clock, cpu_clock = time.perf_counter(), time.process_time()
    for step in range(run.start, cfg.steps):
        if cfg.cpu_budget_s and run.cpu >= cfg.cpu_budget_s:
            out.line(f"# CPU budget of {cfg.cpu_budget_s:.0f} s spent after {step} steps")
            break
        loss, parts = train_step(run.learner, run.batch(step), step, run.generator(step), run.cpu)
        done = run.done = step + 1
        curve.add(done, {"loss": loss, **parts})
        now, cpu_now = time.perf_counter(), time.process_time()
        run.elapsed, clock = run.elapsed + now - clock, now
        run.cpu, cpu_clock = run.cpu + cpu_now - cpu_clock, cpu_now
        out.bar.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            run.learner.health.check(run.kept())
            spikes, means = curve.read()
            for line in spikes:
                out.line(line)
            lr = run.learner.opt.param_groups[0]["lr"]
            out.line(f"step={done} {means} lr={lr:.3g} seconds={run.elapsed:.1f} cpu={run.cpu:.1f}")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            _checkpoint(run, done)
    if run.saved != run.done:  # stopped by the CPU budget
        _checkpoint(run, run.done)


def _save(run: TrainingRun, output: str | os.PathLike) -> int:
    """Write the model file (the EMA weights); returns the number of steps trained."""
    steps = run.done
    save_model(
        output,
        process=run.process,
        dataset=run.data.dataset,
        elements=run.data.elements,
        properties=run.data.properties,
        label_stats=run.data.stats,
        model_config=run.model_cfg.to_dict(),
        process_config=run.process_cfg.to_dict(),
        state_dict={k: v.detach().cpu() for k, v in run.learner.ema.module.state_dict().items()},
        rho_max=run.data.rho_max,
        atoms_per_sample=run.data.atoms_per_sample,
        steps=steps,
        typical_cell=typical_cell(run.data.cell),
        cpu_seconds=run.cpu,
    )
    return steps


def train_model(
    tensors: str | os.PathLike,
    output: str | os.PathLike,
    checkpoints: str | os.PathLike,
    process: str,
    conditioning: str,
    config: Mapping,
    log: str | os.PathLike | None = None,
    threads: int | None = None,
    *,
    init: str | os.PathLike | None = None,
) -> None:
    """Train ``process`` (ode, sde, shortcut) conditioned on ``conditioning`` (none, all, a
    label) and write the model file ``output``. ``init``: the trained base model of a
    ``shortcut_init: baseline`` warm start (``warm_start``).

    ``config``: the whole validated config (sections model, process, training; seed, device).
    ``checkpoints``: folder of the training state (resumed when it matches) and of the training
    log across resumes (``LOG_NAME``). ``log``: this run's log (Snakemake's rule log): the loss
    curve (step, loss and its parts averaged since the last line, lr, seconds), loss spikes and a
    progress bar. ``threads``: CPU threads (default: training.threads).
    """
    run = setup_run(tensors, checkpoints, process, conditioning, config, threads, init)
    note = _resume(run)
    history = Path(checkpoints) / LOG_NAME
    history.parent.mkdir(parents=True, exist_ok=True)
    out = _Log([history, log], run.cfg.steps, min(run.start, run.cfg.steps))
    n_params = sum(p.numel() for p in run.model.parameters())
    out.line(
        f"# {process}-{conditioning} on {run.data.dataset or tensors}: {len(run.data)} structures, properties "
        f"{run.data.properties}, {n_params} parameters, device {run.device}; {note} step {run.start} of "
        f"{run.cfg.steps} (the log across resumes: {history})"
    )
    try:
        _loop(run, out)
        steps = _save(run, output)
        baseline = f" with the baseline's {run.baseline_cpu:.1f}" if run.baseline_cpu else ""
        out.line(
            f"# wrote {output} (EMA weights after {steps} steps, {run.elapsed:.1f} s and {run.cpu:.1f} CPU s "
            f"of training{baseline})"
        )
    except TrainingError as exc:
        out.line(f"# ERROR {exc}")
        raise
    finally:
        out.close()
