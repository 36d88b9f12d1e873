"""RawNet2 (the three official variants), the sinc front end and the fixed-length waveform views."""

from __future__ import annotations

import json
import math
from collections import deque

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from scipy.signal import correlate

from rawnet.checkpoint import ConfigError, load_state_dict_file
from rawnet.functional import pad_or_truncate, random_crop_or_pad, sliding_windows
from rawnet.precision import order_tolerance
from rawnet.rawnet2 import ASVSPOOF2021_CONFIG, VARIANTS, RawNet2, load_config, scoring_network
from rawnet.sinc import SincConv, band_edges, sinc_filters
from rawnet.tuning import fast_paths_off

FS = 16000
# Parity with outputs the official code computed elsewhere (other kernels, another order): the accuracy the README
# promises, far above the float32 rounding of either evaluation (order_tolerance: about 1e-7 here).
PARITY_ATOL = 1e-4
#: The variants with reduced reference checkpoints in reference/rawnet2/ (asvspoof5 has its own folder).
REFERENCE_2021 = ("asvspoof2021", "icassp2021")


# --------------------------------------------------------------------------- parity with the official code


@pytest.fixture(scope="module")
def official(reference_dir):
    return json.loads((reference_dir / "rawnet2" / "official_outputs.json").read_text())


def _small_model(reference_dir, variant: str, sinc_method: str = "auto") -> RawNet2:
    config = load_config(reference_dir / "rawnet2" / f"rawnet2_{variant}_small.json")
    model = RawNet2(config, variant, sinc_method=sinc_method)
    model.load_state_dict(load_state_dict_file(reference_dir / "rawnet2" / f"rawnet2_{variant}_small.pth"), strict=True)
    return model.eval()


@pytest.mark.parametrize(
    ("variant", "sinc_method"),
    [("asvspoof2021", "direct"), ("asvspoof2021", "fft"), ("icassp2021", "direct"), ("icassp2021", "fft")],
)
def test_official_outputs(reference_dir, official, variant, sinc_method):
    model = _small_model(reference_dir, variant, sinc_method)
    cases = official["cases"][variant]
    names = sorted(cases)
    assert len(names) == 4
    batch = np.stack(
        [
            pad_or_truncate(sf.read(reference_dir / "lfcc" / "audio" / name, dtype="float64")[0], 64600)
            for name in names
        ]
    )
    with torch.no_grad():
        out = model(torch.from_numpy(batch).to(torch.float32)).numpy()
    expected = np.array([cases[name]["output"] for name in names])
    np.testing.assert_allclose(out, expected, rtol=0, atol=PARITY_ATOL)
    np.testing.assert_allclose(out[:, 1], [cases[name]["score"] for name in names], rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("variant", REFERENCE_2021)
def test_state_dict_keys_and_shapes_match_official(reference_dir, variant):
    official_state = load_state_dict_file(reference_dir / "rawnet2" / f"rawnet2_{variant}_small.pth")
    config = load_config(reference_dir / "rawnet2" / f"rawnet2_{variant}_small.json")
    ours = RawNet2(config, variant).state_dict()
    assert list(ours) == list(official_state)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in official_state.items()}


def test_strict_loading_rejects_missing_and_unexpected_keys(reference_dir):
    state = load_state_dict_file(reference_dir / "rawnet2" / "rawnet2_asvspoof2021_small.pth")
    model = RawNet2(load_config(reference_dir / "rawnet2" / "rawnet2_asvspoof2021_small.json"))
    broken = dict(state)
    broken["Sinc_conv.band_pass"] = torch.zeros(16, 129)
    del broken["block3.0.bn1.weight"]
    with pytest.raises(RuntimeError, match=r"Missing key.*block3\.0\.bn1\.weight"):
        model.load_state_dict(broken, strict=True)


