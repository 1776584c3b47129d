"""Training: data batches, the real training loop on tiny networks, resume after SIGKILL,
non-finite losses, and the Snakemake rule."""

from __future__ import annotations

import copy
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms

from mdshortcut.checkpoint import read_model, read_state
from mdshortcut.data.dataset import DatasetError, StructureDataset, conditioning_properties
from mdshortcut.data.ghost import build_tensors, load_tensors, save_tensors
from mdshortcut.generative import MaterialSDE, ProcessConfig
from mdshortcut.model import Denoiser, ModelConfig
from mdshortcut.sample import load_model
from mdshortcut.train import TrainingError, batch_indices, ema_update_fn, train_model

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
LABELS = ["shear_modulus", "ring_size"]

TINY = {
    "seed": 3,
    "device": "cpu",
    "model": {"n_layers": 2, "hidden": 16, "vector_channels": 2, "property_dim": 4, "cutoff": 4.0},
    "process": {"shortcut_levels": 3, "shortcut_fraction": 0.5},
    "training": {"steps": 6, "batch_size": 3, "checkpoint_every": 3, "log_every": 2, "threads": 1, "lr": 1e-3},
}


def tiny(**training) -> dict:
    cfg = copy.deepcopy(TINY)
    cfg["training"].update(training)
    return cfg


