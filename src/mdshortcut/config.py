"""Cross-field checks of a schema-validated configuration.

``config/schema.yaml`` checks types, ranges and names; what a schema cannot say (a model
conditioned on a label the dataset does not compute, a range given backwards) is checked
here, once, before any job runs. Each message names the offending key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


#: MDShortcut's own recipe keys per config section: they do not reach a baseline's training
SHORTCUT_KEYS = {
    "process": ("shortcut_base", "shortcut_levels", "shortcut_share", "shortcut_fraction"),
    "training": ("target_ema_decay", "shortcut_init"),
}

#: the optimiser's keys of ``training``; ``shortcut_optimiser`` may set them for MDShortcut alone
OPTIMISER_KEYS = ("grad_clip", "lr_warmup_steps", "lr_schedule")

#: the keys an ablation variant may set (``mdshortcut.pipeline.ablation``): MDShortcut's own and the optimiser's
RECIPE = {
    "process": SHORTCUT_KEYS["process"],
    "training": (*OPTIMISER_KEYS, *SHORTCUT_KEYS["training"]),
}


#: the keys an architecture variant may set (``mdshortcut.pipeline.architecture``): the denoiser's
#: options, and whether the ablation's dataset is padded with ghosts
ARCHITECTURE = {
    "model": ("distance_features", "n_radial", "noise_embedding", "update_distances"),
    "process": ("sigma_x_max", "t_sampling", "pairing"),
    "dataset": ("ghosts",),
}

#: initial-structure keys only one kind reads (those without a schema default, which a user wrote)
INITIAL_KEYS = {"diamond": ("repeat", "lattice_constant"), "random": ("n_atoms", "formula")}


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the key's path."""


def build_section(cls: type[T], section: Mapping, name: str, choices: Mapping[str, tuple] | None = None) -> T:
    """The dataclass ``cls`` of one config section; unknown keys, and a value outside its
    ``choices`` (key -> allowed values), are an error naming them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"{name}: unknown key(s) {unknown} (known: {sorted(known)})")
    built = cls(**dict(section))
    for key, allowed in (choices or {}).items():
        if getattr(built, key) not in allowed:
            raise ConfigError(f"{name}: {key} must be one of {', '.join(allowed)} (got {getattr(built, key)!r})")
    return built


def _check_range(key: str, value) -> None:
    lo, hi = value
    if lo > hi:
        raise ConfigError(f"{key}: range [{lo}, {hi}] is reversed")


def check_config(config: Mapping) -> None:
    """Raise ConfigError for the first inconsistency found in a validated config."""
    for name, ds in config["datasets"].items():
        key = f"datasets.{name}"
        labels = set(ds.get("labels", []))
        initial = ds["initial"]
        ignored = sorted(
            k for kind, keys in INITIAL_KEYS.items() if kind != initial["kind"] for k in keys if k in initial
        )
        if ignored:
            raise ConfigError(f"{key}.initial: {ignored} are not read for kind {initial['kind']} (remove them)")
        if initial["kind"] == "random":
            for field in ("n_atoms", "formula"):
                if field not in initial:
                    raise ConfigError(f"{key}.initial.{field}: required when kind is random")
            _check_range(f"{key}.initial.n_atoms", initial["n_atoms"])
        if ds["protocol"]["stages"][-1]["kind"] != "md" and ds["protocol"].get("frames", 1) > 1:
            raise ConfigError(
                f"{key}.protocol.stages: the last stage must be md when frames > 1 "
                "(frames are decorrelated by continuing it)"
            )
        if ds["protocol"].get("frames", 1) > 1 and ds["protocol"].get("frame_interval_ps", 0) == 0:
            raise ConfigError(
                f"{key}.protocol.frame_interval_ps: must be > 0 when frames > 1 (frames would be copies of one state)"
            )
        for process, sets in ds.get("models", {}).items():
            for cond in sets:
                if cond == "none":
                    continue
                if not labels:
                    raise ConfigError(
                        f"{key}.models.{process}: conditioning '{cond}' needs labels; {name} has none (use 'none')"
                    )
                if cond != "all" and cond not in labels:
                    raise ConfigError(
                        f"{key}.models.{process}: '{cond}' is not a label of {name} (labels: {sorted(labels)})"
                    )
        if ds.get("models") and "rho_max" not in ds and ds.get("ghosts", True):
            raise ConfigError(f"{key}.rho_max: required to train models with ghosts (ghost-atom density)")
        targets = ds.get("sampling", {}).get("targets", {})
        if not ds.get("ghosts", True):
            check_fixed_count(ds, key, targets)
        for prop, rng in targets.items():
            if prop not in labels:
                raise ConfigError(f"{key}.sampling.targets.{prop}: not a label of {name} (labels: {sorted(labels)})")
            _check_range(f"{key}.sampling.targets.{prop}", rng)  # the schema keeps them > 0 (MAPE, Eq. 21)
        _check_sampling_cell(config, name)
        if "training_steps" in ds and not ds.get("models"):
            raise ConfigError(f"{key}.training_steps: {name} trains no models (remove it or add models)")
    proc = config.get("process", {})
    if proc and proc["t_min"] >= proc["t_max"]:
        raise ConfigError(f"process.t_min: {proc['t_min']} must be below t_max {proc['t_max']}")
    if "ablation" in config:
        _check_variants(config, "ablation", RECIPE, "recipe")
    if "architecture" in config:
        _check_variants(config, "architecture", ARCHITECTURE, "denoiser")


def check_fixed_count(ds: Mapping, key: str, targets: Mapping) -> None:
    """A dataset without ghosts has one atom count in every frame, so its initial structures must
    (a random one: n_atoms a single value), and it cannot be sampled for a density target: with
    the count fixed, a sample's density is n / Vol(C), set by the cell the sampler is given, not
    by the model (with ghosts the model decides how many slots are real)."""
    initial = ds["initial"]
    if initial["kind"] == "random" and len(set(initial["n_atoms"])) > 1:
        raise ConfigError(
            f"{key}.initial.n_atoms: {list(initial['n_atoms'])} is a range, but ghosts: false needs one atom count "
            "in every frame (give [n, n] or use ghosts)"
        )
    if "density" in targets:
        raise ConfigError(
            f"{key}.sampling.targets.density: with ghosts: false every sample holds the same number of atoms, "
            "so its density is set by the cell, not the model (use ghosts for density-conditioned design)"
        )


def _check_sampling_cell(config: Mapping, name: str) -> None:
    """sampling.cell is set exactly when the dataset is sampled by inverse design (targets), and
    the model can sample in it (``mdshortcut.data.ghost.cell_problem``, as ``mdshortcut generate``)."""
    ds, key = config["datasets"][name], f"datasets.{name}.sampling.cell"
    sampling = ds.get("sampling", {})
    if not ds.get("models"):
        return
    if not sampling.get("targets"):
        if "cell" in sampling:
            raise ConfigError(
                f"{key}: {name} is sampled unconditionally, in cells drawn from its data; the cell is read "
                "only for inverse design (sampling.targets): remove it"
            )
        return
    if "cell" not in sampling:
        raise ConfigError(f"{key}: required for inverse design (sampling.targets): edge of the cubic cells, Å")
    import numpy as np

    from mdshortcut.data.ghost import cell_problem

    rho_max = ds["rho_max"] if ds.get("ghosts", True) else None  # without ghosts: count checked with the tensors
    problem = cell_problem(np.eye(3) * sampling["cell"], config["model"]["cutoff"], rho_max)
    if problem:
        raise ConfigError(f"{key}: {sampling['cell']:g} Å: {problem}")


def _check_variants(config: Mapping, section: str, allowed: Mapping[str, Sequence[str]], what: str) -> None:
    """An ablation's (``section``: ablation, architecture) dataset exists, trains models and is
    sampled unconditionally; its variants set only the ``allowed`` keys of each config section."""
    ab = config[section]
    ds = config["datasets"].get(ab["dataset"])
    if ds is None:
        known = sorted(config["datasets"])
        raise ConfigError(f"{section}.dataset: '{ab['dataset']}' is not a dataset (datasets: {known})")
    if ("rho_max" not in ds and ds.get("ghosts", True)) or ds.get("sampling", {}).get("targets"):
        raise ConfigError(f"{section}.dataset: '{ab['dataset']}' needs rho_max and no sampling targets (unconditional)")
    for name, variant in ab["variants"].items():
        for part, keys in variant.items():
            unknown = sorted(set(keys) - set(allowed[part]))
            if unknown:
                key, known = f"{section}.variants.{name}.{part}", list(allowed[part])
                raise ConfigError(f"{key}: {unknown} are not {what} keys ({what}: {known})")


def dataset_training(config: Mapping, dataset: str) -> dict:
    """The ``training`` section of one dataset's models: ``training`` with its steps replaced
    by the dataset's ``training_steps`` where it sets them."""
    section = dict(config["training"])
    steps = config["datasets"][dataset].get("training_steps")
    return section | ({"steps": steps} if steps is not None else {})