def test_full_configs_parameter_counts(reference_dir):
    full = json.loads((reference_dir / "rawnet2" / "official_outputs.json").read_text())["full_param_counts"]
    for variant in REFERENCE_2021:
        assert RawNet2.default_config(variant) == full[variant]["config"]
        model = RawNet2(variant=variant)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert trainable == full[variant]["trainable_params"]
        assert len(model.state_dict()) == full[variant]["state_dict_tensors"]
    assert full["asvspoof2021"]["trainable_params"] == 17_621_410
    assert full["icassp2021"]["trainable_params"] == 25_433_602


# --------------------------------------------------------------------------- model behaviour

SMALL = {
    "nb_samp": 4000,
    "first_conv": 128,
    "in_channels": 1,
    "filts": [8, [8, 8], [8, 12], [12, 12]],
    "blocks": [2, 4],
    "nb_fc_node": 8,
    "gru_node": 8,
    "nb_gru_layer": 1,
    "nb_classes": 2,
}


def _randomize_batchnorm(model: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)


@pytest.mark.parametrize("variant", VARIANTS)
def test_pre_activation_quirk(variant):
    """The 2021 baseline's first conv reads the block input: its bn1 cannot change the output; Tak et al.'s can."""
    torch.manual_seed(0)
    model = RawNet2(SMALL, variant).eval()
    _randomize_batchnorm(model)
    x = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(x)
        for i in range(1, 6):
            getattr(model, f"block{i}")[0].bn1.weight.mul_(3.0)
        after = model(x)
    if variant == "asvspoof2021":
        torch.testing.assert_close(after, before, rtol=0, atol=0)
    else:
        assert (after - before).abs().max() > 1e-4


def test_output_kind_per_variant():
    torch.manual_seed(0)
    x = torch.randn(3, 4000)
    with torch.no_grad():
        log_probs = RawNet2(SMALL, "asvspoof2021").eval()(x)
        logits = RawNet2(SMALL, "icassp2021").eval()(x)
        asvspoof5 = RawNet2(SMALL, "asvspoof5").eval()
        logits5, probabilities = asvspoof5(x), scoring_network(asvspoof5)(x)
    assert log_probs.shape == logits.shape == logits5.shape == probabilities.shape == (3, 2)
    torch.testing.assert_close(log_probs.exp().sum(dim=1), torch.ones(3))
    assert not torch.allclose(logits.exp().sum(dim=1), torch.ones(3))
    assert not torch.allclose(logits5.exp().sum(dim=1), torch.ones(3))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(3))
    network = scoring_network(asvspoof5)
    assert network[0] is asvspoof5 and isinstance(network[1], torch.nn.Softmax) and network[1].dim == 1
    icassp = RawNet2(SMALL, "icassp2021")
    assert scoring_network(icassp) is icassp


# --------------------------------------------------------------------------- the ASVspoof 5 baseline variant

#: The official ASVspoof 5 RawNet2 (asvspoof-challenge/asvspoof5 Baseline-RawNet2/model.py hard-codes it) and its
#: 64,000-sample evaluation input (data_utils_RawNet2.pad), as reference/rawnet2/asvspoof5/README.md quotes them.
ASVSPOOF5_ARCHITECTURE = {
    "nb_samp": 64000,
    "first_conv": 1024,
    "in_channels": 1,
    "filts": [20, [20, 20], [20, 128], [128, 128]],
    "blocks": [2, 4],
    "nb_fc_node": 1024,
    "gru_node": 1024,
    "nb_gru_layer": 3,
    "nb_classes": 2,
}


@pytest.fixture(scope="module")
def asvspoof5_reference(reference_dir):
    folder = reference_dir / "rawnet2" / "asvspoof5"
    official = json.loads((folder / "official_outputs.json").read_text())
    names = sorted(official["outputs"])
    audio = np.stack([
        pad_or_truncate(sf.read(reference_dir / "lfcc" / "audio" / name, dtype="float64")[0], 64000) for name in names
    ])
    return {
        "config": {**official["config"], "nb_samp": 64000},
        "state": load_state_dict_file(folder / "rawnet2_asvspoof5_small.pth"),
        "inputs": torch.from_numpy(audio).to(torch.float32),
        "logits": np.array([official["outputs"][name]["logits"] for name in names]),
        "scores": np.array([official["outputs"][name]["score"] for name in names]),
        "n_params": official["n_params"],
    }


