"""Checkpoint files: the trained model and the resumable training state.

Both are plain dicts written atomically and read with ``torch.load(..., weights_only=True)``.

Model file (``results/models/{dataset}/{process}-{conditioning}.pt``): ``format``
("mdshortcut-model"), ``version``, ``process``, ``dataset``, ``elements`` (class 0 = ghost),
``properties`` (the conditioning, in the network's order), ``label_stats`` (property ->
{mean, std, min, max} of its training labels, physical units), ``model_config`` and
``process_config`` (dicts of the config sections), ``state_dict`` (the EMA weights),
``rho_max`` (atoms/Å^3; None for a model without ghosts trained with none configured) and
``steps`` (training steps done); optional ``typical_cell`` ((3, 3) Å, the training cell of
median volume: the default cell of ``mdshortcut generate``), ``cpu_seconds`` (training CPU
time, a warm start's baseline included) and ``atoms_per_sample`` (the fixed atom count of a
model trained without ghosts, None with ghosts), absent from files written before they existed.

Training state (``{checkpoint_dir}/state.pt``): ``format`` ("mdshortcut-training"),
``version``, ``fingerprint`` (what the run depends on), ``step`` (steps done), ``elapsed``
(s), ``cpu_seconds`` (CPU s, a warm start's baseline included), the ``model``, ``ema`` and
``optimizer`` state dicts, and ``targets`` (the self-consistency targets' own EMA, if any).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from mdshortcut.io import atomic_path

VERSION = 1
MODEL_FORMAT = "mdshortcut-model"
STATE_FORMAT = "mdshortcut-training"
MODEL_KEYS = (
    "process",
    "dataset",
    "elements",
    "properties",
    "label_stats",
    "model_config",
    "process_config",
    "state_dict",
    "rho_max",
    "steps",
)
STATE_KEYS = ("fingerprint", "step", "elapsed", "cpu_seconds", "model", "ema", "optimizer")


class CheckpointError(ValueError):
    """A missing, unreadable or incompatible checkpoint; the message names the file."""


def _write(path: str | os.PathLike, fmt: str, keys: tuple[str, ...], content: Mapping) -> None:
    missing = [k for k in keys if k not in content]
    if missing:
        raise KeyError(f"{fmt}: missing field(s) {missing}")
    with atomic_path(path) as tmp:
        torch.save({"format": fmt, "version": VERSION, **content}, tmp)


def _reason(exc: Exception) -> str:
    """One line: for a refusal of ``weights_only``, torch's specific paragraph (e.g. the
    blocked global), without its advice to load unsafely."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        generic = ("Weights only load failed", "Check the documentation")
        text = "refused by the safe loader: " + " ".join(
            p for p in text.split("\n\n") if p.strip() and not p.startswith(generic)
        )
    return " ".join(text.split())[:300] or type(exc).__name__


def load_file(path: str | os.PathLike, what: str = "checkpoint") -> object:
    """``torch.load(path, weights_only=True)`` on the CPU; CheckpointError naming ``path`` (a
    ``what``: checkpoint, tensors file) if it is missing or unreadable (truncated, not torch's)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such {what}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle refused by weights_only, ...
        raise CheckpointError(f"{path}: not a readable {what} ({_reason(exc)})") from None


def _read(path: str | os.PathLike, fmt: str, keys: tuple[str, ...]) -> dict:
    obj = load_file(path)
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise CheckpointError(f"{path}: not an {fmt} file")
    if obj.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: format version {obj.get('version')}, this mdshortcut reads version {VERSION} (retrain the model)"
        )
    missing = [k for k in keys if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: missing field(s) {missing}")
    return obj


def save_model(path: str | os.PathLike, **content) -> None:
    """Write a model file (fields: see the module docstring)."""
    _write(path, MODEL_FORMAT, MODEL_KEYS, content)


def read_model(path: str | os.PathLike) -> dict:
    """The dict of a model file, on the CPU; CheckpointError if unusable."""
    return _read(path, MODEL_FORMAT, MODEL_KEYS)


def save_state(path: str | os.PathLike, **content) -> None:
    """Write a training state (fields: see the module docstring)."""
    _write(path, STATE_FORMAT, STATE_KEYS, content)


def read_state(path: str | os.PathLike) -> dict:
    """The dict of a training state, on the CPU; CheckpointError if unusable."""
    return _read(path, STATE_FORMAT, STATE_KEYS)