def model_config(config: Mapping, dataset: str, process: str) -> dict:
    """train_model's config of one model (sections model, process, training; seed, device): the
    dataset's training section, for MDShortcut with ``shortcut_optimiser`` over it, and for a
    baseline (ode, sde) without ``SHORTCUT_KEYS``, so that changing MDShortcut's recipe does not
    retrain the baselines."""
    sections = {"process": dict(config["process"]), "training": dataset_training(config, dataset)}
    if process == "shortcut":
        sections["training"] |= config.get("shortcut_optimiser", {})
    else:
        sections = {
            name: {k: v for k, v in section.items() if k not in SHORTCUT_KEYS[name]}
            for name, section in sections.items()
        }
    return {k: config[k] for k in ("model", "seed", "device")} | sections


def resolve_device(device: str) -> str:
    """The ``device`` setting where the job runs: 'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def synchronize(device) -> None:
    """Wait for the work queued on ``device`` (a name or torch.device), so that a clock read
    after it times the work and not its queueing; nothing to wait for on the CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def yaml_problem(path: str | os.PathLike) -> str:
    """Where and why ``path`` is not valid YAML ('FILE:LINE:COLUMN: problem'), or '' if it is."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            yaml.safe_load(fh)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return f"{path}:{mark.line + 1}:{mark.column + 1}: not valid YAML ({exc.problem or exc.context})"
    except yaml.YAMLError as exc:
        return f"{path}: not valid YAML ({exc})"
    return ""


def config_file_problem(path: str | os.PathLike) -> str:
    """Why ``path`` cannot be a config file (missing, empty, not YAML, not a mapping), in one line
    naming it, or '' if it can: `make run` checks its CONFIG so, since Snakemake reads a
    ``--configfile`` before the workflow starts and reports these with a traceback or without the
    file's name."""
    import yaml

    if not os.path.isfile(path):
        return f"{path}: no such config file"
    problem = yaml_problem(path)
    if problem:
        return problem
    with open(path, encoding="utf-8") as fh:
        content = yaml.safe_load(fh)
    if not isinstance(content, dict) or not content:
        what = "empty" if content is None else "not a mapping of keys"
        return f"{path}: {what} (a config is a YAML mapping of the keys in config/schema.yaml)"
    return ""