@pytest.fixture(autouse=True)
def restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def silica_like(n_struct: int = 7, seed: int = 0) -> tuple[list[Atoms], np.ndarray]:
    """Random Si/O structures in 6-7 Å cells, labels with a missing value in each column."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_struct):
        a = rng.uniform(6.0, 7.0)
        n_si = int(rng.integers(3, 6))
        frames.append(
            Atoms("Si" * n_si + "O" * 2 * n_si, scaled_positions=rng.random((3 * n_si, 3)), cell=[a, a, a], pbc=True)
        )
    labels = np.column_stack([rng.uniform(10, 50, n_struct), rng.uniform(4, 6, n_struct)])
    labels[1, 0] = np.nan
    labels[2, 1] = np.nan
    return frames, labels


@pytest.fixture(scope="module")
def tensors_file(tmp_path_factory) -> Path:
    frames, labels = silica_like()
    path = tmp_path_factory.mktemp("data") / "tensors.pt"
    save_tensors(path, build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0))
    return path


def test_conditioning_sets():
    assert conditioning_properties("none", LABELS) == []
    assert conditioning_properties("all", LABELS) == LABELS
    assert conditioning_properties("ring_size", LABELS) == ["ring_size"]
    with pytest.raises(
        DatasetError, match=r"'density': not a label of the dataset \(labels: \['shear_modulus', 'ring_size'\]\)"
    ):
        conditioning_properties("density", LABELS)


def test_dataset_batches_structures_with_normalised_labels():
    frames, labels = silica_like()
    tensors = build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0)
    ds = StructureDataset(tensors, ["ring_size", "shear_modulus"])
    batch = ds.collate([ds[i] for i in (2, 0, 1)])
    n_a = [math.floor(0.1 * f.cell.volume) for f in frames]
    assert batch.graph.n_atoms.tolist() == [n_a[2], n_a[0], n_a[1]]
    assert batch.graph.positions.dtype == torch.float32 and batch.embeddings.shape == (sum(batch.graph.n_atoms), 3)
    # one-hot classes: X (ghost), Si, O; real atoms first, then ghosts
    counts = batch.embeddings[: n_a[2]].sum(0).tolist()
    n_si = frames[2].get_chemical_symbols().count("Si")
    assert counts == [n_a[2] - 3 * n_si, n_si, 2 * n_si]
    finite = labels[~np.isnan(labels[:, 1]), 1]
    expect = (labels[[2, 0, 1], 1] - finite.mean()) / finite.std()
    got = batch.properties["ring_size"].double().numpy()
    assert np.isnan(got[0]) and np.allclose(got[1:], expect[1:], atol=1e-6)
    assert np.isnan(batch.properties["shear_modulus"][2].item())
    assert ds.stats["shear_modulus"]["max"] == pytest.approx(np.nanmax(labels[:, 0]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.pop("labels"), r"missing key\(s\) \['labels'\]"),
        (lambda t: t.update(types=t["types"][:-1]), r"types \(\d+,\) do not match sum\(n_atoms\)"),
        (lambda t: t["positions"].__setitem__((0, 0), float("nan")), "non-finite positions"),
        (lambda t: t["labels"][:, 1].fill_(float("nan")), "property 'ring_size' has no labelled structure"),
    ],
    ids=["missing key", "short types", "nan position", "unlabelled property"],
)
def test_dataset_rejects_bad_tensors(change, message):
    frames, labels = silica_like()
    tensors = build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0)
    change(tensors)
    with pytest.raises(DatasetError, match=r"^my\.pt: .*" + message):
        StructureDataset(tensors, LABELS, source="my.pt")


def test_batches_cover_each_epoch_once():
    seen = [batch_indices(7, 3, step, seed=1) for step in range(4)]
    assert sorted(seen[0] + seen[1]) == sorted(set(seen[0] + seen[1])) and all(len(s) == 3 for s in seen)
    assert seen[2] != seen[0] or seen[3] != seen[1]  # a new permutation each epoch
    assert batch_indices(7, 3, 2, seed=1) == seen[2]


def test_ema_warms_up_and_forgets_the_initial_weights():
    """AveragedModel with our update: a parameter moved from 0 to 1 after the first update must
    follow the closed form 1 - prod_{n=1}^{N-1} d_n, d_n = min(decay, (1+n)/(10+n)); the plain
    fixed-decay EMA would still hold 0.999^999 = 37% of the initial weights after 1000 updates."""
    from torch.optim.swa_utils import AveragedModel

    layer = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(layer.weight)
    ema = AveragedModel(layer, multi_avg_fn=ema_update_fn(0.999))
    ema.update_parameters(layer)  # copies the initial weights
    with torch.no_grad():
        layer.weight.fill_(1.0)
    n_updates = 1000
    for _ in range(n_updates - 1):
        ema.update_parameters(layer)
    n = np.arange(1, n_updates)
    kept = np.prod(np.minimum(0.999, (1 + n) / (10 + n)))
    assert ema.module.weight.item() == pytest.approx(1 - kept, abs=1e-6)
    assert kept < 1e-6 < 0.999 ** (n_updates - 1) - 0.3


@pytest.mark.parametrize("process", ["ode", "sde", "shortcut"])
def test_training_writes_ema_model_and_log(process, tensors_file, tmp_path):
    out, log = tmp_path / "model.pt", tmp_path / "train.log"
    train_model(tensors_file, out, tmp_path / "ckpt", process, "all", tiny(), log=log)
    meta = read_model(out)
    assert meta["process"] == process and meta["dataset"] == "a-sio2" and meta["steps"] == 6
    assert meta["elements"] == ["X", "Si", "O"] and meta["properties"] == LABELS
    assert meta["label_stats"]["ring_size"]["min"] >= 4 and meta["model_config"]["hidden"] == 16
    assert meta["process_config"]["shortcut_levels"] == 3
    state = read_state(tmp_path / "ckpt" / "state.pt")
    assert state["step"] == 6
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(ema[k], v) for k, v in meta["state_dict"].items())
    assert any(not torch.equal(state["model"][k], v) for k, v in meta["state_dict"].items())  # EMA != raw weights
    text = log.read_text()
    assert [int(s) for s in re.findall(r"step=(\d+) loss=", text)] == [2, 4, 6]
    if process == "shortcut":
        assert "sc_x=" in text


@pytest.mark.parametrize("process", ["sde", "shortcut"])
def test_the_loop_reads_no_device_value_between_log_lines(process, tensors_file, tmp_path, monkeypatch):
    """Reading a tensor's value on the host (item, float, int, bool, tolist, numpy) waits for the
    device; train.py may do so only when it logs or checkpoints (``batch_indices`` reads the
    permutation it drew on the host). Counted on the CPU, where the same calls are made: 4 or 12
    steps with one log line and checkpoint at the end read alike."""
    import mdshortcut.train as train

    reads = []

    def counted(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_filename == train.__file__ and caller.co_name != "batch_indices":  # host-made indices
                reads.append(name)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, read)

    for name in ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__"):
        counted(name)
    counts = []
    for steps in (4, 12):
        reads.clear()
        cfg = tiny(steps=steps, log_every=steps, checkpoint_every=steps)
        train_model(tensors_file, tmp_path / f"{steps}.pt", tmp_path / f"ckpt{steps}", process, "all", cfg)
        counts.append(len(reads))
    assert counts[0] == counts[1] and counts[0] > 0  # the end's log line does read


def test_training_reduces_the_loss(tmp_path):
    """One structure, 150 steps: on the same 30 noise draws, the trained (EMA) network's SDE
    loss is well below that of its initial weights."""
    frames, labels = silica_like()
    path = tmp_path / "one.pt"
    save_tensors(path, build_tensors(frames[:1], ["Si", "O"], 0.1, LABELS, labels[:1], "a-sio2", seed=0))
    cfg = tiny(steps=150, lr=5e-3, ema_decay=0.9, checkpoint_every=150)
    train_model(path, tmp_path / "m.pt", tmp_path / "c", "sde", "none", cfg)
    trained = load_model(tmp_path / "m.pt").denoiser
    torch.manual_seed(cfg["seed"])  # the initial weights, as training drew them
    initial = Denoiser(ModelConfig.from_dict(cfg["model"]), 3, [], 0)
    data = StructureDataset(load_tensors(path))
    batch = data.collate([data[0]])
    sde = MaterialSDE(ProcessConfig.from_dict(cfg["process"]))

    def mean_loss(model) -> float:
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            return sum(sde.loss(model, batch, gen)[0].item() for _ in range(30)) / 30

    before, after = mean_loss(initial), mean_loss(trained)
    assert after < 0.8 * before, (before, after)


def test_resume_after_sigkill_gives_the_same_weights(tensors_file, tmp_path):
    config = tiny(steps=60, checkpoint_every=5, log_every=5)
    reference = tmp_path / "reference.pt"
    train_model(tensors_file, reference, tmp_path / "ref_ckpt", "shortcut", "all", config)

    out, ckpt = tmp_path / "resumed.pt", tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        from mdshortcut.train import train_model
        train_model({str(tensors_file)!r}, {str(out)!r}, {str(ckpt)!r}, "shortcut", "all", {config!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    state = ckpt / "state.pt"
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.is_file() and read_state(state)["step"] >= 10:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    killed_at = read_state(state)["step"]
    assert 10 <= killed_at < 60 and not out.exists()

    train_model(tensors_file, out, ckpt, "shortcut", "all", config, log=tmp_path / "resume.log")
    assert f"resuming from {state} at step {killed_at}" in (tmp_path / "resume.log").read_text()
    a, b = read_model(reference)["state_dict"], read_model(out)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = read_state(tmp_path / "ref_ckpt" / "state.pt"), read_state(state)
    assert all(torch.equal(ra["model"][k], rb["model"][k]) for k in ra["model"])


def test_changed_settings_start_afresh(tensors_file, tmp_path):
    train_model(tensors_file, tmp_path / "a.pt", tmp_path / "c", "sde", "none", tiny(steps=3))
    log = tmp_path / "log"
    train_model(tensors_file, tmp_path / "b.pt", tmp_path / "c", "sde", "none", tiny(steps=3, lr=2e-3), log=log)
    assert "(other settings, data or code); starting step 0" in log.read_text()


def test_an_identical_rebuild_of_the_tensors_resumes_and_changed_data_restarts(tensors_file, tmp_path):
    """Tensors rebuilt from the same structures are other bytes (torch.save records the temporary
    file's name) but the same data: training resumes. One changed label starts afresh."""
    frames, labels = silica_like()
    rebuilt = tmp_path / "rebuilt.pt"
    save_tensors(rebuilt, build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0))
    assert rebuilt.read_bytes() != tensors_file.read_bytes()
    train_model(tensors_file, tmp_path / "a.pt", tmp_path / "c", "sde", "none", tiny(steps=3))
    train_model(rebuilt, tmp_path / "b.pt", tmp_path / "c", "sde", "none", tiny(steps=6), log=tmp_path / "same")
    assert f"resuming from {tmp_path / 'c' / 'state.pt'} at step 3 of 6" in (tmp_path / "same").read_text()

    labels[0, 0] += 1.0
    changed = tmp_path / "changed.pt"
    save_tensors(changed, build_tensors(frames, ["Si", "O"], 0.1, LABELS, labels, "a-sio2", seed=0))
    train_model(changed, tmp_path / "b.pt", tmp_path / "c", "sde", "none", tiny(steps=6), log=tmp_path / "other")
    assert "(other settings, data or code); starting step 0 of 6" in (tmp_path / "other").read_text()