def _asvspoof5_model(reference, variant: str = "asvspoof5", **options) -> RawNet2:
    model = RawNet2(reference["config"], variant, **options)
    model.load_state_dict(reference["state"], strict=True)
    return model.eval()


def test_asvspoof5_default_config_is_the_official_architecture():
    assert RawNet2.default_config("asvspoof5") == ASVSPOOF5_ARCHITECTURE
    model = RawNet2(variant="asvspoof5")
    # The 2021 architecture: the same parameters (17,621,410 trainable, SPEC §5), only the wiring differs.
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 17_621_410
    assert model.sinc_conv.kernel_size == 1025
    np.testing.assert_array_equal(model.sinc_conv.filters.numpy(), RawNet2(variant="asvspoof2021").sinc_conv.filters)


@pytest.mark.parametrize("sinc_method", ["direct", "fft"])
def test_asvspoof5_official_outputs(asvspoof5_reference, sinc_method):
    reference = asvspoof5_reference
    model = _asvspoof5_model(reference, sinc_method=sinc_method)
    inputs = reference["inputs"]
    tolerance = order_tolerance(model, inputs)
    with torch.no_grad():
        logits = model(inputs).numpy()
        scores = scoring_network(model)(inputs).numpy()[:, 1]
        one_at_a_time = np.concatenate([model(row[None]).numpy() for row in inputs])
    np.testing.assert_allclose(logits, reference["logits"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(one_at_a_time, reference["logits"], rtol=0, atol=tolerance)
    np.testing.assert_allclose(scores, reference["scores"], rtol=0, atol=tolerance)
    # The clips' logits differ by ~1e-5 only (random weights): the bound must be far tighter to mean anything.
    assert tolerance < 0.01 * np.ptp(reference["logits"][:, 0])


def test_asvspoof5_blocks_read_their_pre_activation(asvspoof5_reference):
    """Reading the block input as the 2021 baseline does moves the logits far outside the float32 bound."""
    reference = asvspoof5_reference
    inputs = reference["inputs"]
    model = _asvspoof5_model(reference)
    as_2021 = _asvspoof5_model(reference, "asvspoof2021")
    with torch.no_grad():
        log_probs_2021 = as_2021(inputs).numpy()
    expected = torch.log_softmax(torch.from_numpy(reference["logits"]), dim=1).numpy()
    assert np.abs(log_probs_2021 - expected).max() > 100 * order_tolerance(model, inputs)


def test_asvspoof5_loads_the_official_state_dict_strictly(asvspoof5_reference):
    reference = asvspoof5_reference
    model = RawNet2(reference["config"], "asvspoof5")
    ours = model.state_dict()
    assert list(ours) == list(reference["state"])
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference["state"].items()}
    assert sum(p.numel() for p in model.parameters()) == reference["n_params"]
    missing = {k: v for k, v in reference["state"].items() if k != "block3.0.bn1.running_var"}
    with pytest.raises(RuntimeError, match=r"Missing key.*block3\.0\.bn1\.running_var"):
        model.load_state_dict(missing, strict=True)
    with pytest.raises(RuntimeError, match=r"Unexpected key.*Sinc_conv\.band_pass"):
        model.load_state_dict({**reference["state"], "Sinc_conv.band_pass": torch.zeros(20, 1025)}, strict=True)


def test_asvspoof5_training_step(asvspoof5_reference):
    """Training mode: logits for the weighted cross-entropy, gradients reach every bn1, a step lowers the loss."""
    reference = asvspoof5_reference
    torch.manual_seed(0)
    model = _asvspoof5_model(reference).train()
    inputs, labels = reference["inputs"], torch.tensor([1, 0, 0, 1])
    weights = torch.tensor([0.1, 0.9])
    out = model(inputs)
    assert out.shape == (4, 2)
    loss = F.cross_entropy(out, labels, weight=weights)
    loss.backward()
    for i in range(1, 6):
        grad = getattr(model, f"block{i}")[0].bn1.weight.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().max() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    optimizer.step()
    with torch.no_grad():
        assert F.cross_entropy(model(inputs), labels, weight=weights) < loss


@pytest.mark.parametrize("variant", REFERENCE_2021)
def test_official_outputs_one_clip_at_a_time(reference_dir, official, variant):
    # Batch 1 takes the embedding-bag recurrence (rawnet.gru), larger batches a matrix product.
    model = _small_model(reference_dir, variant)
    for name, case in official["cases"][variant].items():
        audio = pad_or_truncate(sf.read(reference_dir / "lfcc" / "audio" / name, dtype="float64")[0], 64600)
        with torch.inference_mode():
            out = model(torch.from_numpy(audio).to(torch.float32)[None]).numpy()
        np.testing.assert_allclose(out[0], case["output"], rtol=0, atol=PARITY_ATOL)


@pytest.mark.parametrize("batch", [1, 2])
def test_recurrent_threads_leave_outputs_and_thread_setting_unchanged(batch):
    torch.manual_seed(0)
    models = [RawNet2(SMALL, recurrent_threads=threads).eval() for threads in ("auto", 1, None)]
    for model in models[1:]:
        model.load_state_dict(models[0].state_dict())
    x = torch.randn(batch, 4000)
    threads = torch.get_num_threads()
    with torch.no_grad():
        outputs = [model(x) for model in models for _ in range(3)]
    # Batches of several clips run the recurrent product as a matrix product on the chosen threads: another order.
    tolerance = order_tolerance(models[2], x)
    for output in outputs[1:]:
        torch.testing.assert_close(output, outputs[0], rtol=0, atol=tolerance)
    assert torch.get_num_threads() == threads


@pytest.mark.parametrize("variant", VARIANTS)
def test_channels_last_blocks_compute_the_module_blocks(variant):
    """The measured channels-last path (bn2 folded into conv1, (1, 3) conv2d) against the modules themselves."""
    torch.manual_seed(0)
    model = RawNet2(SMALL, variant).eval()
    _randomize_batchnorm(model)
    for module in model.modules():  # BN gains and shifts away from 1 and 0, so a wrong fold shows
        if isinstance(module, torch.nn.BatchNorm1d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    x = 0.1 * torch.randn(3, 4000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = model._front_end(x)
        plain, fast = model._blocks_plain(features), model._blocks_channels_last(features)
    tolerance = order_tolerance(model, features, call=lambda m, f: m._blocks_plain(f))
    assert fast.shape == plain.shape
    torch.testing.assert_close(fast, plain, rtol=0, atol=tolerance)
    assert plain.abs().max() > 1000 * tolerance  # the outputs are not all near zero


@pytest.mark.parametrize(("variant", "chunk_elements"), [("asvspoof2021", 1), ("icassp2021", 1 << 20)])
def test_chunked_front_end_computes_the_module_front_end(variant, chunk_elements, monkeypatch):
    """Stretch by stretch in place (one FFT block per stretch, or many) against the module order of operations."""
    monkeypatch.setattr("rawnet.rawnet2.FRONT_END_CHUNK_ELEMENTS", chunk_elements)
    torch.manual_seed(0)
    model = RawNet2({**SMALL, "first_conv": 64}, variant).eval()
    _randomize_batchnorm(model)
    model.first_bn.weight.data.uniform_(0.5, 1.5)
    model.first_bn.bias.data.uniform_(-0.2, 0.2)
    x = 0.1 * torch.randn(2, 4001, generator=torch.Generator().manual_seed(2))  # 4001 - 65 + 1 = 3937: not 3 n
    with torch.no_grad():
        plain, chunked = model._front_end_batch(x), model._front_end_chunked(x)
    assert chunked.shape == plain.shape == (2, 8, 1312)
    tolerance = order_tolerance(model, x, call=lambda m, v: m._front_end_batch(v))
    torch.testing.assert_close(chunked, plain, rtol=0, atol=tolerance)


def _prefer_gru_path(model: RawNet2, x: torch.Tensor, path: str) -> None:
    """Time every GRU candidate on inputs like ``x``, then make ``path`` ("nn.GRU" or "split") the fastest."""
    choice = model._choice
    with torch.no_grad():
        for _ in range(4):  # the warm-up takes the four candidates in turn
            model(x)
    for timings in choice.samples.values():
        for candidate in timings:
            seconds = 0.0 if candidate in ((path, n) for n in range(1, 1024)) else 1.0
            timings[candidate] = deque([seconds] * choice.rounds, maxlen=choice.window)


def test_inference_and_autograd_paths_agree_and_follow_new_weights():
    torch.manual_seed(0)
    model = RawNet2(SMALL).eval()
    x = torch.randn(1, 4000)
    _prefer_gru_path(model, x, "split")
    with torch.no_grad():
        first = model(x)  # packs the GRU weights for inference
    other = RawNet2(SMALL).eval()
    model.load_state_dict(other.state_dict())  # copies in place: same storage, new values
    with torch.no_grad():
        inference = model(x)
    autograd = model(x)  # autograd on: nn.GRU itself
    torch.testing.assert_close(inference, autograd.detach(), rtol=0, atol=order_tolerance(model, x))
    assert not torch.allclose(first, inference)


@pytest.mark.parametrize("batch", [1, 3])
def test_every_gru_candidate_is_timed_and_the_fastest_runs(batch, monkeypatch):
    torch.manual_seed(0)
    model = RawNet2(SMALL).eval()
    x = torch.randn(batch, 4000)
    threads = torch.get_num_threads()
    with torch.no_grad():
        reference = model(x)  # the first untimed candidate: plain nn.GRU on torch's count
        outputs = [model(x) for _ in range(4)]
    expected = {("nn.GRU", threads), ("split", threads), ("nn.GRU", 1), ("split", 1), "ncw", "nwc", "batch", "chunked"}
    assert {candidate for timings in model._choice.samples.values() for candidate in timings} == expected
    assert torch.get_num_threads() == threads
    for output in outputs:
        torch.testing.assert_close(output, reference, rtol=0, atol=1e-6)

    def fail(*args, **kwargs):
        raise AssertionError("a slower candidate ran")

    _prefer_gru_path(model, x, "nn.GRU")
    monkeypatch.setattr("rawnet.rawnet2.gru_last_output", fail)
    with torch.no_grad():
        for _ in range(3):
            model(x)
    monkeypatch.undo()
    _prefer_gru_path(model, x, "split")
    monkeypatch.setattr(model.gru, "forward", fail)
    with torch.no_grad():
        for _ in range(3):
            model(x)


def test_deterministic_algorithms_take_the_plain_path(monkeypatch):
    torch.manual_seed(0)
    model = RawNet2(SMALL).eval()
    x = torch.randn(1, 4000)
    monkeypatch.setattr("rawnet.rawnet2.gru_last_output", lambda *a, **k: pytest.fail("custom recurrence ran"))
    monkeypatch.setattr("rawnet.sinc.fft_correlate", lambda *a, **k: pytest.fail("FFT convolution ran"))
    with torch.no_grad(), fast_paths_off():
        first = model(x)
        assert all(torch.equal(model(x), first) for _ in range(5))
    assert not model._choice.samples and not model.sinc_conv._choice.samples


def test_model_built_under_inference_mode():
    """Its weights are inference tensors without version counters: the packed GRU copy is rebuilt every call."""
    torch.manual_seed(0)
    reference = RawNet2(SMALL).eval()
    x = torch.randn(1, 4000)
    with torch.inference_mode():
        model = RawNet2(SMALL).eval()
        model.load_state_dict(reference.state_dict())
        _prefer_gru_path(model, x, "split")
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)
        # Inference tensors can only change inside inference mode, in place: the next forward follows.
        model.gru.weight_hh_l0.mul_(2)
        with torch.no_grad():
            reference.gru.weight_hh_l0.mul_(2)
        torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)


def test_bad_arguments():
    for threads in (0, 1.5, "fast"):
        with pytest.raises(ValueError, match="recurrent_threads"):
            RawNet2(SMALL, recurrent_threads=threads)
    with pytest.raises(ValueError, match="variant"):
        RawNet2(SMALL, "rawnet3")
    with pytest.raises(ValueError, match="only has the 'mel' scale"):
        RawNet2(SMALL, "asvspoof2021", sinc_scale="linear")
    with pytest.raises(ValueError, match=r"\(batch, samples\)"):
        RawNet2(SMALL)(torch.zeros(1, 1, 4000))
    with pytest.raises(ValueError, match="fewer than the kernel size 129"):
        RawNet2(SMALL)(torch.zeros(1, 100))


def test_icassp_scales_build_different_filters():
    banks = [RawNet2(SMALL, "icassp2021", sinc_scale=s).sinc_conv.filters for s in ("mel", "inverse-mel", "linear")]
    assert not torch.equal(banks[0], banks[1])
    assert not torch.equal(banks[0], banks[2])


# --------------------------------------------------------------------------- config files


OFFICIAL_YAML = """\
optimizer: Adam
amsgrad: 1   #for adam optim

#model-related
model:
  nb_samp: 64600
  first_conv: 1024   # no. of filter coefficients
  in_channels: 1
  filts: [20, [20, 20], [20, 128], [128, 128]] # no. of filters channel in residual blocks
  blocks: [2, 4]
  nb_fc_node: 1024
  gru_node: 1024
  nb_gru_layer: 3
  nb_classes: 2
"""


def test_load_config_official_yaml_json_and_dict(tmp_path):
    yaml_path = tmp_path / "model_config_RawNet.yaml"
    yaml_path.write_text(OFFICIAL_YAML)
    assert load_config(yaml_path) == ASVSPOOF2021_CONFIG
    json_path = tmp_path / "config.json"
    json_path.write_text(json.dumps(ASVSPOOF2021_CONFIG))
    assert load_config(json_path) == ASVSPOOF2021_CONFIG
    source = RawNet2.default_config("icassp2021")
    loaded = load_config(source)
    assert loaded == source
    loaded["filts"][1][0] = 7
    assert source["filts"][1][0] == 128, "load_config must copy, not alias, the caller's dict"


def test_load_config_errors_name_file_and_problem(tmp_path):
    bad_value = tmp_path / "bad.yaml"
    bad_value.write_text(OFFICIAL_YAML.replace("gru_node: 1024", "gru_node: many"))
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'gru_node' must be a positive integer, got 'many'"):
        load_config(bad_value)
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({k: v for k, v in ASVSPOOF2021_CONFIG.items() if k != "nb_classes"}))
    with pytest.raises(ConfigError, match=r"missing\.json: missing required key\(s\) nb_classes"):
        load_config(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  nb_samp: 64600\n  filts: [20, [20\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+: invalid YAML"):
        load_config(broken)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{\n "nb_samp": 64600,\n}')
    with pytest.raises(ConfigError, match=r"broken\.json:3: invalid JSON"):
        load_config(broken_json)
    with pytest.raises(ConfigError, match=r"config\.toml: unknown config format"):
        load_config(tmp_path / "config.toml")
    unchained = dict(ASVSPOOF2021_CONFIG, filts=[20, [20, 20], [64, 128], [128, 128]])
    with pytest.raises(ConfigError, match="do not chain"):
        load_config(unchained)


def test_load_state_dict_file_strips_dataparallel_prefix_and_refuses_non_state_dicts(tmp_path):
    model = RawNet2(SMALL)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, wrapped)
    restored = RawNet2(SMALL)
    restored.load_state_dict(load_state_dict_file(wrapped), strict=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value, rtol=0, atol=0)
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(ValueError, match=r"list\.pth: expected a state_dict"):
        load_state_dict_file(not_a_state_dict)
    pickled = tmp_path / "object.pth"
    torch.save({"config": ConfigError("arbitrary object")}, pickled)
    # One reader for every torch file (rawnet.checkpoint.read_torch_file), one message naming the file.
    with pytest.raises(ValueError, match=r"object\.pth: not a torch weights file \(cannot load as a weights-only"):
        load_state_dict_file(pickled)


# --------------------------------------------------------------------------- sinc front end


def test_band_edges_closed_forms():
    mel_top = 2595 * math.log10(1 + 8000 / 700)
    assert mel_top == pytest.approx(2840.0230, abs=1e-4)
    # Two mel bands: the middle edge is 700 (sqrt(1 + 8000/700) - 1) Hz.
    np.testing.assert_allclose(band_edges(2), [0.0, 700 * (math.sqrt(87 / 7) - 1), 8000.0], rtol=1e-12, atol=1e-9)
    # Tak et al.: the first N+1 of N+3 points; one mel band ends a third of the way up the mel axis.
    cube_root = 700 * ((87 / 7) ** (1 / 3) - 1)
    np.testing.assert_allclose(band_edges(1, layout="icassp2021"), [0.0, cube_root], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(band_edges(2, layout="icassp2021", scale="linear"), [0.0, 2000.0, 4000.0])
    np.testing.assert_allclose(
        band_edges(1, layout="icassp2021", scale="inverse-mel"), [cube_root - 1, 1.0], rtol=1e-12, atol=1e-9
    )
    edges = band_edges(20, 16000)
    assert edges.shape == (21,) and edges[0] == 0.0 and edges[-1] == pytest.approx(8000.0, rel=1e-12)
    assert np.all(np.diff(edges) > 0) and np.all(np.diff(edges, 2) > 0)  # mel spacing widens with frequency
    assert band_edges(70, layout="icassp2021").shape == (71,)
    with pytest.raises(ValueError, match="unknown sinc layout"):
        band_edges(20, layout="aasist")


def test_sinc_filters_are_symmetric_float32_values():
    filters = sinc_filters(band_edges(20), 1025)
    assert filters.shape == (20, 1025) and filters.dtype == np.float64
    np.testing.assert_array_equal(filters, filters[:, ::-1])
    np.testing.assert_array_equal(filters.astype(np.float32).astype(np.float64), filters)


def test_sinc_filters_pass_their_band_and_stop_elsewhere():
    kernel = 1025
    edges = band_edges(20)
    n_fft = 1 << 16
    response = np.abs(np.fft.rfft(sinc_filters(edges, kernel), n_fft))
    freqs = np.arange(n_fft // 2 + 1) * FS / n_fft
    peaks = freqs[response.argmax(axis=1)]
    assert np.all((peaks >= edges[:-1]) & (peaks <= edges[1:]))
    centres = np.searchsorted(freqs, (edges[:-1] + edges[1:]) / 2)
    np.testing.assert_allclose(response[np.arange(20), centres], 1.0, atol=0.01)
    # Beyond the Hamming main-lobe width (4 fs / K) from the band, the response is in the side lobes.
    transition = 4 * FS / kernel
    for i in range(20):
        far = (freqs < edges[i] - transition) | (freqs > edges[i + 1] + transition)
        assert response[i, far].max() < 0.01


def test_sinc_conv_module_conventions():
    conv = SincConv(20, 1024)
    assert conv.kernel_size == 1025 and conv.filters.shape == (20, 1, 1025)
    assert conv.state_dict() == {} and not list(conv.parameters())
    assert conv.resolved_method == "fft" and SincConv(70, 128).resolved_method == "direct"
    np.testing.assert_array_equal(conv.filters[:, 0].numpy(), sinc_filters(band_edges(20), 1025).astype(np.float32))
    with pytest.raises(ValueError, match="method"):
        SincConv(20, 129, method="winograd")


@pytest.mark.parametrize(
    ("n_filters", "kernel", "lengths"),
    [(20, 1025, (1025, 3000, 64600)), (70, 129, (129, 1000, 20000))],
)
def test_sinc_conv_fft_equals_direct_equals_float64(n_filters, kernel, lengths):
    direct = SincConv(n_filters, kernel, method="direct")
    fft = SincConv(n_filters, kernel, method="fft")
    filters = direct.filters[:, 0].double().numpy()
    rng = np.random.default_rng(0)
    for length in lengths:
        x = rng.standard_normal((2, 1, length)).astype(np.float32)
        reference = np.stack([[correlate(row[0].astype(np.float64), f, mode="valid") for f in filters] for row in x])
        with torch.no_grad():
            outputs = [m(torch.from_numpy(x)).double().numpy() for m in (direct, fft)]
        tolerance = 1e-5 * np.abs(reference).max()
        for out in outputs:
            assert out.shape == (2, n_filters, length - kernel + 1)
            np.testing.assert_allclose(out, reference, rtol=0, atol=tolerance)


def test_sinc_conv_fft_gradient_and_export_with_another_batch_size():
    direct = SincConv(20, 1025, method="direct")
    fft = SincConv(20, 1025, method="fft")
    x = torch.randn(2, 1, 5000, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fft(x)  # the filter spectra are first built under inference_mode
    weights = torch.randn(2, 20, 5000 - 1025 + 1, generator=torch.Generator().manual_seed(1))
    grads = []
    for module in (direct, fft):
        leaf = x.clone().requires_grad_(True)
        (module(leaf) * weights).sum().backward()
        grads.append(leaf.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=0, atol=1e-5 * grads[0].abs().max().item())
    # Exported, the FFT layer is the direct convolution (complex FFT tensors do not export) with a free batch size.
    program = torch.export.export(SincConv(20, 1025, method="fft").eval(), (x,),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    ops = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("conv1d" in op or "convolution" in op for op in ops) and not any("fft" in op for op in ops)
    x3 = torch.randn(3, 1, 5000, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x3), direct(x3), rtol=0, atol=0)


# --------------------------------------------------------------------------- fixed-length views


def test_pad_or_truncate():
    signal = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(pad_or_truncate(signal, 7), [1, 2, 3, 1, 2, 3, 1])
    np.testing.assert_array_equal(pad_or_truncate(signal, 2), [1, 2])
    np.testing.assert_array_equal(pad_or_truncate(signal, 3), signal)
    assert pad_or_truncate(signal.astype(np.float32), 5).dtype == np.float32
    out = pad_or_truncate(signal, 3)
    out[0] = 9
    assert signal[0] == 1, "the result must not alias the input"
    with pytest.raises(ValueError, match="empty"):
        pad_or_truncate(np.zeros(0), 4)
    with pytest.raises(ValueError, match="1-D"):
        pad_or_truncate(np.zeros((2, 3)), 4)


def test_random_crop_or_pad():
    signal = np.arange(10.0)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        crop = random_crop_or_pad(signal, 4, rng)
        np.testing.assert_array_equal(crop, np.arange(crop[0], crop[0] + 4))
        starts.add(int(crop[0]))
    assert starts == set(range(7))
    np.testing.assert_array_equal(random_crop_or_pad(np.array([5.0, 6.0]), 5, rng), [5, 6, 5, 6, 5])


def test_sliding_windows():
    signal = np.arange(10)
    np.testing.assert_array_equal(sliding_windows(signal, 4, 3), [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    np.testing.assert_array_equal(
        sliding_windows(signal, 4, 4), [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    )  # the last window is aligned to the end
    np.testing.assert_array_equal(sliding_windows(np.arange(3), 5, 2), [[0, 1, 2, 0, 1]])
    np.testing.assert_array_equal(sliding_windows(np.arange(4), 4, 2), [[0, 1, 2, 3]])
    long = np.random.default_rng(1).standard_normal(64600 * 3 + 123)
    windows = sliding_windows(long, 64600, 32300)
    assert windows.shape == (6, 64600)
    np.testing.assert_array_equal(windows[-1], long[-64600:])
    with pytest.raises(ValueError, match="hop"):
        sliding_windows(signal, 4, 0)
