"""Denoiser variants of issue 22 trained side by side on one GPU, scored by the quick signal.

Each variant is one train_model run (the project's own training, EMA weights) on the a-Si
tensors less a held-out tail of whole replicas, then: the held-out ε-loss per real atom at small σ
(SDE networks: x_t = x_0 + σ ε at t = σ/σ_max, ε̂ from the instantaneous network; the same draws
for every variant) and RDF/ADF RMSD, close_fraction and atoms per sample of ``generate`` at
n_s = 10 and 250 against the whole dataset (``evaluate.run_metrics``).

    python docs/experiments/denoiser_gpu.py --tensors results/datasets/a-si/tensors.pt --out OUT

runs every variant as its own process (the GPU is shared; each step is bound by host work) and
writes OUT/summary.csv. ``--one NAME`` runs one variant; ``--score-only`` scores a variant's
existing OUT/NAME/model.pt (e.g. trained on a GPU, scored on a CPU) without training it. A record of a measurement, not a
pipeline stage: the architecture ablation in the DAG is the published comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from mdshortcut.data.ghost import load_tensors, samples, save_tensors
from mdshortcut.evaluate import run_metrics
from mdshortcut.generative.common import graph_at, per_atom
from mdshortcut.model.graph import wrap
from mdshortcut.properties.structure import StructureConfig, adf_bins, average_rdf_adf, nearest_neighbour_distances
from mdshortcut.sample import generate, load_model
from mdshortcut.train import train_model

SIGMAS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.5, 1.0)  # Å
GAUSS = {"distance_features": "gaussian", "n_radial": 16}
NOISE = {"noise_embedding": "every_layer"}
BEST = GAUSS | NOISE | {"update_distances": True}
# name: (process, model options, process options, ghosts[, training options])
VARIANTS = {
    "sde-paper": ("sde", {}, {}, True),
    "sde-gauss": ("sde", GAUSS, {}, True),
    "sde-gauss-noise": ("sde", GAUSS | NOISE, {}, True),
    "sde-gauss-noise-upd": ("sde", BEST, {}, True),
    "sde-bessel-noise": ("sde", {"distance_features": "bessel", "n_radial": 16} | NOISE, {}, True),
    "sde-gauss-noise-s5log": ("sde", GAUSS | NOISE, {"sigma_x_max": 5.0, "t_sampling": "log"}, True),
    "sde-gauss-noise-noghost": ("sde", GAUSS | NOISE, {}, False),
    "ode-paper": ("ode", {}, {}, True),
    "ode-gauss-noise": ("ode", GAUSS | NOISE, {}, True),
    "ode-gauss-noise-ot": ("ode", GAUSS | NOISE, {"pairing": "ot"}, True),
    # second round: the options together, then more capacity, more data per step, log times for the ODE
    "sde-upd-noghost": ("sde", BEST, {}, False),
    "sde-upd-noghost-4x128": ("sde", BEST | {"n_layers": 4, "hidden": 128}, {}, False),
    "sde-upd-noghost-b128": ("sde", BEST, {}, False, {"batch_size": 128}),
    "ode-upd": ("ode", BEST, {}, True),
    "ode-upd-noghost": ("ode", BEST, {}, False),
    "ode-upd-noghost-log": ("ode", BEST, {"t_sampling": "log"}, False),
}


def subset(tensors: dict, index: range, ghosts: bool) -> dict:
    """The structures ``index`` of a tensors dict; without ghosts, as ``ghosts: false`` would
    build them: n_a = the real atoms, one count recorded as ``atoms_per_sample``."""
    ends = torch.cumsum(tensors["n_atoms"], 0)
    starts = ends - tensors["n_atoms"]
    rows = torch.cat([torch.arange(starts[k], ends[k]) for k in index])
    keep = rows if ghosts else rows[tensors["types"][rows] != 0]
    out = dict(tensors)
    out.update(
        cell=tensors["cell"][list(index)],
        positions=tensors["positions"][keep],
        types=tensors["types"][keep],
        n_atoms=(tensors["n_atoms"] if ghosts else tensors["n_real"])[list(index)],
        n_real=tensors["n_real"][list(index)],
        labels=tensors["labels"][list(index)],
    )
    if not ghosts:
        (count,) = out["n_real"].unique().tolist()
        out["atoms_per_sample"] = int(count)
    return out


def probe(lm, data: dict, device, seeds: int = 4) -> dict:
    """Mean ε-loss per real atom at each σ of SIGMAS within the model's [t_min, t_max]."""
    proc = lm.process.base if hasattr(lm.process, "base") else lm.process
    cell = data["cell"].to(device, torch.float32)
    x0 = data["positions"].to(device, torch.float32)
    real = data["types"].to(device) != 0
    e0 = torch.nn.functional.one_hot(data["types"].to(device), len(lm.elements)).float()
    n_atoms = data["n_atoms"].to(device)
    batch = torch.repeat_interleave(torch.arange(len(cell), device=device), n_atoms)
    out = {}
    with torch.inference_mode():
        for sigma in SIGMAS:
            t = sigma / proc.config.sigma_x_max
            if not proc.config.t_min <= t <= proc.config.t_max:
                continue
            losses = []
            for seed in range(seeds):
                gen = torch.Generator(device).manual_seed(1000 + seed)
                tb = torch.full((len(cell),), t, device=device)
                xt, et, eps_x, _ = proc.noised(x0, e0, tb, batch, gen)
                graph = graph_at(wrap(xt, cell, batch), cell, batch, n_atoms)
                px, _ = proc.predict(lm.denoiser, graph, et, tb, None, None, gen)
                losses.append((px - eps_x)[real].square().sum(1).mean().item())
            out[f"eps_{sigma:g}"] = sum(losses) / len(losses)
    return out


