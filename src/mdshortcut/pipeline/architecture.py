"""The denoiser's architecture ablation: variants trained at equal CPU time, scored on one dataset.

A variant overrides denoiser keys (``mdshortcut.config.ARCHITECTURE``: the model's distance
features, noise embedding and invariants, the process's σ_X^max, time sampling and pairing) on top
of the paper's network (the schema defaults); ``paper: {}`` is the paper as printed. Each variant
trains every baseline of ``processes`` (ODE, SDE) with ``training.cpu_budget_s`` = the budget, so a
costlier network gets fewer steps, then samples ``n_samples`` structures at every ``n_steps`` with
its process's own sampler, scored like Table 1 (RDF/ADF RMSD, close_fraction, atoms per sample).
docs/design.md §8 states the rule (``rank_architectures``) that picks the default from the table,
written before its first default-scale run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mdshortcut.config import ARCHITECTURE, ConfigError, check_fixed_count
from mdshortcut.pipeline import ablation
from mdshortcut.pipeline.ablation import paper_values

COLUMNS = [name if name != "sampler" else "process" for name in ablation.COLUMNS]  # a row per baseline
#: σ (Å) of the denoising probe's captured fraction in the architecture ranking (docs/design.md §8)
ARCHITECTURE_PROBE_SIGMA = 0.1


def paper_architecture() -> dict[str, dict]:
    """The denoiser keys at the schema defaults (the paper's network; its datasets have ghosts)."""
    return paper_values({s: ARCHITECTURE[s] for s in ("model", "process")}) | {"dataset": {"ghosts": True}}


def variant_ghosts(variant: Mapping) -> bool:
    """Whether a variant (its config mapping) trains on the ablation's dataset padded with ghosts:
    its ``dataset.ghosts``, else the paper's (ghosts), whatever the dataset itself sets."""
    return bool(variant.get("dataset", {}).get("ghosts", paper_architecture()["dataset"]["ghosts"]))


def check_architecture(config: Mapping) -> None:
    """ConfigError if a variant cannot train on the ablation's dataset (ghosts need its rho_max;
    without them its atom count must be fixed) or the probe skips the σ the ranking reads."""
    arch = config["architecture"]
    ds = config["datasets"][arch["dataset"]]
    for name, variant in arch["variants"].items():
        key = f"architecture.variants.{name}.dataset.ghosts"
        if variant_ghosts(variant):
            if "rho_max" not in ds:
                raise ConfigError(f"{key}: ghosts (the paper's) need datasets.{arch['dataset']}.rho_max")
        else:
            check_fixed_count(ds, f"{key}: datasets.{arch['dataset']}", {})
    sigmas = config.get("denoising", {}).get("sigmas", [])
    if "sde" in arch["processes"] and ARCHITECTURE_PROBE_SIGMA not in sigmas:
        raise ConfigError(
            f"denoising.sigmas: {sigmas} lacks {ARCHITECTURE_PROBE_SIGMA} Å, where the architecture "
            "ranking reads each variant's captured fraction"
        )


def variant_config(config: Mapping, training: Mapping, variant: str) -> dict:
    """train_model's config of a baseline in ``variant``: the run's model/process sections with the
    denoiser keys reset to the paper's and the variant's overrides, the dataset's ``training``
    section with a CPU budget instead of a step count (``max_steps`` caps the steps)."""
    arch = config["architecture"]
    overrides = arch["variants"][variant]  # denoiser keys only (mdshortcut.config.check_config)
    paper = paper_architecture()
    sections = {s: {**config[s], **paper[s], **overrides.get(s, {})} for s in ("model", "process")}
    sections["training"] = {**training, "steps": arch["max_steps"], "cpu_budget_s": arch["cpu_budget_s"]}
    return {"seed": config["seed"], "device": config["device"], **sections}


def evaluate_variant(
    model_path: str | os.PathLike,
    structures: str | os.PathLike,
    reference: Mapping,
    variant: str,
    process: str,
    n_steps: Sequence[int],
    n_samples: int,
    seed: int,
    cfg,
    device: str = "cpu",
) -> pd.DataFrame:
    """Rows of ``COLUMNS`` for one trained baseline (``process``) of a variant, one per n_s with
    its own sampler (``ablation.score_runs``)."""
    runs = [(process, n, False) for n in n_steps]
    rows = ablation.score_runs(model_path, structures, reference, runs, n_samples, seed, cfg, device)
    return pd.DataFrame([{"variant": variant, "process": r.pop("label"), **r} for r in rows], columns=COLUMNS)


def captured_fractions(probes: Mapping[str, str | os.PathLike]) -> dict[str, float]:
    """Variant -> its SDE's captured fraction at ``ARCHITECTURE_PROBE_SIGMA`` from the denoising
    probe's table of that variant (``pipeline.denoising``; variant -> CSV path)."""
    fractions = {}
    for variant, path in probes.items():
        table = pd.read_csv(path)
        row = table[np.isclose(table["sigma_A"], ARCHITECTURE_PROBE_SIGMA)]
        if len(row) != 1:
            raise ValueError(f"{path}: no single row at σ = {ARCHITECTURE_PROBE_SIGMA} Å")
        fractions[variant] = float(row["captured"].iloc[0])
    return fractions


def rank_architectures(
    table: pd.DataFrame,
    variants: Mapping,
    n_atoms: float,
    captured: Mapping[str, float] | None = None,
    n_s: int | None = None,
    close_max: float = 0.10,
    atoms_tol: float = 2.0,
    adf_slack: float = 0.10,
    tie: float = 0.005,
) -> pd.DataFrame:
    """The rule of docs/design.md §8 that picks the default denoiser, one row per variant.

    Over the variant's rows at ``n_s`` (default: the table's largest, 250 at the default scale;
    every process): ``rdf_rmsd`` and ``adf_rmsd`` (means over
    the processes), ``max_close_fraction``, ``worst_atoms_mean`` (furthest from ``n_atoms``, the
    training structures' mean). ``valid``: close_fraction < ``close_max`` and atoms within
    ``atoms_tol`` for every process, and adf_rmsd at most (1 + ``adf_slack``) × the ``paper``
    variant's. ``captured``: variant -> the denoising probe's captured fraction at σ = 0.1 Å (NaN
    where unknown). ``chosen``: among the valid variants (all, if none is), those within ``tie`` of
    the lowest rdf_rmsd, by the highest captured fraction, then the fewest keys away from the
    paper's network, then the lowest rdf_rmsd.
    """
    rows = table[table["n_s"] == (table["n_s"].max() if n_s is None else n_s)]
    if rows.empty:
        raise ValueError(f"architecture table: no rows at n_s = {n_s}")
    by = rows.groupby("variant", sort=False)
    ranking = pd.DataFrame(
        {
            "rdf_rmsd": by["rdf_rmsd"].mean(),
            "adf_rmsd": by["adf_rmsd"].mean(),
            "max_close_fraction": by["close_fraction"].max(),
            "worst_atoms_mean": by["atoms_mean"].agg(lambda a: a.iloc[int((a - n_atoms).abs().argmax())]),
        }
    )
    paper_adf = ranking["adf_rmsd"].get("paper", np.inf)
    ranking["valid"] = (
        (ranking["max_close_fraction"] < close_max)
        & ((ranking["worst_atoms_mean"] - n_atoms).abs() <= atoms_tol)
        & (ranking["adf_rmsd"] <= (1 + adf_slack) * paper_adf)
    )
    ranking["captured"] = [float((captured or {}).get(name, np.nan)) for name in ranking.index]
    paper = paper_architecture()
    ranking["changes"] = [
        sum(value != paper[section][key] for section, keys in variants[name].items() for key, value in keys.items())
        for name in ranking.index
    ]
    pool = ranking[ranking["valid"]] if ranking["valid"].any() else ranking
    near = pool[pool["rdf_rmsd"] <= pool["rdf_rmsd"].min() + tie].assign(order=lambda d: -d["captured"].fillna(-np.inf))
    ranking["chosen"] = ranking.index == near.sort_values(["order", "changes", "rdf_rmsd"]).index[0]
    return ranking.rename_axis("variant").reset_index()
