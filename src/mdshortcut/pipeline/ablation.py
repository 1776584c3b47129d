"""The MDShortcut recipe ablation: variants trained at equal CPU time, scored on one dataset.

A variant is a set of overrides of the recipe keys (``RECIPE``) on top of the paper's recipe
(the schema defaults): ``{process: {...}, training: {...}}``; ``paper: {}`` is the paper as
printed. Every variant trains its shortcut with ``training.cpu_budget_s`` = the ablation's
budget (a warm start's baseline, trained for ``baseline_share`` of it, counts against it), so
each gets the same training CPU time however costly its steps are. Each is then sampled
through its shortcut levels at every ``n_steps`` and through its instantaneous level with
``flow_steps`` deterministic Euler steps, and scored like Table 1 (RDF/ADF RMSD,
close_fraction, atoms per sample). Training CPU seconds come from the model files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields

import numpy as np
import pandas as pd

from mdshortcut.config import RECIPE
from mdshortcut.io import read_structures, write_csv

log = logging.getLogger(__name__)

COLUMNS = [
    "variant",
    "sampler",
    "n_s",
    "rdf_rmsd",
    "adf_rmsd",
    "close_fraction",
    "atoms_mean",
    "atoms_std",
    "n_empty",
    "train_cpu_s",
    "train_steps",
]


def paper_values(keys: Mapping[str, Sequence[str]]) -> dict[str, dict]:
    """``keys`` (config section -> key names) at the schema defaults, i.e. the paper's values."""
    from mdshortcut.generative import ProcessConfig
    from mdshortcut.model import ModelConfig
    from mdshortcut.train import TrainingConfig

    defaults = {"model": ModelConfig, "process": ProcessConfig, "training": TrainingConfig}
    return {
        section: {f.name: f.default for f in fields(defaults[section]) if f.name in names}
        for section, names in keys.items()
    }


def paper_recipe() -> dict[str, dict]:
    """The recipe keys at the schema defaults (the paper's recipe)."""
    return paper_values(RECIPE)


def variant_config(config: Mapping, training: Mapping, variant: str, process: str) -> dict:
    """train_model's config of ``process`` (shortcut, or the warm start's base) in ``variant``:
    the run's model/process/training sections, the recipe reset to the paper's, the variant's
    overrides, and a CPU budget instead of a step count (``max_steps`` caps the steps).
    ``training``: the ablation dataset's training section."""
    ab = config["ablation"]
    overrides = ab["variants"][variant]  # recipe keys only (mdshortcut.config.check_config)
    recipe = paper_recipe()
    sections = {
        s: {**base, **recipe[s], **overrides.get(s, {})}
        for s, base in (("process", config["process"]), ("training", training))
    }
    budget = ab["cpu_budget_s"] * (ab["baseline_share"] if process != "shortcut" else 1.0)
    sections["training"] |= {"steps": ab["max_steps"], "cpu_budget_s": budget}
    return {"model": config["model"], "seed": config["seed"], "device": config["device"], **sections}


def score_runs(
    model_path: str | os.PathLike,
    structures: str | os.PathLike,
    reference: Mapping,
    runs: Sequence[tuple[str, int, bool]],
    n_samples: int,
    seed: int,
    cfg,
    device: str = "cpu",
) -> list[dict]:
    """One row per run (label, n_s, flow) of a trained model: the label, n_s, the Table 1 scores of
    ``COLUMNS`` and the model file's training CPU seconds and steps. ``flow``: the instantaneous
    level's deterministic Euler steps instead of the model's own sampler.

    Cells: ``n_samples`` drawn (seeded) from the training structures, the same cells and seed for
    every run, model and variant. cfg: ``StructureConfig``.
    """
    import torch

    from mdshortcut.checkpoint import read_model
    from mdshortcut.evaluate import run_metrics
    from mdshortcut.pipeline.sweep import draw_cells
    from mdshortcut.sample import generate, load_model

    meta = read_model(model_path)
    model = load_model(model_path, device)
    cells = torch.as_tensor(draw_cells(read_structures(structures), n_samples, seed), dtype=torch.float32)
    training = {"train_cpu_s": float(meta.get("cpu_seconds", np.nan)), "train_steps": int(meta["steps"])}
    rows = []
    for label, n_s, flow in runs:
        m = run_metrics(generate(model, cells, n_s, seed=seed, device=device, flow=flow), reference, cfg)
        rows.append({"label": label, "n_s": n_s, **{k: m[k] for k in COLUMNS[3:9]}, **training})
        what = (model_path, label, n_s, m["rdf_rmsd"], m["close_fraction"], m["atoms_mean"])
        log.info("%s %s n_s=%d: RDF RMSD %.4f, close %.3f, atoms %.1f", *what)
    return rows


