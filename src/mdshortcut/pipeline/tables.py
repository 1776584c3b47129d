"""The paper's tables (long-form CSV + Markdown laid out like the paper) and the report's targets.

Table 1 (a-Si, structural accuracy): model, n_s, rdf_rmsd, adf_rmsd (RMSD of the averaged RDF
g(r), dimensionless, and of the ADF, per degree), seconds_per_10k (generation time per 10,000
samples, s); its Markdown shows the ADF RMSD × 10³, as the README does. Table 2 (a-SiO2
inverse design): property, model, n_s, mae, rmse (units of the property: GPa, Si atoms per
ring, g/cm³), mape_percent, n_samples, n_failed.
The figures are in ``mdshortcut.pipeline.figures``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mdshortcut.config import ConfigError
from mdshortcut.generative import PROCESSES
from mdshortcut.io import atomic_path, write_csv
from mdshortcut.pipeline.sweep import SamplingConfig, model_names, sampling_runs
from mdshortcut.properties.catalogue import PROPERTIES

STRUCTURE_DATASET = "a-si"  # Table 1, figures 2 and 5
INVERSE_DATASET = "a-sio2"  # Table 2, figures 3, 4 and 6

PROCESS_NAMES = {name: process.title for name, process in PROCESSES.items()}  # the paper's names
TABLE1_COLUMNS = ["model", "n_s", "rdf_rmsd", "adf_rmsd", "close_fraction", "atoms_mean", "seconds_per_10k"]
TABLE2_COLUMNS = ["property", "model", "n_s", "mae", "rmse", "mape_percent", "n_samples", "n_failed"]
TABLE2_MODELS = [f"{p}-{c}" for p in PROCESSES for c in ("all", "target")]
# Display names of Table 1 and Table 2 columns, as in the paper
MODEL_NAMES = PROCESS_NAMES | {
    f"{p}-{c}": f"{PROCESS_NAMES[p]} ({c.title()})" for p in PROCESSES for c in ("all", "target")
}


def fig3_stems(dataset_cfg: Mapping) -> list[str]:
    """Runs of figure 3, '{run}/ns{n_s}': MDShortcut (All) for each target property at the
    largest configured n_s ≤ 100 (the smallest when none is); none without that model."""
    if "shortcut-all" not in model_names(dataset_cfg):
        return []
    cfg = SamplingConfig.from_config(dataset_cfg.get("sampling", {}))
    n_s = max((n for n in cfg.n_steps if n <= 100), default=min(cfg.n_steps))
    return [f"shortcut-all/{prop}/ns{n_s}" for prop in cfg.targets]


def report_files(config: Mapping) -> list[str]:
    """The tables and figures a validated config can make, as paths under the results folder."""
    datasets = config["datasets"]
    files = []

    def runs(name: str, inverse: bool) -> bool:
        ds = datasets.get(name)
        return ds is not None and bool(ds.get("sampling", {}).get("targets")) == inverse and bool(sampling_runs(ds))

    if runs(STRUCTURE_DATASET, inverse=False):
        files += ["tables/table1.csv", "tables/table1.md", "figures/fig2.png", "figures/fig5.png"]
    if runs(INVERSE_DATASET, inverse=True):
        files += ["tables/table2.csv", "tables/table2.md", "figures/fig4.png", "figures/fig6.png"]
        if fig3_stems(datasets[INVERSE_DATASET]):
            files.append("figures/fig3.png")
    if claim_tables(files):
        files += ["tables/claims.csv", "tables/claims.md"]
    return files


def claim_tables(files: Iterable[str]) -> dict[str, str]:
    """The tables among ``files`` that the claim checks (``mdshortcut.pipeline.claims``) read:
    'table1' / 'table2' -> path under the results folder."""
    return {f"table{k}": f"tables/table{k}.csv" for k in (1, 2) if f"tables/table{k}.csv" in files}


def reference_files(config: Mapping) -> list[str]:
    """``report_files``, the evaluation summaries behind the tables, and the recipe ablation's,
    the architecture ablation's and the denoising probe's tables (paths under the results
    folder): what a published reference run keeps."""
    files = report_files(config)
    if "tables/table1.csv" in files:
        files.append(f"evaluation/{STRUCTURE_DATASET}/structure.csv")
    if "tables/table2.csv" in files:
        files.append(f"evaluation/{INVERSE_DATASET}/inverse.csv")
    return files + ablation_files(config) + architecture_files(config) + denoising_files(config)


def ablation_files(config: Mapping) -> list[str]:
    """The recipe ablation's table, figure and ranking of the variants (paths under the results
    folder), if configured."""
    files = ["tables/ablation.csv", "figures/ablation.png", "tables/ablation_ranking.csv"]
    return files if "ablation" in config else []


def architecture_files(config: Mapping) -> list[str]:
    """The architecture ablation's table, figure and ranking (paths under the results folder), if
    configured; not part of ``all`` (``snakemake architecture``)."""
    files = ["tables/architecture.csv", "figures/architecture.png", "tables/architecture_ranking.csv"]
    return files if "architecture" in config else []


DENOISING_TABLE = "tables/denoising.csv"  # the denoising probe's (pipeline.denoising)


def probe_models(config: Mapping) -> dict[str, list[str]]:
    """Dataset -> names ('{process}-{conditioning}') of the ε-prediction models the probe scores
    under a validated config: the sde models, and the shortcut ones when process.shortcut_base
    is sde, of ``denoising.datasets`` (default: every dataset that has one). ConfigError for a
    listed dataset that is not configured or has none."""
    eps = ("sde", "shortcut") if config["process"]["shortcut_base"] == "sde" else ("sde",)
    listed = config.get("denoising", {}).get("datasets")
    probed = {}
    for name in listed or config["datasets"]:
        if name not in config["datasets"]:
            raise ConfigError(f"denoising.datasets: '{name}' is not a dataset (datasets: {sorted(config['datasets'])})")
        models = config["datasets"][name].get("models", {})
        probed[name] = [f"{p}-{c}" for p in eps for c in models.get(p, [])]
        if listed and not probed[name]:
            raise ConfigError(f"denoising.datasets: '{name}' has no ε-prediction model ({' or '.join(eps)})")
    return {name: models for name, models in probed.items() if models}


def denoising_files(config: Mapping) -> list[str]:
    """The denoising probe's table (path under the results folder), if the config has a model to
    probe (``probe_models``); not part of ``all``."""
    return [DENOISING_TABLE] if probe_models(config) else []


def process_of(model: str) -> str:
    """'sde-all' -> 'sde'."""
    return model.split("-", 1)[0]


def table2_model(model: str, prop: str) -> str:
    """Table 2's column of a model targeting ``prop``: '{process}-all' or '{process}-target'."""
    process, conditioning = model.split("-", 1)
    if conditioning == "all":
        return model
    if conditioning == prop:
        return f"{process}-target"
    raise ValueError(f"model {model} cannot target {prop}: it is conditioned on {conditioning}")


