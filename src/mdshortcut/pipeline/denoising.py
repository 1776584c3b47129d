"""The denoising probe: a trained ε-prediction network against the Bayes-optimal denoiser.

For each σ (Å) and held-out frame x0 (new melt-quench replicas of the dataset's protocol,
``tethered.write_heldout``), one draw ε gives x_t = x0 + σ ε. The Bayes file
(``mdshortcut.md.tethered``) holds ε and the Bayes-optimal prediction ε* = E[ε | x_t] from
tethered MD; the network sees the same x_t at t = σ / σ_X^max (``node_errors``). Table columns,
per real atom and averaged over the ``n_atoms`` atoms of ``n_frames`` frames:

- ``noise``: |ε|² of these draws, the loss of predicting 0 (≈ 3);
- ``loss``: |ε̂ − ε|², the network's ε-loss (positions only, ghosts excluded);
- ``bayes``: |ε − ε*|², the best loss possible on these draws (the cross product of the MD's two
  halves, unbiased), with ``bayes_se`` its standard error over frames and ``bayes_md_se`` the
  part of it that is the MD's own sampling noise (from the halves' difference);
- ``bayes_var`` (± ``bayes_var_se``): the posterior variance (x + y + z) / σ² of the same runs,
  the expected Bayes loss E|ε − ε*|², estimated without the draw-to-draw scatter of |ε − ε*|²;
- ``captured`` (± ``captured_se``, delta method over frames): (noise − loss) / (noise − bayes),
  the share of the recoverable signal the network recovers (1: Bayes-optimal, 0: no better
  than predicting 0);
- ``bayes_cpu_s``: CPU seconds of the tethered MD at this σ.

The probe is defined for networks whose position output is a noise estimate ε̂: the SDE, and
MDShortcut at its instantaneous level on an SDE base. A flow (ODE) network predicts a velocity
and gets no row (``ProbeError``). Conditioned models are probed unconditionally (every property
null). The network sees the frames padded with ghosts at the model's rho_max, as its training
tensors were (a model trained without ghosts sees the real atoms alone); ghosts are noised too
(their ε from the probe's seed) but left out of every average. The Bayes estimate knows which
atoms are real; at σ ≤ 0.2 Å (t ≤ 0.12 at σ_X^max = 1.7 Å) the network sees the element
embeddings nearly clean (α ≥ 0.98, σ_E ≤ 0.28), so it does too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from ase import Atoms

from mdshortcut.io import read_structures, write_csv

log = logging.getLogger(__name__)

COLUMNS = [
    "dataset",
    "model",
    "sigma_A",
    "t",
    "n_frames",
    "n_atoms",
    "noise",
    "loss",
    "bayes",
    "bayes_se",
    "bayes_md_se",
    "bayes_var",
    "bayes_var_se",
    "captured",
    "captured_se",
    "bayes_cpu_s",
]


class ProbeError(ValueError):
    """A model the probe cannot score; the message names it."""


# --- the network ------------------------------------------------------------------------
def epsilon_process(process):
    """The SDE a model's positions are ε-predictions of: the process, or a shortcut's base;
    ProbeError for a flow (ODE) network."""
    from mdshortcut.generative import MaterialSDE, MDShortcut

    sde = process.base if isinstance(process, MDShortcut) else process
    if not isinstance(sde, MaterialSDE):
        raise ProbeError(f"process {process.name}: its network predicts a velocity, not a noise (the probe needs ε)")
    return sde


def padded_frames(frames: Sequence[Atoms], model, seed: int):
    """The frames as the network's training tensors hold them (``Structures``): padded with
    ghosts at the model's rho_max (placed by ``seed``), or as they are for a model trained without
    ghosts (their atom count must be its ``atoms_per_sample``); float32, one-hot elements."""
    from mdshortcut.data.dataset import StructureDataset
    from mdshortcut.data.ghost import build_tensors

    ghosts = model.atoms_per_sample is None
    wrong = set() if ghosts else {len(a) for a in frames} - {model.atoms_per_sample}
    if wrong:
        raise ProbeError(
            f"held-out frames of {sorted(wrong)} atoms; "
            f"the model was trained on {model.atoms_per_sample} without ghosts"
        )
    empty = np.zeros((len(frames), 0))
    tensors = build_tensors(
        frames, model.elements[1:], model.rho_max, [], empty, model.dataset, seed, "held-out", ghosts=ghosts
    )
    data = StructureDataset(tensors)
    return data.collate([data[i] for i in range(len(data))]).to(model.device)


def node_errors(model, data, sigma: float, eps: torch.Tensor, generator: torch.Generator):
    """|ε̂ − ε|² (N,) of every node of ``data`` (clean ``Structures``) noised at ``sigma`` Å,
    and the mask (N,) of its real atoms: real atoms take ``eps`` (n_real, 3, in data order),
    ghosts' noise and the element noise are drawn as the SDE's ``noised`` draws them, from
    ``generator``; the network runs at its instantaneous level, t = σ / σ_X^max."""
    from mdshortcut.generative.common import graph_at, per_atom
    from mdshortcut.model.graph import wrap

    sde = epsilon_process(model.process)
    g = data.graph
    t = torch.full((len(g.cell),), sigma, dtype=g.positions.dtype, device=g.positions.device)
    t = t / sde.sigma_x(torch.ones((), dtype=t.dtype))
    _, et, eps_x, _ = sde.noised(g.positions, data.embeddings, t, g.batch, generator)
    real = data.embeddings[:, 0] == 0  # class 0: ghost
    eps_x = eps_x.clone()
    eps_x[real] = eps.to(eps_x)
    xt = wrap(g.positions + sde.sigma_x(per_atom(t, g.batch)) * eps_x, g.cell, g.batch)
    with torch.inference_mode():
        px, _ = sde.predict(model.denoiser, graph_at(xt, g.cell, g.batch, g.n_atoms), et, t, None, None, generator)
    return (px - eps_x).square().sum(dim=1), real


def model_losses(model, frames: Sequence[Atoms], bayes: Mapping[str, np.ndarray], seed: int) -> tuple[list, list]:
    """Network time t and per-real-atom ε-losses (in the Bayes file's atom order) of a loaded
    model (``sample.load_model``) at every σ of ``bayes``, on the same draws of ε; ghosts and
    element noise from ``seed``."""
    sde = epsilon_process(model.process)
    data = padded_frames(frames, model, seed)
    times, losses = [], []
    for j, sigma in enumerate(bayes["sigma"]):
        generator = torch.Generator(model.device).manual_seed(seed + j)
        errors, real = node_errors(model, data, float(sigma), torch.as_tensor(bayes["eps"][j]), generator)
        times.append(float(sigma) / float(sde.sigma_x(torch.ones((), dtype=torch.float64))))
        losses.append(errors[real].double().cpu().numpy())
    return times, losses


# --- statistics and the table -----------------------------------------------------------
def cluster_se(num: np.ndarray, den: np.ndarray) -> float:
    """Standard error of Σnum / Σden from per-cluster sums (F,) (delta method; NaN for F < 2)."""
    if len(num) < 2:
        return float("nan")
    ratio = num.sum() / den.sum()
    return float(np.sqrt(len(num) / (len(num) - 1) * np.square(num - ratio * den).sum()) / abs(den.sum()))


def bayes_summary(frame: np.ndarray, eps, star_a, star_b, variance, loss=None) -> dict[str, float]:
    """The probe's per-atom means over all atoms of one σ (module docstring) from the atoms'
    frame index (N,), ε, ε*_A, ε*_B (N, 3), posterior variance / σ² (N,) and, if given, the
    network's ε-loss (N,)."""
    per_frame = lambda v: np.bincount(frame, weights=v)  # noqa: E731
    n = per_frame(np.ones(len(frame)))
    noise = np.square(eps).sum(axis=1)
    cross = ((eps - star_a) * (eps - star_b)).sum(axis=1)
    md_noise = ((eps - 0.5 * (star_a + star_b)) * (star_a - star_b)).sum(axis=1)  # as noisy as the halves' error
    row = {
        "n_frames": len(n),
        "n_atoms": len(frame),
        "noise": noise.mean(),
        "bayes": cross.mean(),
        "bayes_se": cluster_se(per_frame(cross), n),
        "bayes_md_se": float(np.sqrt(np.square(per_frame(md_noise)).sum()) / len(frame)),
        "bayes_var": variance.mean(),
        "bayes_var_se": cluster_se(per_frame(variance), n),
    }
    if loss is not None:
        gain, best = per_frame(noise - loss), per_frame(noise - cross)
        row |= {"loss": loss.mean(), "captured": gain.sum() / best.sum(), "captured_se": cluster_se(gain, best)}
    return row


def sigma_summary(bayes: Mapping[str, np.ndarray], j: int, loss: np.ndarray | None = None) -> dict[str, float]:
    """``bayes_summary`` of the j-th σ of a Bayes file (and of a network's losses there)."""
    return bayes_summary(bayes["frame"], *(bayes[k][j] for k in ("eps", "star_a", "star_b", "variance")), loss)


def denoising_table(
    models: Sequence[str | os.PathLike],
    heldout: Mapping[str, str | os.PathLike],
    bayes: Mapping[str, str | os.PathLike],
    seed: int,
    device: str,
    out: str | os.PathLike,
) -> pd.DataFrame:
    """The probe's table (``COLUMNS``) of model files (named by their stem) against the held-out
    frames and the Bayes file of each one's dataset (dataset -> path); written to ``out`` atomically."""
    from mdshortcut.config import resolve_device
    from mdshortcut.md.tethered import read_bayes
    from mdshortcut.sample import load_model

    rows = []
    for path in models:
        model = load_model(path, resolve_device(device))
        epsilon_process(model.process)  # a flow network fails here, before any work
        if model.dataset not in bayes:
            raise ProbeError(f"{path}: a model of {model.dataset}, which has no Bayes file here")
        frames, estimate = read_structures(heldout[model.dataset]), read_bayes(bayes[model.dataset])
        if len(estimate["frame"]) != sum(len(f) for f in frames):
            raise ProbeError(f"{bayes[model.dataset]}: its atoms are not those of {heldout[model.dataset]}")
        times, losses = model_losses(model, frames, estimate, seed)
        for j, sigma in enumerate(estimate["sigma"]):
            rows.append(
                {
                    "dataset": model.dataset,
                    "model": Path(path).stem,
                    "sigma_A": float(sigma),
                    "t": times[j],
                    "bayes_cpu_s": float(estimate["cpu_s"][j].sum()),
                    **sigma_summary(estimate, j, losses[j]),
                }
            )
        captured = [round(row["captured"], 3) for row in rows[-len(times) :]]
        log.info(f"{model.dataset} {Path(path).stem}: captured {captured}")
    table = pd.DataFrame(rows, columns=COLUMNS)
    write_csv(out, table)
    return table