def test_the_training_log_survives_a_resume(tensors_file, tmp_path):
    """Snakemake clears a rule's log when it reruns the rule: the loss curve of every run is
    kept in the checkpoint folder, and the rule's log names it."""
    from mdshortcut.train import LOG_NAME

    ckpt, log = tmp_path / "c", tmp_path / "rule.log"
    train_model(tensors_file, tmp_path / "a.pt", ckpt, "sde", "none", tiny(steps=4), log=log)
    log.unlink()  # as Snakemake does before the rerun
    train_model(tensors_file, tmp_path / "a.pt", ckpt, "sde", "none", tiny(steps=8), log=log)
    history = (ckpt / LOG_NAME).read_text()
    assert [int(s) for s in re.findall(r"step=(\d+) loss=", history)] == [2, 4, 6, 8]
    assert "starting step 0 of 4" in history and "at step 4 of 8" in history
    assert [int(s) for s in re.findall(r"step=(\d+) loss=", log.read_text())] == [6, 8]
    assert f"(the log across resumes: {ckpt / LOG_NAME})" in log.read_text()


def test_spike_watch_flags_a_term_above_its_running_mean():
    """The spike seen in a 300-step test training: sc_e from about 0.06 to 4,973, the loss to 998."""
    from mdshortcut.train import SpikeWatch

    watch = SpikeWatch(10.0)
    for step in range(30):
        assert watch({"loss": 1.0 + 0.1 * (step % 3), "sc_x": 0.5, "sc_e": 0.06}) == []
    assert watch({"loss": 998.0, "sc_x": 0.6, "sc_e": 4973.0}) == [
        f"loss=998 ({998 / 1.1:.3g}x its running mean 1.1)",
        f"sc_e=4973 ({4973 / 0.06:.3g}x its running mean 0.06)",
    ]
    assert SpikeWatch(10.0)({"loss": 1e9}) == []  # no running mean yet