def _ordered(frame: pd.DataFrame, column: str, order: Sequence[str]) -> pd.DataFrame:
    rank = {name: i for i, name in enumerate(order)}
    return frame.assign(_rank=frame[column].map(rank)).sort_values(["_rank", "n_s"]).drop(columns="_rank")


def table1(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 1 in long form from the structural summary (one row per model and n_s)."""
    t = summary.assign(model=summary["model"].map(process_of))
    if t.duplicated(["model", "n_s"]).any():
        raise ValueError("table 1 needs one a-Si model per process (several conditionings found)")
    return _ordered(t, "model", PROCESSES)[TABLE1_COLUMNS].reset_index(drop=True)


def table2(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 2 in long form from the inverse-design summary (one row per property, model, n_s)."""
    t = summary.assign(model=[table2_model(m, p) for m, p in zip(summary["model"], summary["property"])])
    props = [p for p in PROPERTIES if p in set(t["property"])]
    parts = [_ordered(t[t["property"] == p], "model", TABLE2_MODELS) for p in props]
    return pd.concat(parts)[TABLE2_COLUMNS].reset_index(drop=True)


def format_duration(seconds: float) -> str:
    """'42.0s', '1.76m' or '3.38h' as in Table 1."""
    if not np.isfinite(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.2f}m"
    return f"{seconds / 3600:.2f}h"


def _best(values: Sequence[float]) -> list[bool]:
    """Which of ``values`` equal the lowest finite one."""
    v = np.asarray(values, dtype=float)
    if np.isnan(v).all():
        return [False] * len(v)
    return [bool(b) for b in v == np.nanmin(v)]


def _cell(text: str, bold: bool) -> str:
    return f"**{text}**" if bold else text


def _grid(frame: pd.DataFrame, models: Sequence[str], metrics: Sequence[str], fmt: Sequence[str], extra) -> list[str]:
    """Markdown rows n_s × models; each cell the metrics joined by ' / ', best per metric bold."""
    header = ["n_s", *[m for m in models]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for n_s, group in frame.groupby("n_s", sort=True):
        by_model = group.set_index("model")
        present = [m for m in models if m in by_model.index]
        best = {k: dict(zip(present, _best([by_model.at[m, k] for m in present]))) for k in metrics}
        cells = [str(n_s)]
        for m in models:
            if m not in by_model.index:
                cells.append("–")
                continue
            row = by_model.loc[m]
            parts = [
                _cell(f.format(row[k]) if np.isfinite(row[k]) else "n/a", best[k][m]) for k, f in zip(metrics, fmt)
            ]
            cells.append(" / ".join(parts) + extra(row))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table1_markdown(t1: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Table 1 laid out like the paper (rows n_s, columns models), with a note on the samples
    without atoms that the structural summary counted (``n_empty``)."""
    models = [p for p in PROCESSES if p in set(t1["model"])]
    t = t1.assign(model=t1["model"].map(MODEL_NAMES), adf_rmsd=t1["adf_rmsd"] * 1e3)
    lines = [
        "# Table 1: RMSD and generation time on a-Si",
        "",
        *_grid(
            t,
            [MODEL_NAMES[m] for m in models],
            ["rdf_rmsd", "adf_rmsd"],
            ["{:.3f}", "{:.2f}"],
            lambda row: f" ({format_duration(row['seconds_per_10k'])})",
        ),
        "",
        "Cell: RDF RMSD / ADF RMSD × 10³ (generation time per 10,000 samples). RMSD (Eq. 18) of the RDF g(r) "
        "(dimensionless) and of the ADF (per degree) of the generated samples, averaged over structures, "
        "against the training set's. **Bold**: lowest per metric and n_s.",
        "",
    ]
    empty = summary[summary["n_empty"] > 0]
    if len(empty):
        runs = ", ".join(
            f"{MODEL_NAMES[process_of(r.model)]} n_s = {r.n_s}: {r.n_empty}/{r.n_samples}" for r in empty.itertuples()
        )
        lines += [f"Generated samples without any atom (all ghosts), left out of the averages: {runs}.", ""]
    return "\n".join(lines)


def table2_markdown(t2: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Table 2 laid out like the paper (one block per property) plus the charge balance."""
    lines = ["# Table 2: inverse design on a-SiO2", ""]
    for prop in dict.fromkeys(t2["property"]):
        t = t2[t2["property"] == prop]
        models = [m for m in TABLE2_MODELS if m in set(t["model"])]

        def failed(row) -> str:
            return f" ({row['n_failed']}/{row['n_samples']} failed)" if row["n_failed"] else ""

        lines += [f"## {PROPERTIES[prop].title}", ""]
        t = t.assign(model=t["model"].map(MODEL_NAMES))
        models = [MODEL_NAMES[m] for m in models]
        lines += _grid(t, models, ["mae", "rmse", "mape_percent"], ["{:.2f}", "{:.2f}", "{:.1f}%"], failed)
        lines.append("")
    lines += [
        "Cell: MAE / RMSE / MAPE% (Eq. 19–21) between target and measured property, over the samples whose "
        "property could be measured; samples whose relaxation failed are counted as '(k/n failed)'. "
        "**Bold**: lowest per metric and n_s.",
        "",
        "## Charge balance",
        "",
        "Fraction of generated structures with Si:O exactly 1:2 (the models place atoms freely; the paper "
        "names this as a limitation).",
        "",
    ]
    cb = summary.assign(model=[table2_model(m, p) for m, p in zip(summary["model"], summary["property"])])
    for prop in dict.fromkeys(t2["property"]):
        t = cb[cb["property"] == prop]
        models = [m for m in TABLE2_MODELS if m in set(t["model"])]
        lines += [f"{PROPERTIES[prop].title.split(' [')[0]} targets:", ""]
        header = ["n_s", *[MODEL_NAMES[m] for m in models]]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for n_s, group in t.groupby("n_s", sort=True):
            by_model = group.set_index("model")["charge_balanced_fraction"]
            cells = [f"{100 * by_model[m]:.0f}%" if m in by_model.index else "–" for m in models]
            lines.append("| " + " | ".join([str(n_s), *cells]) + " |")
        lines.append("")
    return "\n".join(lines)


def _write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_table(
    number: int, summary_csv: str | os.PathLike, out_csv: str | os.PathLike, out_md: str | os.PathLike
) -> int:
    """Table 1 (a-Si structural summary) or 2 (a-SiO2 inverse-design summary) as CSV and
    Markdown; returns its row count."""
    build, render = {1: (table1, table1_markdown), 2: (table2, table2_markdown)}[number]
    summary = pd.read_csv(summary_csv)
    table = build(summary)
    write_csv(out_csv, table)
    _write_text(out_md, render(table, summary))
    return len(table)
