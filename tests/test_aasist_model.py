"""AASIST / AASIST-L: official weights, official outputs, loading, shapes, and train- versus eval-mode behaviour."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
import soundfile as sf
import torch

import rawnet.aasist as aasist
from rawnet.aasist import AASIST, CONFIGS, ConfigError, frequency_mask
from rawnet.functional import pad_or_truncate
from rawnet.precision import order_tolerance
from rawnet.tuning import fast_paths_off

WEIGHTS = {"AASIST": "AASIST.pth", "AASIST-L": "AASIST-L.pth"}
CLIPS = ("LA_T_1272637.flac", "espeak_en.wav", "chirp_noise.wav", "short_1377.wav")
# Parity with outputs the official code computed elsewhere (other kernels, another order): the accuracy the README
# promises, far above the float32 rounding of either evaluation (order_tolerance: about 1e-6 here).
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def official(reference_dir):
    return json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())


@pytest.fixture(scope="module")
def clips(reference_dir) -> torch.Tensor:
    """The reference clips as the official evaluation feeds them: float64 read, tiled or cut to 64,600, float32."""
    audio = reference_dir / "lfcc" / "audio"
    signals = [pad_or_truncate(sf.read(audio / name, dtype="float64")[0], 64600) for name in CLIPS]
    return torch.from_numpy(np.stack(signals)).float()


@pytest.fixture(scope="module", params=sorted(WEIGHTS))
def pretrained(request, reference_dir):
    name = request.param
    return name, AASIST.from_pretrained(reference_dir / "aasist" / WEIGHTS[name])


@pytest.fixture
def small_model() -> AASIST:
    torch.manual_seed(0)
    return AASIST(CONFIGS["AASIST-L"])


@pytest.fixture(scope="module")
def small_model_tolerance() -> dict[str, float]:
    """order_tolerance of the small model's logits and encodings, measured once on one 2,400-sample input (the
    float64 copy of AASIST runs slowly on the CPU)."""
    torch.manual_seed(0)
    model = AASIST(CONFIGS["AASIST-L"]).eval()
    x = 0.1 * torch.randn(1, 2400, generator=torch.Generator().manual_seed(9))
    return {"logits": order_tolerance(model, x), "encode": order_tolerance(model, x, lambda m, v: m.encode(v))}


@pytest.mark.slow  # four 4 s clips through each model: a few seconds
def test_official_logits_all_clips(pretrained, clips, official):
    name, model = pretrained
    with torch.inference_mode():
        logits = model(clips)
    expected = torch.tensor([official[WEIGHTS[name]][clip]["logits"] for clip in CLIPS])
    torch.testing.assert_close(logits, expected, rtol=0, atol=TOLERANCE)
    scores = torch.tensor([official[WEIGHTS[name]][clip]["score"] for clip in CLIPS])
    torch.testing.assert_close(logits[:, 1], scores, rtol=0, atol=TOLERANCE)


@pytest.mark.slow
def test_official_order_path_matches_official_logits(pretrained, clips, official):
    # With autograd on, the model runs the official order of operations (the path training uses).
    name, model = pretrained
    logits = model(clips[:1]).detach()
    expected = torch.tensor([official[WEIGHTS[name]][CLIPS[0]]["logits"]])
    torch.testing.assert_close(logits, expected, rtol=0, atol=TOLERANCE)


def test_builtin_configs_equal_reference_json(reference_dir, pretrained):
    name, model = pretrained
    reference = json.loads((reference_dir / "aasist" / f"{name}.json").read_text())
    assert CONFIGS[name] == reference
    assert model.config == reference  # picked from the parameter shapes of the weight file


@pytest.mark.parametrize(("name", "count"), [("AASIST", 297_866), ("AASIST-L", 85_306)])
def test_parameter_counts(name, count):
    model = AASIST(CONFIGS[name])
    assert sum(p.numel() for p in model.parameters()) == count
    assert not any(key.startswith("conv_time") for key in model.state_dict())  # fixed sinc filters: not saved


def test_strict_loading(tmp_path, small_model):
    state = small_model.state_dict()
    good = tmp_path / "good.pth"
    torch.save(state, good)
    rng = torch.random.get_rng_state()
    loaded = AASIST.from_pretrained(good)
    assert torch.equal(torch.random.get_rng_state(), rng)  # picking the config draws no random numbers
    assert loaded.config == CONFIGS["AASIST-L"] and not loaded.training
    for key, value in state.items():
        assert torch.equal(loaded.state_dict()[key], value)

    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "encoder.3.0.bn1.running_var"}, missing)
    with pytest.raises(ValueError, match=r"(?s)missing\.pth.*encoder\.3\.0\.bn1\.running_var"):
        AASIST.from_pretrained(missing, "AASIST-L")
    unexpected = tmp_path / "unexpected.pth"
    torch.save({**state, "conv_time.band_pass": torch.zeros(70, 129)}, unexpected)
    with pytest.raises(ValueError, match=r"(?s)unexpected\.pth.*conv_time\.band_pass"):
        AASIST.from_pretrained(unexpected, "AASIST-L")
    with pytest.raises(ValueError, match=r"(?s)good\.pth.*size mismatch"):
        AASIST.from_pretrained(good, "AASIST")
    with pytest.raises(ValueError, match=r"missing\.pth.*none of the built-in configs"):
        AASIST.from_pretrained(missing)
    with pytest.raises(ConfigError, match="unknown AASIST config"):
        AASIST.from_pretrained(good, "AASIST-XL")


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=r"tensor\.pth.*expected a state_dict"):
        AASIST.from_pretrained(path)


def test_bad_config():
    with pytest.raises(ConfigError, match="missing required key.*gat_dims"):
        AASIST({k: v for k, v in CONFIGS["AASIST"].items() if k != "gat_dims"})
    with pytest.raises(ConfigError, match="'filts'"):
        AASIST({**CONFIGS["AASIST"], "filts": [70, [1, 32], [16, 32], [32, 64], [64, 64]]})


def test_batch_shape_and_items_independent(small_model, small_model_tolerance):
    model = small_model.eval()
    x = 0.1 * torch.randn(3, 2400, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        batch = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 2)
    # Rows of a batch may be summed in another order than alone: the float32 rounding of another order.
    torch.testing.assert_close(batch, single, rtol=0, atol=small_model_tolerance["logits"])


@pytest.mark.parametrize(
    ("length", "chunk_elements"), [(2315, aasist.INFERENCE_CHUNK_ELEMENTS), (2315, 50_000), (7001, 200_000)]
)
def test_inference_path_equals_official_order(small_model, small_model_tolerance, monkeypatch, length, chunk_elements):
    # Odd lengths leave remainders at every pooling stage; small chunks cut the time axis into many segments.
    monkeypatch.setattr(aasist, "INFERENCE_CHUNK_ELEMENTS", chunk_elements)
    model = small_model.eval()
    x = 0.1 * torch.randn(1, length, generator=torch.Generator().manual_seed(length))
    reference = model.encode(x).detach()  # autograd on: the official order of operations
    with torch.inference_mode():
        fast = model._infer_encoder(x)  # encode() may take either path, as timed
    # The same function summed in another order (segments of the time axis, fused steps).
    torch.testing.assert_close(fast, reference, rtol=0, atol=small_model_tolerance["encode"])


@pytest.mark.parametrize("shape", [(2, 70, 3000), (1, 70, 3001), (1, 20, 302), (3, 71, 300)])
def test_abs_max_pool_is_the_official_pooling(shape):
    y = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    # A maximum does not round: equal bit for bit, for channel and step counts that are not multiples of 3 too.
    assert torch.equal(aasist.abs_max_pool(y), torch.nn.functional.max_pool2d(y.abs().unsqueeze(1), (3, 3)))


@pytest.mark.parametrize(("kernel", "pad_freq"), [((2, 3), 1), ((1, 3), 0), ((2, 3), 0)])
def test_one_channel_convolution_channels_last(kernel, pad_freq):
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 23, 400, generator=generator)
    weight = torch.randn(32, 1, *kernel, generator=generator).contiguous(memory_format=torch.channels_last)
    bias = torch.randn(32, generator=generator)
    out = aasist.conv2d_channels_last(x, weight, bias, pad_freq=pad_freq)
    exact = torch.nn.functional.conv2d(x.double(), weight.double(), bias.double(), padding=(pad_freq, 0))
    assert out.shape == exact.shape and out.is_contiguous(memory_format=torch.channels_last)
    # A sum of kh * kw products and the bias in float32, any order: Higham's gamma(n + 1) times the sum of |terms|.
    taps = kernel[0] * kernel[1]
    u = 2.0**-24
    magnitude = torch.nn.functional.conv2d(x.double().abs(), weight.double().abs(), bias.double().abs(),
                                           padding=(pad_freq, 0))
    bound = (taps + 1) * u / (1 - (taps + 1) * u) * magnitude
    assert ((out.double() - exact).abs() <= bound).all()


def test_input_checks(small_model):
    with pytest.raises(ValueError, match="at least|>= 2315"):
        small_model(torch.zeros(1, 2314))
    with pytest.raises(ValueError, match=r"\(batch, >= 2315 samples\)"):
        small_model(torch.zeros(2400))


def test_embed_feeds_out_layer(small_model, small_model_tolerance):
    model = small_model.eval()
    x = 0.1 * torch.randn(3, 2400, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        hidden = model.embed(x)
        assert hidden.shape == (3, 5 * CONFIGS["AASIST-L"]["gat_dims"][1])
        # forward() is out_layer(embed(x)) in eval mode, but each call may take another measured CPU path
        # (rawnet.tuning): the same function, perhaps summed in another order.
        torch.testing.assert_close(model.out_layer(hidden), model(x), rtol=0, atol=small_model_tolerance["logits"])
    with torch.no_grad(), fast_paths_off():
        # With the measured paths off, the same computation: the same bits.
        assert torch.equal(model.out_layer(model.embed(x)), model(x))


def test_dropout_and_batch_statistics_only_in_training(small_model):
    x = 0.1 * torch.randn(2, 2400, generator=torch.Generator().manual_seed(2))
    model = small_model.eval()
    running = model.first_bn.running_mean.clone()
    with torch.no_grad():
        # Equal to float rounding only: successive calls may take different measured paths (rawnet.tuning).
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=order_tolerance(model, x))
        assert torch.equal(model.first_bn.running_mean, running)
        model.train()
        torch.manual_seed(5)
        first = model(x)
        torch.manual_seed(5)
        again = model(x)
        torch.manual_seed(6)
        other = model(x)
    assert not torch.equal(model.first_bn.running_mean, running)  # training updates the running statistics
    assert torch.equal(first, again)  # the same masks and batch: the same computation, the same bits
    assert (first - other).abs().max() > 1e-3  # different dropout masks


def test_frequency_mask_distribution():
    generator = torch.Generator().manual_seed(0)
    widths = []
    for _ in range(2000):
        mask = frequency_mask(70, generator)[:, 0]
        zeros = torch.nonzero(mask == 0).flatten()
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        if zeros.numel():
            assert zeros[-1] - zeros[0] + 1 == zeros.numel()  # one contiguous run
        widths.append(zeros.numel())
    # Official: width = int(uniform(0, 20)), i.e. 0 … 19 equally likely.
    assert sorted(set(widths)) == list(range(20))
    assert abs(np.mean(widths) - 9.5) < 0.5
    assert frequency_mask(5, generator).shape == (5, 1)


def test_frequency_mask_only_in_training(small_model):
    x = 0.1 * torch.randn(1, 2400, generator=torch.Generator().manual_seed(3))
    plain = small_model.eval()._front_end(x)
    small_model.freq_aug = True
    torch.testing.assert_close(small_model._front_end(x), plain, rtol=0, atol=0)  # eval: no mask
    small_model.train()
    seed = next(s for s in range(100) if torch.manual_seed(s) and frequency_mask(70)[:, 0].min() == 0)
    torch.manual_seed(seed)
    mask = frequency_mask(70)
    torch.manual_seed(seed)
    masked = small_model._front_end(x)
    sinc = small_model.conv_time(x.unsqueeze(1))
    expected = torch.nn.functional.max_pool2d(torch.abs(sinc * mask).unsqueeze(1), (3, 3))
    torch.testing.assert_close(masked, expected, rtol=0, atol=0)
    assert not torch.equal(masked, plain)


def test_cpu_inference_times_every_candidate_and_runs_the_fastest(small_model, monkeypatch):
    model = small_model.eval()
    x = 0.1 * torch.randn(2, 2400, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    tolerance = order_tolerance(model, x)
    with torch.inference_mode():
        reference = model(x)
        outputs = [model(x) for _ in range(3)]
    timed = {(key[0], candidate) for key, timings in model._choice.samples.items() for candidate in timings}
    counts = tuple(dict.fromkeys((threads, 1)))
    encoder = {("fused", n) for n in counts} | {("official", threads)}
    batch = {("encoder batch", c) for c in ("items", "parallel")} if threads > 1 else set()
    assert timed == {("encoder", c) for c in encoder} | {("graph", n) for n in counts} | batch
    assert torch.get_num_threads() == threads
    for output in outputs:
        torch.testing.assert_close(output, reference, rtol=0, atol=tolerance)

    choice = model._choice
    for fastest in sorted(encoder):
        for timings in choice.samples.values():
            for candidate in timings:
                seconds = 0.0 if candidate in (fastest, threads) else 1.0
                timings[candidate] = deque([seconds] * choice.rounds, maxlen=choice.window)
        ran: list[tuple[str, int]] = []

        def record(name, original, ran=ran):
            def run(*args, **kwargs):
                ran.append((name, torch.get_num_threads()))
                return original(*args, **kwargs)
            return run

        monkeypatch.setattr(model, "_infer_encoder", record("fused", model._infer_encoder))
        monkeypatch.setattr(model, "_official_encoder", record("official", model._official_encoder))
        with torch.inference_mode():
            model(x)
        monkeypatch.undo()
        assert ran == [fastest] * x.shape[0]  # every item on the fastest path, on its thread count
        assert torch.get_num_threads() == threads


def test_items_encoded_in_parallel_equal_the_items_one_by_one(small_model, monkeypatch):
    model = small_model.eval()
    x = 0.1 * torch.randn(5, 2400, generator=torch.Generator().manual_seed(4))
    threads = torch.get_num_threads()
    with torch.inference_mode():
        one_by_one = torch.cat([model._infer_encoder(x[i : i + 1]) for i in range(x.shape[0])])
        parallel = model._encode_parallel(x)
    torch.testing.assert_close(parallel, one_by_one, rtol=0,
                               atol=order_tolerance(model, x, call=lambda m, v: m.encode(v)))
    assert torch.get_num_threads() == threads
    if threads < 2:
        return  # the parallel candidate needs two threads
    # At batch > 1 both candidates are timed; when "parallel" ranks first, the items never run one by one.
    with torch.inference_mode():
        for _ in range(2 * model._choice.rounds):
            model(x)
    choice = model._choice
    key = ("encoder batch", *x.shape)
    assert set(choice.samples[key]) == {"items", "parallel"}
    for candidate in choice.samples[key]:
        seconds = 0.0 if candidate == "parallel" else 1.0
        choice.samples[key][candidate] = deque([seconds] * choice.rounds, maxlen=choice.window)
    monkeypatch.setattr(model, "_encode_item", lambda *a: pytest.fail("an item was encoded alone"))
    with torch.inference_mode():
        model(x)
    assert torch.get_num_threads() == threads


def test_no_parallel_items_under_autocast(small_model):
    # Autocast is per thread: worker threads would encode in float32 what the caller asked in bfloat16.
    model = small_model.eval()
    x = 0.1 * torch.randn(3, 2400, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(4):
            model(x)
    assert not any(key[0] == "encoder batch" for key in model._choice.samples)


def test_threads_option(small_model):
    with pytest.raises(ValueError, match="threads must"):
        AASIST(CONFIGS["AASIST-L"], threads=0)
    model = AASIST(CONFIGS["AASIST-L"], threads=None).eval()
    with torch.inference_mode():
        model(0.1 * torch.randn(1, 2400))
    assert {key[0] for key in model._choice.samples} == {"encoder"}  # the graph layers were not timed