def test_training_logs_loss_spikes_with_step_and_term(tensors_file, tmp_path):
    """With spike_factor 1, every value above its running mean is a spike: each logged one is
    checked against the loss curve's own terms."""
    log = tmp_path / "log"
    train_model(
        tensors_file, tmp_path / "a.pt", tmp_path / "c", "shortcut", "all", tiny(steps=30, spike_factor=1.0), log=log
    )
    text = log.read_text()
    terms = set(re.findall(r"(\w+)=", re.search(r"^step=2 (.+) lr=", text, re.M).group(1)))
    assert {"loss", "sc_e"} <= terms, text
    spikes = re.findall(r"# spike at step=(\d+): (.+)", text)
    assert spikes, text
    for step, line in spikes:
        assert 10 < int(step) <= 30
        found = re.findall(r"(\w+)=(\S+) \((\S+)x its running mean (\S+)\)", line)
        assert found and line.count("running mean") == len(found), line
        for name, value, ratio, mean in found:
            assert name in terms and float(value) > 0.995 * float(mean) and float(ratio) >= 1, (
                line
            )  # mean, ratio: 3 digits


def test_changed_training_code_starts_afresh(tensors_file, tmp_path, monkeypatch):
    """A rule re-run because the training code changed must not resume the old code's weights."""
    import mdshortcut.train as train

    train_model(tensors_file, tmp_path / "a.pt", tmp_path / "c", "sde", "none", tiny(steps=3))
    log = tmp_path / "same"
    train_model(tensors_file, tmp_path / "a.pt", tmp_path / "c", "sde", "none", tiny(steps=3), log=log)
    assert "resuming from" in log.read_text()
    sources = train.training_sources()
    edited = tmp_path / "denoiser.py"
    edited.write_text(sources[-1].read_text() + "\n# edited\n")
    monkeypatch.setattr(train, "training_sources", lambda: [*sources[:-1], edited])
    log = tmp_path / "edited"
    train_model(tensors_file, tmp_path / "a.pt", tmp_path / "c", "sde", "none", tiny(steps=3), log=log)
    assert "(other settings, data or code); starting step 0" in log.read_text()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tensors_file, tmp_path):
    out, ckpt = tmp_path / "m.pt", tmp_path / "ckpt"
    with pytest.raises(
        TrainingError, match=r"^step (\d+): the (loss|gradient norm) is (nan|inf|-inf); training stopped"
    ) as err:
        train_model(
            tensors_file, out, ckpt, "sde", "all", tiny(steps=50, lr=1e30, checkpoint_every=1), log=tmp_path / "log"
        )
    step = int(err.value.args[0].split(":")[0].split()[1])
    state = read_state(ckpt / "state.pt")
    assert state["step"] == step and f"(step {step})" in str(err.value)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert not out.exists()
    assert f"ERROR step {step}" in (tmp_path / "log").read_text()