def reference(tensors: dict, cfg: StructureConfig) -> dict:
    """run_metrics' reference dict of every structure of the dataset."""
    frames = samples(tensors)
    rdf, adf = average_rdf_adf(frames, cfg)
    nearest = min(nearest_neighbour_distances(a, cfg.rdf_rmax).min() for a in frames)
    return {
        "rdf": rdf.tolist(),
        "adf": adf.tolist(),
        "theta": adf_bins(cfg.adf_bins).tolist(),
        "nn_min": float(nearest),
    }


def run_one(name: str, args) -> dict:
    process, model_opts, process_opts, ghosts, *training_opts = VARIANTS[name]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_tensors(args.tensors)
    n = len(tensors["n_atoms"])
    train, held = subset(tensors, range(n - args.held), ghosts), subset(tensors, range(n - args.held, n), ghosts)
    save_tensors(out / "train.pt", train)
    config = {
        "seed": 0,
        "device": device,
        "model": {"n_layers": 3, "hidden": 64, "vector_channels": 8} | model_opts,
        "process": process_opts,
        "training": {
            "steps": args.steps,
            "batch_size": args.batch,
            "lr": args.lr,
            "grad_clip": 10.0,
            "lr_warmup_steps": 100,
            "lr_schedule": "cosine",
            "threads": 1,
            "log_every": 100,
            "checkpoint_every": args.steps,
        }
        | (training_opts[0] if training_opts else {}),
    }
    clock = time.perf_counter()
    if not (args.score_only and (out / "model.pt").exists()):
        train_model(out / "train.pt", out / "model.pt", out / "ckpt", process, "none", config, log=out / "train.log")
    row = {"variant": name, "process": process, "train_s": time.perf_counter() - clock}
    lm = load_model(out / "model.pt", device)
    if process != "ode":
        row |= probe(lm, held, device)
        row |= {f"train_{k}": v for k, v in probe(lm, subset(tensors, range(args.held), ghosts), device).items()}
    cfg = StructureConfig()
    ref = reference(tensors, cfg)
    cells = torch.as_tensor(lm.typical_cell)[None].repeat(args.samples, 1, 1)
    for n_s in (10, 250):
        clock = time.perf_counter()
        frames = generate(lm, cells, n_s, seed=0, device=device, batch_size=args.samples)
        seconds = time.perf_counter() - clock
        m = run_metrics(frames, ref, cfg)
        row |= {f"{k}_{n_s}": m[k] for k in ("rdf_rmsd", "adf_rmsd", "close_fraction", "atoms_mean")}
        row[f"sample_s_{n_s}"] = seconds
    (out / "row.json").write_text(json.dumps(row))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tensors", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--held", type=int, default=64, help="held-out structures: the dataset's last (whole replicas)")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--one")
    p.add_argument("--score-only", action="store_true", help="score OUT/NAME/model.pt where it exists, untrained")
    args = p.parse_args()
    if args.one:
        run_one(args.one, args)
        return
    names = args.variants.split(",")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    rest = sys.argv[1:]
    procs = {}
    for name in names:
        log = open(Path(args.out) / f"{name}.out", "w")  # noqa: SIM115
        procs[name] = subprocess.Popen([sys.executable, __file__, *rest, "--one", name], stdout=log, stderr=log)
    for proc in procs.values():
        proc.wait()
    rows = [
        json.loads((Path(args.out) / n / "row.json").read_text())
        for n in names
        if (Path(args.out) / n / "row.json").exists()
    ]
    table = pd.DataFrame(rows)
    table.to_csv(Path(args.out) / "summary.csv", index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(table.round(4).to_string())


if __name__ == "__main__":
    main()