def evaluate_variant(
    model_path: str | os.PathLike,
    structures: str | os.PathLike,
    reference: Mapping,
    variant: str,
    n_steps: Sequence[int],
    flow_steps: int,
    n_samples: int,
    seed: int,
    cfg,
    device: str = "cpu",
) -> pd.DataFrame:
    """Rows of ``COLUMNS`` for one trained variant: its shortcut at every n_s and its flow
    (``score_runs``)."""
    runs = [("shortcut", n, False) for n in n_steps] + [("flow", flow_steps, True)]
    rows = score_runs(model_path, structures, reference, runs, n_samples, seed, cfg, device)
    return pd.DataFrame([{"variant": variant, "sampler": r.pop("label"), **r} for r in rows], columns=COLUMNS)


def ablation_table(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, columns: Sequence[str] = COLUMNS
) -> pd.DataFrame:
    """The variants' rows (``columns``: this ablation's, or the architecture ablation's) in config
    order, as one CSV."""
    table = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)[list(columns)]
    write_csv(out, table)
    return table


def rank_variants(
    table: pd.DataFrame,
    variants: Mapping,
    n_atoms: float,
    few: int = 4,
    close_max: float = 0.10,
    atoms_tol: float = 2.0,
    tie: float = 0.01,
) -> pd.DataFrame:
    """The rule of docs/design.md §6 that picks the default recipe, one row per variant.

    Over the variant's shortcut rows with n_s <= ``few``: ``few_step_rdf_rmsd`` (mean RDF RMSD),
    ``max_close_fraction`` and ``worst_atoms_mean`` (the atoms-per-sample mean furthest from
    ``n_atoms``, the training structures' mean). ``valid``: every one of those rows has
    close_fraction < ``close_max`` and atoms within ``atoms_tol`` of ``n_atoms``. ``changes``:
    recipe keys the variant sets away from the paper's. ``chosen``: the valid variant (any, if
    none is valid) with the fewest changes among those within ``tie`` of the lowest
    few_step_rdf_rmsd, then the lowest.
    """
    rows = table[(table["sampler"] == "shortcut") & (table["n_s"] <= few)]
    by = rows.groupby("variant", sort=False)
    ranking = pd.DataFrame(
        {
            "few_step_rdf_rmsd": by["rdf_rmsd"].mean(),
            "max_close_fraction": by["close_fraction"].max(),
            "worst_atoms_mean": by["atoms_mean"].agg(lambda a: a.iloc[int((a - n_atoms).abs().argmax())]),
        }
    )
    ranking["valid"] = (ranking["max_close_fraction"] < close_max) & (
        (ranking["worst_atoms_mean"] - n_atoms).abs() <= atoms_tol
    )
    paper = paper_recipe()
    ranking["changes"] = [
        sum(value != paper[section][key] for section, keys in variants[name].items() for key, value in keys.items())
        for name in ranking.index
    ]
    pool = ranking[ranking["valid"]] if ranking["valid"].any() else ranking
    near = pool[pool["few_step_rdf_rmsd"] <= pool["few_step_rdf_rmsd"].min() + tie]
    ranking["chosen"] = ranking.index == near.sort_values(["changes", "few_step_rdf_rmsd"]).index[0]
    return ranking.rename_axis("variant").reset_index()


def write_ranking(
    table: pd.DataFrame,
    variants: Mapping,
    structures: str | os.PathLike,
    out: str | os.PathLike,
    rank=rank_variants,
    **options,
) -> None:
    """``rank`` (``rank_variants``, or the architecture ablation's ``rank_architectures``) against
    the mean atom count of ``structures`` (the ablation's dataset), with ``options``, as CSV."""
    n_atoms = float(np.mean([len(atoms) for atoms in read_structures(structures)]))
    write_csv(out, rank(table, variants, n_atoms, **options))