def _snakemake(workdir: Path, config: Path, target: str, *args: str) -> subprocess.CompletedProcess:
    """Snakemake on ``target`` (options taking several values come after it)."""
    return subprocess.run(
        [
            SNAKEMAKE,
            target,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(config),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_train_rule(tensors_file, tmp_path):
    """The rule trains from a dataset's tensors, logs, keeps checkpoints outside its outputs and
    resumes when re-run with more steps, keeping the log of both runs; it asks for a GPU only
    when training will use one."""
    from mdshortcut.train import LOG_NAME

    cfg = yaml.safe_load((REPO / "config/test.yaml").read_text())
    cfg.update({k: TINY[k] for k in ("model", "process", "training", "device")})
    results = cfg["results_dir"]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    data = tmp_path / f"{results}/datasets/a-sio2/tensors.pt"
    data.parent.mkdir(parents=True)
    data.write_bytes(tensors_file.read_bytes())
    target = f"{results}/models/a-sio2/shortcut-all.pt"
    res = _snakemake(tmp_path, config, target, "--cores", "1", "--allowed-rules", "train")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "gpu=0" in res.stdout + res.stderr
    assert read_model(tmp_path / target)["steps"] == 6
    log = (tmp_path / f"{results}/logs/train/a-sio2/shortcut-all.log").read_text()
    assert "step=6 loss=" in log and "starting step 0 of 6" in log
    assert (tmp_path / f"{results}/checkpoints/a-sio2/shortcut-all/state.pt").is_file()

    cfg["training"]["steps"] = 8
    config.write_text(yaml.safe_dump(cfg))
    res = _snakemake(tmp_path, config, target, "--cores", "1", "--allowed-rules", "train")
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_model(tmp_path / target)["steps"] == 8
    assert "at step 6 of 8" in (tmp_path / f"{results}/logs/train/a-sio2/shortcut-all.log").read_text()
    history = (tmp_path / f"{results}/checkpoints/a-sio2/shortcut-all" / LOG_NAME).read_text()  # survives the rerun
    assert [int(s) for s in re.findall(r"step=(\d+) loss=", history)] == [2, 4, 6, 8]

    cfg["device"] = "cuda"
    config.write_text(yaml.safe_dump(cfg))
    res = _snakemake(tmp_path, config, target, "-n", "--forcerun", "train", "--allowed-rules", "train")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "gpu=1" in res.stdout, res.stdout[-2000:]
