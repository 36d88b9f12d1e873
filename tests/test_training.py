"""The deep-model trainer: official recipes, learning, exact resume, run-directory files, fine-tuning, the CLI."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import subprocess
import sys

import click
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from click.testing import CliRunner
from conftest import synthetic_corpus
from error_bounds import TRANSCENDENTAL_ULPS, U32, U64

from cli.deep_training import train_aasist, train_rawnet2
from lfcc_gmm.metrics import compute_eer
from rawnet.catalog import RAWNET2_VARIANTS, RECIPES, Recipe, official_recipe
from rawnet.data import WaveformDataset
from rawnet.rawnet2 import scoring_network
from rawnet.spec import ModelSpec, load_model_file, model_config
from rawnet.training import RunDirError, _dev_pass, make_optimizer, resolve_device, train

TINY_RAWNET2 = {"nb_samp": 8000, "first_conv": 65, "in_channels": 1, "filts": [4, [4, 4], [4, 8], [8, 8]],
                "blocks": [2, 4], "nb_fc_node": 8, "gru_node": 8, "nb_gru_layer": 1, "nb_classes": 2}
TINY_AASIST = {"architecture": "AASIST", "nb_samp": 8000, "first_conv": 33,
               "filts": [12, [1, 4], [4, 4], [4, 8], [8, 8]], "gat_dims": [8, 8], "pool_ratios": [0.5, 0.7, 0.5, 0.5],
               "temperatures": [2.0, 2.0, 100.0, 100.0]}
FAST = Recipe(epochs=2, batch_size=4, lr=1e-3, weight_decay=1e-4)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models on a shared machine: one thread avoids contention and gives steady timings.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return synthetic_corpus(root / "train", n_per_class=4), synthetic_corpus(root / "dev", n_per_class=3, seed=1)


def rawnet2(variant: str = "asvspoof2021") -> ModelSpec:
    return ModelSpec("rawnet2", variant, dict(TINY_RAWNET2))


def state_of(result) -> dict[str, torch.Tensor]:
    return result.model.state_dict()


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def dev_scores(model, trials) -> np.ndarray:
    data = WaveformDataset(trials, TINY_RAWNET2["nb_samp"])
    with torch.no_grad():
        x = torch.stack([data[i][0] for i in range(len(data))])
        return model.eval()(x)[:, 1].double().numpy()


def test_recipes_are_the_official_ones():
    # ASVspoof 2021 LA baseline main.py (Tak et al.'s release trains alike).
    for variant in ("asvspoof2021", "icassp2021"):
        r2 = official_recipe("rawnet2", variant)
        assert (r2.lr, r2.weight_decay, r2.batch_size, r2.epochs) == (1e-4, 1e-4, 32, 100)
        assert (r2.scheduler, r2.random_crop, r2.class_weights) == ("constant", False, (0.1, 0.9))
    # ASVspoof 5 Main_RawNet2_baseline.py: batch 128, pad_random windows; the same Adam and loss.
    r5 = official_recipe("rawnet2", "asvspoof5")
    assert (r5.lr, r5.weight_decay, r5.batch_size, r5.epochs) == (1e-4, 1e-4, 128, 100)
    assert (r5.scheduler, r5.random_crop, r5.class_weights, r5.drop_last) == ("constant", True, (0.1, 0.9), True)
    for variant in ("aasist", "aasist-l"):
        aasist = official_recipe("aasist", variant)
        assert (aasist.lr, aasist.weight_decay, aasist.batch_size, aasist.epochs) == (1e-4, 1e-4, 24, 100)
        assert (aasist.scheduler, aasist.lr_min, aasist.betas, aasist.random_crop) == ("cosine", 5e-6, (0.9, 0.999),
                                                                                      True)
        assert aasist.class_weights == (0.1, 0.9)
    assert set(RECIPES["rawnet2"]) == set(RAWNET2_VARIANTS)
    with pytest.raises(ValueError, match="unknown rawnet2 variant 'aasist'"):
        official_recipe("rawnet2", "aasist")
    with pytest.raises(ValueError, match="unknown architecture 'gmm'"):
        official_recipe("gmm", "asvspoof2021")


def test_asvspoof5_dev_scores_are_the_softmax_probability():
    """The dev pass ranks asvspoof5 trials by softmax(output)[:, 1], as the official code does, not by the logit:
    two trials whose bona fide logits and probabilities rank them in opposite orders show which one was used."""
    logits = torch.tensor([[0.0, 1.0], [-5.0, 0.5], [3.0, 2.0]])  # P(bona fide) 0.73, 0.996, 0.27
    labels = torch.tensor([0, 1, 0])
    weights = torch.tensor([0.1, 0.9])
    loader = [(logits, labels)]  # the identity "network" outputs its input
    for variant, expected in (("asvspoof5", torch.softmax(logits, dim=1)[:, 1]), ("icassp2021", logits[:, 1])):
        head = rawnet2(variant).score_head()
        scores, losses = _dev_pass(torch.nn.Identity(), head, loader, weights, torch.device("cpu"), False,
                                   lambda step: None)
        np.testing.assert_array_equal(scores, expected.double().numpy())
        # The loss is the weighted cross-entropy of the raw outputs whatever the score.
        np.testing.assert_array_equal(losses, F.cross_entropy(logits, labels, weight=weights,
                                                              reduction="none").double().numpy())
    # The bona fide trial ranks above both spoofs by probability and below both by its logit: EER 0 against 1.
    probability = torch.softmax(logits, dim=1)[:, 1].numpy()
    assert compute_eer(probability[[1]], probability[[0, 2]])[0] == 0
    assert compute_eer(logits[[1], 1].numpy(), logits[[0, 2], 1].numpy())[0] == 1


def test_cosine_schedule_steps_per_batch_to_lr_min():
    recipe = Recipe(epochs=2, batch_size=4, lr=1e-4, weight_decay=0.0, scheduler="cosine", lr_min=5e-6)
    model = torch.nn.Linear(2, 2)
    optimizer, scheduler = make_optimizer(model.parameters(), recipe, steps_per_epoch=3)
    seen = []
    for _ in range(6):
        seen.append(optimizer.param_groups[0]["lr"])
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        scheduler.step()
    expected = [5e-6 + 0.5 * (1e-4 - 5e-6) * (1 + math.cos(math.pi * s / 6)) for s in range(6)]
    # torch updates the rate recursively, by ratios of 1 + cos terms (the smallest 0.13 at step 5, which turns the
    # u of its cosine into 8 u): at most about 10 float64 roundings of that size per step, 6 steps.
    rounding = 6 * 10 * 8 * U64
    np.testing.assert_allclose(seen, expected, rtol=rounding)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-6, rel=rounding)
    assert make_optimizer(model.parameters(), FAST, 3)[1] is None


def test_one_loss_serves_logits_and_log_softmax_outputs():
    z = torch.tensor([[2.0, -1.0], [0.5, 0.25], [-3.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    w = torch.tensor([0.1, 0.9])
    log_p = np.log(np.exp(z.numpy()) / np.exp(z.numpy()).sum(axis=1, keepdims=True))
    picked = -log_p[[0, 1, 2], [0, 1, 1]]
    expected = (0.1 * picked[0] + 0.9 * picked[1] + 0.9 * picked[2]) / (0.1 + 0.9 + 0.9)
    # float32 against float64: each -log p within (|z| + 2 + 2 ulps of exp and log) u (log-sum-exp), applied twice
    # for the log-softmax input; the weighted mean of positive terms within gamma_8 more.
    rounding = (2 * (float(np.abs(z).max()) + 2 + 2 * TRANSCENDENTAL_ULPS) + 8) * U32 * 1.01
    assert F.cross_entropy(z, y, weight=w).item() == pytest.approx(expected, rel=rounding)
    # RawNet2 asvspoof2021 emits log-softmax: the same loss is then the weighted NLL, with the same value.
    log_softmax = F.log_softmax(z, dim=1)
    assert F.cross_entropy(log_softmax, y, weight=w).item() == pytest.approx(expected, rel=rounding)
    assert F.nll_loss(log_softmax, y, weight=w).item() == pytest.approx(expected, rel=rounding)


def test_training_learns_and_fills_the_run_directory(data, tmp_path):
    train_trials, dev_trials = data
    run = tmp_path / "run"
    rows, stages = [], []
    result = train(rawnet2(), train_trials, run, dataclasses.replace(FAST, epochs=4), dev_trials=dev_trials,
                   device="cpu", seed=0, on_epoch=rows.append, progress=lambda *a: stages.append(a))
    history = result.history
    assert [row["epoch"] for row in history] == [1, 2, 3, 4] and rows == history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert ("epoch 1/4 train", 0, 2) in stages and ("epoch 4/4 dev", 2, 2) in stages

    with open(run / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == ["epoch", "train_loss", "train_accuracy", "dev_loss", "dev_eer", "lr", "seconds"]
    assert [float(r["train_loss"]) for r in table] == [r["train_loss"] for r in history]
    assert json.loads((run / "metrics.json").read_text()) == history
    assert all(r["lr"] == 1e-3 and 0 <= r["dev_eer"] <= 1 and 0 <= r["train_accuracy"] <= 1 for r in history)

    # best.pth: the lowest dev EER, later epochs winning ties; loadable without unpickling.
    eers = [r["dev_eer"] for r in history]
    best_epoch = max(i + 1 for i, e in enumerate(eers) if e == min(eers))
    saved = torch.load(run / "best.pth", weights_only=True)
    assert set(saved) == {"format", "variant", "sinc_scale", "config", "state_dict", "epoch", "dev_eer"}
    assert (saved["format"], saved["variant"], saved["sinc_scale"]) == ("antispoof-rawnet2", "asvspoof2021", "mel")
    assert saved["config"] == TINY_RAWNET2 and saved["epoch"] == best_epoch == result.best_epoch
    assert saved["dev_eer"] == min(eers) == result.best_dev_eer
    assert not any(k.startswith("module.") for k in saved["state_dict"])
    model, info = load_model_file(run / "best.pth")
    assert info["epoch"] == best_epoch
    scores = dev_scores(model, dev_trials)
    keys = np.array([t.key for t in dev_trials])
    assert compute_eer(scores[keys == "bonafide"], scores[keys == "spoof"])[0] == pytest.approx(min(eers), abs=1e-12)

    settings = json.loads((run / "run.json").read_text())
    assert settings["recipe"]["epochs"] == 4 and settings["recipe"]["batch_size"] == 4 and settings["seed"] == 0
    assert settings["model"]["config"] == TINY_RAWNET2 and settings["options"]["device"] == "cpu"
    assert settings["train"]["trials"] == 8 and settings["dev"]["bonafide"] == 3
    checkpoint = torch.load(run / "checkpoint.pth", weights_only=True)
    assert checkpoint["epoch"] == 4 and checkpoint["history"] == history
    assert_same_state(checkpoint["model"], state_of(result))


class Jitter:
    """A picklable augmentation drawing from its seed and, carelessly, from the global generators as well: a resumed
    run must reproduce both (the latter through the checkpointed RNG states)."""

    def __call__(self, signal, seed):
        noise = np.random.default_rng(seed).standard_normal(signal.size)
        noise += np.random.standard_normal(signal.size)  # noqa: NPY002
        noise += torch.randn(signal.size, dtype=torch.float64).numpy()
        return signal + 1e-3 * noise


class Interrupt(Exception):
    pass


def stop_after(epoch: int):
    def on_epoch(row):
        if row["epoch"] == epoch:
            raise Interrupt

    return on_epoch


def test_resume_continues_exactly(data, tmp_path):
    train_trials, dev_trials = data
    # Cosine schedule, random crops and augmentation: every piece of state must come back.
    recipe = Recipe(epochs=2, batch_size=4, lr=1e-3, weight_decay=1e-4, scheduler="cosine", lr_min=1e-5)
    options = {"dev_trials": dev_trials, "device": "cpu", "seed": 7, "augment": Jitter()}
    straight = train(rawnet2(), train_trials, tmp_path / "a", recipe, **options)
    with pytest.raises(Interrupt):
        train(rawnet2(), train_trials, tmp_path / "b", recipe, on_epoch=stop_after(1), **options)
    resumed = train(rawnet2(), train_trials, tmp_path / "b", recipe, resume=True, **options)
    assert_same_state(state_of(resumed), state_of(straight))
    a = torch.load(tmp_path / "a" / "checkpoint.pth", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoint.pth", weights_only=True)
    assert a["scheduler"] == b["scheduler"]
    for state_a, state_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    drop_time = [{k: v for k, v in row.items() if k != "seconds"} for row in resumed.history]
    assert drop_time == [{k: v for k, v in row.items() if k != "seconds"} for row in straight.history]
    assert json.loads((tmp_path / "b" / "run.json").read_text())["resumed_after_epoch"] == 1


def test_run_directory_guards(data, tmp_path):
    train_trials, _ = data
    with pytest.raises(RunDirError, match="nothing to resume"):
        train(rawnet2(), train_trials, tmp_path / "new", FAST, device="cpu", resume=True)
    first = train(rawnet2(), train_trials, tmp_path / "run", dataclasses.replace(FAST, epochs=1), device="cpu")
    with pytest.raises(RunDirError, match="holds a checkpoint of an earlier run"):
        train(rawnet2(), train_trials, tmp_path / "run", FAST, device="cpu")
    with pytest.raises(RunDirError, match=r"checkpoint.pth: cannot resume with different settings \(recipe.lr\)"):
        train(rawnet2(), train_trials, tmp_path / "run", dataclasses.replace(FAST, lr=5e-4), device="cpu", resume=True)
    with pytest.raises(RunDirError, match=r"different settings \(train.fingerprint, train.spoof, train.trials\)"):
        train(rawnet2(), train_trials[:-1], tmp_path / "run", FAST, device="cpu", resume=True)
    # A constant-lr run may go on for more epochs; the first epoch is kept, the second added.
    longer = train(rawnet2(), train_trials, tmp_path / "run", FAST, device="cpu", resume=True)
    assert [r["epoch"] for r in longer.history] == [1, 2]
    assert longer.history[0] == first.history[0]
    with pytest.raises(ValueError, match=r"needs both bona fide and spoof trials; it has only \['spoof'\]"):
        train(rawnet2(), [t for t in train_trials if t.key == "spoof"], tmp_path / "x", FAST, device="cpu")
    with pytest.raises(ValueError, match="make no complete batch of 32"):
        train(rawnet2(), train_trials, tmp_path / "y", dataclasses.replace(FAST, batch_size=32), device="cpu")


def test_init_weights_loads_strictly(data, tmp_path):
    train_trials, _ = data
    source = train(rawnet2(), train_trials, tmp_path / "src", dataclasses.replace(FAST, epochs=1), device="cpu")
    frozen = dataclasses.replace(FAST, epochs=1, lr=0.0, weight_decay=0.0)
    for weights in (tmp_path / "src" / "best.pth", tmp_path / "plain.pth"):
        torch.save(source.model.state_dict(), tmp_path / "plain.pth")
        tuned = train(rawnet2(), train_trials, tmp_path / weights.stem, frozen, device="cpu", seed=99,
                      init_weights=weights)
        for name, parameter in tuned.model.named_parameters():  # lr 0: the loaded weights, untouched
            assert torch.equal(parameter, source.model.state_dict()[name]), name
    with pytest.raises(ValueError, match=r"best.pth: weights do not fit the model"):
        train(ModelSpec("rawnet2", "asvspoof2021", {**TINY_RAWNET2, "gru_node": 6}),
              train_trials, tmp_path / "bad", frozen, device="cpu", init_weights=tmp_path / "src" / "best.pth")


def test_init_weights_takes_a_bundled_name(cli, data, tmp_path):
    # AASIST-L (85k parameters) from its bundled safetensors: with lr 0 the trained parameters are the bundled
    # tensors bit for bit, and run.json names the file that was read; the command line takes the name too.
    from rawnet.weights import bundled_file, read_bundled

    spec = ModelSpec("aasist", "aasist-l", {**model_config("aasist", "aasist-l"), "nb_samp": 4000})
    frozen = dataclasses.replace(FAST, epochs=1, batch_size=2, lr=0.0, weight_decay=0.0)
    tuned = train(spec, data[0][:4], tmp_path / "run", frozen, device="cpu", init_weights="aasist-l")
    bundled, _ = read_bundled("aasist-l")
    for name, parameter in tuned.model.named_parameters():
        assert torch.equal(parameter.detach(), torch.from_numpy(bundled[name])), name
    options = json.loads((tmp_path / "run" / "run.json").read_text())["options"]
    assert options["init_weights"] == str(bundled_file("aasist-l"))
    with pytest.raises(FileNotFoundError, match="not a weights name"):
        train(spec, data[0][:4], tmp_path / "bad", frozen, device="cpu", init_weights="aasist-xl")
    result = cli("aasist", "--model", "aasist-l", "--list", write_list(tmp_path / "train.csv", data[0][:4]),
                 "-o", tmp_path / "cli", "--init-weights", "aasist-l", "--nb-samp", 4000, "--epochs", 1,
                 "--batch-size", 2, "--device", "cpu", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "run.json").read_text())["options"]["init_weights"] == options["init_weights"]


def test_amp_and_devices_fall_back_clearly(data, tmp_path):
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
        with pytest.warns(RuntimeWarning, match="AMP.*needs CUDA"):
            result = train(rawnet2("icassp2021"), data[0], tmp_path / "amp", dataclasses.replace(FAST, epochs=1),
                           device="cpu", amp=True)
        assert json.loads((tmp_path / "amp" / "run.json").read_text())["options"]["amp"] is False
        assert all(p.dtype == torch.float32 for p in result.model.parameters())
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_model_files_are_checked(tmp_path):
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="plain.pth: not an antispoof model file"):
        load_model_file(tmp_path / "plain.pth")
    torch.save({"format": "antispoof-gmm", "variant": "x", "config": {}, "state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="other.pth: format 'antispoof-gmm' is not a model file format"):
        load_model_file(tmp_path / "other.pth")


# --- AASIST --------------------------------------------------------------------------------------------------------


def test_aasist_resume_reproduces_dropout(data, tmp_path):
    # AASIST's dropout draws from torch's global generator: only the checkpointed RNG state makes this exact.
    spec = ModelSpec("aasist", "aasist", dict(TINY_AASIST))
    recipe = dataclasses.replace(official_recipe("aasist", "aasist"), epochs=2, batch_size=4)
    trials = data[0][:4]  # one batch per epoch
    straight = train(spec, trials, tmp_path / "a", recipe, device="cpu", seed=5)
    with pytest.raises(Interrupt):
        train(spec, trials, tmp_path / "b", recipe, device="cpu", seed=5, on_epoch=stop_after(1))
    resumed = train(spec, trials, tmp_path / "b", recipe, device="cpu", seed=5, resume=True)
    assert_same_state(state_of(resumed), state_of(straight))
    saved = torch.load(tmp_path / "a" / "best.pth", weights_only=True)
    assert (saved["format"], saved["variant"], saved["epoch"]) == ("antispoof-aasist", "aasist", 2)
    assert saved["dev_eer"] is None
    assert "sinc_scale" not in saved
    # Cosine per step over 2 steps in all: epoch 2 starts half-way down.
    # One recursive step of the scheduler (see test_cosine_schedule_steps_per_batch_to_lr_min): a few u.
    assert [row["lr"] for row in straight.history] == pytest.approx([1e-4, 5e-6 + (1e-4 - 5e-6) / 2], rel=16 * U64)


def test_aasist_configs(tmp_path):
    from rawnet.aasist import CONFIGS

    assert model_config("aasist", "aasist-l") == CONFIGS["AASIST-L"]
    assert model_config("aasist", "aasist") == CONFIGS["AASIST"]
    conf = tmp_path / "AASIST.conf"
    conf.write_text(json.dumps({"batch_size": 24, "model_config": TINY_AASIST}))
    assert model_config("aasist", "aasist", conf) == TINY_AASIST
    conf.write_text('{"model_config": {\n  "filts": [70,\n}')
    with pytest.raises(ValueError, match=r"AASIST.conf:3: invalid JSON"):
        model_config("aasist", "aasist", conf)
    with pytest.raises(ValueError, match="unknown AASIST model 'aasist-xl'"):
        model_config("aasist", "aasist-xl")


# --- command line --------------------------------------------------------------------------------------------------


@pytest.fixture
def cli():
    group = click.Group("train")
    group.add_command(train_rawnet2)
    group.add_command(train_aasist)
    return lambda *args: CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)


def write_list(path, trials):
    path.write_text("".join(f"{t.path},{t.key}\n" for t in trials))
    return path


def test_cli_trains_rawnet2_and_resumes(cli, data, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": {**TINY_RAWNET2, "nb_samp": 64600}}))
    train_list, dev_list = write_list(tmp_path / "train.csv", data[0]), write_list(tmp_path / "dev.csv", data[1])
    common = ["--list", train_list, "--dev-list", dev_list, "-o", tmp_path / "run", "--config", config,
              "--nb-samp", 8000, "--batch-size", 4, "--lr", "1e-3", "--device", "cpu", "--workers", 0]
    result = cli("rawnet2", *common, "--epochs", 1)
    assert result.exit_code == 0, result.output
    assert "epoch 1: train loss" in result.output and "dev loss" in result.output
    assert f"Wrote {tmp_path / 'run' / 'best.pth'} (epoch 1, lowest dev EER" in result.output
    saved = torch.load(tmp_path / "run" / "best.pth", weights_only=True)
    assert saved["config"] == TINY_RAWNET2  # --nb-samp overrides the file's 64600
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["recipe"] == {**dataclasses.asdict(official_recipe("rawnet2", "asvspoof2021")), "epochs": 1,
                             "batch_size": 4, "lr": 1e-3,
                             "betas": [0.9, 0.999], "class_weights": [0.1, 0.9]}
    resumed = cli("rawnet2", *common, "--epochs", 2, "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "epoch 2: train loss" in resumed.output and "epoch 1:" not in resumed.output
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())) == 2


def test_cli_trains_rawnet2_asvspoof5_with_its_recipe(cli, data, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_RAWNET2}))
    train_list, dev_list = write_list(tmp_path / "train.csv", data[0]), write_list(tmp_path / "dev.csv", data[1])
    result = cli("rawnet2", "--variant", "asvspoof5", "--list", train_list, "--dev-list", dev_list, "-o",
                 tmp_path / "run", "--config", config, "--epochs", 1, "--batch-size", 4, "--device", "cpu",
                 "--workers", 0)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    # The ASVspoof 5 baseline's recipe (random windows), not the 2021 baselines' (first samples).
    assert run["recipe"] == {**dataclasses.asdict(official_recipe("rawnet2", "asvspoof5")), "epochs": 1,
                             "batch_size": 4, "betas": [0.9, 0.999], "class_weights": [0.1, 0.9]}
    assert run["recipe"]["random_crop"] is True
    model, info = load_model_file(tmp_path / "run" / "best.pth")
    assert (info["variant"], info["config"]) == ("asvspoof5", TINY_RAWNET2)
    # The dev EER is that of the official score, the softmax probability of the best model.
    scores = dev_scores(scoring_network(model), data[1])
    keys = np.array([t.key for t in data[1]])
    assert np.all((scores >= 0) & (scores <= 1))
    assert compute_eer(scores[keys == "bonafide"], scores[keys == "spoof"])[0] == pytest.approx(info["dev_eer"],
                                                                                            abs=1e-12)


def test_cli_usage_errors(cli, data, tmp_path):
    train_list = write_list(tmp_path / "train.csv", data[0])
    base = ["--list", train_list, "-o", tmp_path / "run", "--device", "cpu"]
    result = cli("rawnet2", *base, "--dev-protocol", train_list)
    assert result.exit_code == 2 and "--dev-protocol needs --dev-audio-dir" in result.output
    result = cli("rawnet2", *base, "--dev-audio-dir", tmp_path)
    assert result.exit_code == 2 and "--dev-audio-dir needs --dev-protocol" in result.output
    result = cli("rawnet2", *base, "--augment", "nonsense")
    assert result.exit_code == 2 and "--augment" in result.output


@pytest.mark.parametrize(("command", "quoted"), [
    (train_rawnet2, {"epochs": "100", "batch_size": "32; asvspoof5: 128", "lr": "1e-4", "weight_decay": "1e-4",
                     "random_crop": "off; asvspoof5: on"}),
    (train_aasist, {"epochs": "100", "batch_size": "24", "lr": "1e-4", "weight_decay": "1e-4", "random_crop": "on"}),
])
def test_cli_help_quotes_the_recipe(command, quoted):
    # The help quotes the recipes (the options' defaults from rawnet.catalog, the prose by hand): keep in step.
    helps = {param.name: param.help for param in command.params}
    for name, value in quoted.items():
        assert f"[default: {value}" + ("," if name == "random_crop" else "]") in helps[name], name
    for recipe in RECIPES[command.name].values():
        assert f"lr {recipe.lr:.0e}".replace("e-0", "e-") in command.help
        assert f"batch {recipe.batch_size}" in command.help


def test_cli_module_does_not_import_torch():
    code = "import sys, cli.deep_training; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_cli_trains_aasist(cli, data, tmp_path):
    config = tmp_path / "tiny.conf"
    config.write_text(json.dumps({"model_config": TINY_AASIST}))
    result = cli("aasist", "--list", write_list(tmp_path / "train.csv", data[0]), "-o", tmp_path / "run",
                 "--config", config, "--epochs", 1, "--batch-size", 4, "--device", "cpu", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert "(epoch 1, last epoch, no dev set)" in result.output
    saved = torch.load(tmp_path / "run" / "best.pth", weights_only=True)
    assert (saved["format"], saved["variant"], saved["config"]) == ("antispoof-aasist", "aasist", TINY_AASIST)
    recipe = json.loads((tmp_path / "run" / "run.json").read_text())["recipe"]
    assert (recipe["scheduler"], recipe["lr_min"], recipe["batch_size"]) == ("cosine", 5e-6, 4)


@pytest.mark.slow
def test_cli_fine_tunes_official_aasist(cli, data, reference_dir, tmp_path):
    weights = reference_dir / "aasist" / "AASIST.pth"
    official = torch.load(weights, map_location="cpu", weights_only=True)
    result = cli("aasist", "--list", write_list(tmp_path / "train.csv", data[0][:4]), "-o", tmp_path / "ft",
                 "--init-weights", weights, "--nb-samp", 4000, "--epochs", 1, "--batch-size", 2,
                 "--device", "cpu", "--workers", 0)
    assert result.exit_code == 0, result.output
    tuned = torch.load(tmp_path / "ft" / "best.pth", weights_only=True)["state_dict"]
    assert tuned.keys() == official.keys()
    assert all(tuned[k].shape == official[k].shape for k in official)
    moved = [k for k in official if official[k].is_floating_point() and not torch.equal(official[k], tuned[k])]
    assert len(moved) > len(official) // 2, "two Adam steps move most tensors"
