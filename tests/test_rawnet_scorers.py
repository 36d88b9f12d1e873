"""The rawnet2 and aasist scorers: official parity through score_files (official crop), model files, odd inputs,
whole-file windows and their speech-weighted mean."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from error_bounds import TRANSCENDENTAL_ULPS, U32
from scipy.signal import resample_poly

from cli.main import main
from lfcc_gmm.audio import AudioConversionWarning, load_audio
from lfcc_gmm.cards import official_aasist_threshold
from lfcc_gmm.scorers import get_scorer
from lfcc_gmm.segments import SegmentGrid
from lfcc_gmm.speech import detect_speech
from rawnet import weights
from rawnet.aasist import CONFIGS
from rawnet.precision import order_tolerance
from rawnet.rawnet2 import DEFAULT_CONFIGS, RawNet2
from rawnet.scorers import AASISTScorer, CheckpointError, RawNet2Scorer
from rawnet.tuning import fast_paths_off

NB_SAMP = 64600


@pytest.fixture(scope="module")
def audio_dir(reference_dir):
    return reference_dir / "lfcc" / "audio"


def small_rawnet2(reference_dir, variant: str, **options) -> RawNet2Scorer:
    """The reduced official RawNet2; the official crop unless ``crop`` says otherwise (the official outputs are
    of the first window)."""
    folder = reference_dir / "rawnet2"
    options.setdefault("crop", "official")
    return RawNet2Scorer.load(folder / f"rawnet2_{variant}_small.pth", config=folder / f"rawnet2_{variant}_small.json",
                              variant=variant, device="cpu", **options)


@pytest.fixture(scope="module")
def rawnet2(reference_dir) -> RawNet2Scorer:
    return small_rawnet2(reference_dir, "asvspoof2021", batch_size=3)


def test_registered_under_their_names():
    assert get_scorer("rawnet2") is RawNet2Scorer
    assert get_scorer("aasist") is AASISTScorer
    for cls in (RawNet2Scorer, AASISTScorer):
        assert cls.runtime_options == ("device", "batch_size", "crop")
        assert cls().mode == "whole file" and cls(crop="official").mode == "official crop"
    assert RawNet2Scorer.default_threshold == pytest.approx(math.log(0.5))
    assert AASISTScorer.default_threshold == 0.0


@pytest.mark.parametrize("variant", ["asvspoof2021", "icassp2021"])
def test_rawnet2_reduced_checkpoints_match_official_outputs(reference_dir, audio_dir, variant):
    expected = json.loads((reference_dir / "rawnet2" / "official_outputs.json").read_text())["cases"][variant]
    scorer = small_rawnet2(reference_dir, variant, batch_size=3)
    names = sorted(expected)
    scores = scorer.score_files([audio_dir / name for name in names])
    np.testing.assert_allclose(scores, [expected[n]["score"] for n in names], rtol=0, atol=1e-5)
    name = "LA_T_1272637.flac"
    outputs = scorer.outputs(scorer.model_inputs(load_audio(audio_dir / name).signal))
    np.testing.assert_allclose(outputs, [expected[name]["output"]], rtol=0, atol=1e-5)
    if variant == "asvspoof2021":
        # A log-softmax: the two outputs are log-probabilities, and the threshold is log(0.5). In float32 each is
        # within (|log p| + 2 + 2 ulps of log-sum-exp) u, so each exp within that relatively.
        rounding = 2 * (float(np.abs(outputs).max()) + 2 + 2 * TRANSCENDENTAL_ULPS) * U32
        assert np.exp(outputs).sum() == pytest.approx(1, rel=rounding)
        assert (scorer.output_kind, scorer.default_threshold) == ("log-softmax", math.log(0.5))
    else:
        assert (scorer.output_kind, scorer.default_threshold) == ("logits", 0.0)


def test_rawnet2_asvspoof5_scores_are_the_official_softmax(reference_dir, audio_dir, tmp_path):
    folder = reference_dir / "rawnet2" / "asvspoof5"
    official = json.loads((folder / "official_outputs.json").read_text())
    config = {**official["config"], "nb_samp": 64000}
    scorer = RawNet2Scorer.load(folder / "rawnet2_asvspoof5_small.pth", config=config, variant="asvspoof5",
                                device="cpu", batch_size=3)
    assert (scorer.nb_samp, scorer.output_kind, scorer.default_threshold) == (64000, "softmax", 0.5)
    names = sorted(official["outputs"])
    scores = scorer.score_files([audio_dir / name for name in names])
    inputs = np.concatenate([scorer.model_inputs(load_audio(audio_dir / name).signal) for name in names])
    tolerance = order_tolerance(scorer.cpu_network(), torch.from_numpy(inputs))
    np.testing.assert_allclose(scores, [official["outputs"][n]["score"] for n in names], rtol=0, atol=tolerance)
    # A model file keeps the variant, so the softmax and the threshold come back with it.
    scorer.save(tmp_path / "asvspoof5.pth")
    again = RawNet2Scorer.load(tmp_path / "asvspoof5.pth", device="cpu")
    assert (again.spec_.variant, again.output_kind, again.default_threshold) == ("asvspoof5", "softmax", 0.5)
    # A bare state_dict has the asvspoof2021 shapes: without variant= it is read as that variant.
    assert RawNet2Scorer.load(folder / "rawnet2_asvspoof5_small.pth", config=config).spec_.variant == "asvspoof2021"


def test_bare_state_dict_of_unofficial_size_asks_for_a_config(reference_dir):
    with pytest.raises(CheckpointError, match=r"rawnet2_asvspoof2021_small\.pth.*16 channels.*20 \(asvspoof2021\), "
                                              r"128 \(icassp2021\); give the config and the variant"):
        RawNet2Scorer.load(reference_dir / "rawnet2" / "rawnet2_asvspoof2021_small.pth")


def test_official_full_configs_are_told_by_shapes(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "official.pth"
    # What the official scripts save: a bare state_dict, here under nn.DataParallel's "module." prefix.
    torch.save({f"module.{k}": v for k, v in RawNet2(variant="asvspoof2021").state_dict().items()}, path)
    scorer = RawNet2Scorer.load(path, device="cpu")
    assert (scorer.spec_.variant, scorer.spec_.config, scorer.nb_samp) == (
        "asvspoof2021", DEFAULT_CONFIGS["asvspoof2021"], 64600)
    assert scorer.model_.sinc_conv.kernel_size == 1025
    with pytest.raises(CheckpointError, match="do not fit the rawnet2 'icassp2021' model"):
        RawNet2Scorer.load(path, variant="icassp2021")


def test_model_file_round_trip(rawnet2, audio_dir, tmp_path):
    files = [audio_dir / "LA_T_1272637.flac", audio_dir / "short_1377.wav"]
    path = tmp_path / "rawnet2.pth"
    rawnet2.save(path)
    fields = torch.load(path, weights_only=True)
    assert (fields["format"], fields["variant"], fields["sinc_scale"]) == ("antispoof-rawnet2", "asvspoof2021", "mel")
    assert fields["config"] == rawnet2.spec_.config and fields["epoch"] is None
    again = RawNet2Scorer.load(path, batch_size=rawnet2.batch_size, crop=rawnet2.crop)
    assert again.spec_ == rawnet2.spec_
    with fast_paths_off():  # the same weights on the fixed path: the same bits
        np.testing.assert_array_equal(again.score_files(files), rawnet2.score_files(files))
    with pytest.raises(CheckpointError, match="describes its network; config cannot be given"):
        RawNet2Scorer.load(path, config={"nb_samp": 1})
    fields["format"] = "antispoof-aasist"
    torch.save(fields, tmp_path / "aasist.pth")
    with pytest.raises(CheckpointError, match="antispoof-aasist model file; score it with --scorer aasist"):
        RawNet2Scorer.load(tmp_path / "aasist.pth")


def test_unusable_files_are_named(tmp_path):
    (tmp_path / "notes.pth").write_text("not torch")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a torch weights file"):
        RawNet2Scorer.load(tmp_path / "notes.pth")
    with pytest.raises(FileNotFoundError, match=r"absent\.pth"):
        RawNet2Scorer.load(tmp_path / "absent.pth")
    with pytest.raises(ValueError, match="needs a model file"):
        RawNet2Scorer.load(None)
    with pytest.raises(ValueError, match="no weights yet"):
        RawNet2Scorer().score_files([tmp_path / "x.wav"])


def test_device_auto_takes_cuda_when_present(rawnet2):
    weights, config = rawnet2.info_["source"], rawnet2.spec_.config
    scorer = RawNet2Scorer.load(weights, config=config, variant="asvspoof2021")
    assert scorer.device_.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(scorer.model_.parameters()).device.type == scorer.device_.type
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        RawNet2Scorer.load(weights, config=config, variant="asvspoof2021", device="tpu")


def test_batch_size_does_not_change_scores(rawnet2, audio_dir):
    files = [audio_dir / n for n in ("LA_T_1272637.flac", "espeak_en.wav", "short_1377.wav")]
    one = RawNet2Scorer.load(rawnet2.info_["source"], config=rawnet2.spec_.config, variant="asvspoof2021",
                             batch_size=1, crop="official")
    # A row alone or in a batch of three: the same function, summed in another order.
    tolerance = order_tolerance(rawnet2.model_, torch.from_numpy(_inputs(rawnet2, files)))
    np.testing.assert_allclose(one.score_files(files), rawnet2.score_files(files), rtol=0, atol=tolerance)
    assert rawnet2.score_files([]).shape == (0,)


# -- odd inputs ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def odd_files(audio_dir, tmp_path_factory):
    """The LA_T clip re-encoded (8 kHz, 44.1 kHz stereo, 24-bit, float) plus a 1 s and a 30 s clip."""
    folder = tmp_path_factory.mktemp("odd")
    x, rate = sf.read(audio_dir / "LA_T_1272637.flac")
    assert rate == 16000
    files = {"original": audio_dir / "LA_T_1272637.flac"}

    def write(name, data, rate, subtype):
        files[name] = folder / f"{name}.wav"
        sf.write(files[name], data, rate, subtype=subtype)

    write("pcm24", x, 16000, "PCM_24")
    write("float", x, 16000, "FLOAT")
    write("8k", resample_poly(x, 1, 2), 8000, "PCM_16")
    up = resample_poly(x, 441, 160)
    # Each channel alone is off by the noise, their mean is the clip.
    noise = 0.01 * np.random.default_rng(0).standard_normal(up.size)
    write("44k_stereo", np.stack([up + noise, up - noise], axis=1), 44100, "PCM_16")
    speech = np.concatenate([sf.read(audio_dir / n)[0] for n in ("LA_T_1272637.flac", "espeak_en.wav",
                                                                   "chirp_noise.wav")])
    write("1s", speech[8000:24000], 16000, "PCM_16")
    write("30s", np.tile(speech, 4)[: 30 * 16000], 16000, "PCM_16")
    return files


def _inputs(scorer, files) -> np.ndarray:
    """The stacked float32 rows the scorer's network sees for ``files``."""
    return np.concatenate([scorer.model_inputs(load_audio(f).signal) for f in files])


def test_lossless_re_encodings_give_the_same_score(rawnet2, odd_files):
    # 16-bit samples are exact in 24-bit PCM and in float32, so the model sees identical input ...
    names = ("original", "pcm24", "float")
    inputs = [rawnet2.model_inputs(load_audio(odd_files[k]).signal) for k in names]
    assert all(np.array_equal(inputs[0], other) for other in inputs[1:])
    # ... and each file alone, on the fixed path (the measured ones may differ between calls), goes through the
    # same kernels in the same order: the same bits. (Rows of one batch need not: a kernel may sum a row by its
    # position in the batch, which test_batch_size_does_not_change_scores bounds.)
    with fast_paths_off():
        scores = [rawnet2.score_files([odd_files[k]])[0] for k in names]
    assert scores[0] == scores[1] == scores[2]


def test_resampled_and_stereo_files_score_with_a_note(rawnet2, odd_files):
    with pytest.warns(AudioConversionWarning) as caught:
        scores = rawnet2.score_files([odd_files["8k"], odd_files["44k_stereo"]])
    notes = " | ".join(str(w.message) for w in caught)
    assert "resampled 8000 Hz -> 16000 Hz" in notes
    assert "averaged 2 channels to mono; resampled 44100 Hz -> 16000 Hz" in notes
    assert np.isfinite(scores).all()


def test_short_clip_is_repeat_padded_in_both_modes(reference_dir, odd_files):
    x = load_audio(odd_files["1s"]).signal
    by_hand = np.tile(x, 5)[:NB_SAMP][None, :]  # 16,000 samples x 5 >= 64,600
    official = small_rawnet2(reference_dir, "asvspoof2021")
    whole = small_rawnet2(reference_dir, "asvspoof2021", crop="none")
    # The same single row through the same batch-of-one forward pass on the fixed path: the same bits. Whole-file
    # mode has one window here, and one window's speech-weighted mean is its score.
    with fast_paths_off():
        expected = official.outputs(by_hand)[0, 1]
        assert official.score_files([odd_files["1s"]])[0] == expected
        assert whole.score_files([odd_files["1s"]])[0] == expected


def test_long_clip_official_window_and_whole_file_windows(reference_dir, odd_files):
    x = load_audio(odd_files["30s"]).signal
    assert x.size == 480_000
    # Windows every 32,300 samples (50 % overlap) while they fit (13), then one ending at the last sample.
    starts = [*range(0, 480_000 - NB_SAMP + 1, 32_300), 480_000 - NB_SAMP]
    assert len(starts) == 14 and starts[-2] == 387_600
    windows = np.stack([x[s : s + NB_SAMP] for s in starts])
    official = small_rawnet2(reference_dir, "asvspoof2021", batch_size=3)
    per_window = official.outputs(windows)[:, 1].astype(np.float64)
    # The first window alone, or first in a batch of three: another order of the same sums.
    tolerance = order_tolerance(official.model_, torch.from_numpy(windows))
    assert official.score_files([odd_files["30s"]])[0] == pytest.approx(per_window[0], abs=tolerance)

    whole = small_rawnet2(reference_dir, "asvspoof2021", batch_size=3, crop="none")
    np.testing.assert_array_equal(whole.model_inputs(x), windows.astype(np.float32))
    # The file score's windows lie over the speech, from 0.5 s (8,000 samples) before the first region to 0.5 s
    # after the last, with the same 50 % overlap; each weighs by the share of its 64,600 samples that the detector
    # calls speech, counted here sample by sample from the regions (an independent route to
    # SpeechActivity.fraction).
    speech = detect_speech(x, 16000)
    first = max(0, math.floor(speech.regions[0][0] * 16000 - 8000))
    last = min(x.size, math.ceil(speech.regions[-1][1] * 16000 + 8000))
    starts = [*range(first, last - NB_SAMP + 1, 32_300)]
    starts += [last - NB_SAMP] if starts[-1] != last - NB_SAMP else []
    windows = np.stack([x[s : s + NB_SAMP] for s in starts])
    per_window = official.outputs(windows)[:, 1].astype(np.float64)
    is_speech = np.zeros(x.size, bool)
    for start, end in speech.regions:
        is_speech[round(start * 16000) : round(end * 16000)] = True
    shares = np.array([is_speech[s : s + NB_SAMP].mean() for s in starts])
    assert shares.min() > 0 and shares.max() <= 1
    short = official.outputs(official.model_inputs(load_audio(odd_files["1s"]).signal))[0, 1]
    # Windows of several files share batches of 3; each file still gets its own windows' weighted mean.
    scores = whole.score_files([odd_files["30s"], odd_files["1s"]])
    # The shares agree to the rounding of region edges to whole samples (one sample of 64,600 per edge).
    weights_bound = 2 * len(speech.regions) / NB_SAMP * np.abs(per_window).max() / shares.sum() * len(starts)
    np.testing.assert_allclose(scores, [np.dot(per_window, shares) / shares.sum(), short], rtol=0,
                               atol=tolerance + weights_bound)
    assert np.ptp(per_window) > 1e-3  # the windows differ, so the mean is not trivially any one of them


def test_whole_file_timeline_is_the_windows_and_other_grids_score_each_segment(reference_dir, odd_files):
    whole = small_rawnet2(reference_dir, "asvspoof2021", batch_size=4, crop="none")
    x = load_audio(odd_files["30s"]).signal
    speech = detect_speech(x, 16000)
    (timeline,) = whole.score_timelines([x], [speech], whole.default_grid())
    windows = whole.model_inputs(x)
    # The default grid is the model window with 50 % overlap: the segments are the windows the score is made of,
    # at no extra cost (the very same forward passes).
    assert [(round(s.start_s * 16000), round(s.end_s * 16000)) for s in timeline.segments] == [
        (start, start + NB_SAMP) for start in [*range(0, 480_000 - NB_SAMP + 1, 32_300), 480_000 - NB_SAMP]]
    tolerance = order_tolerance(whole.model_, torch.from_numpy(windows))
    np.testing.assert_allclose([s.score for s in timeline.segments], whole.outputs(windows)[:, 1], rtol=0,
                               atol=tolerance)
    # A 2 s grid: each segment is shorter than the window, so it is scored as a file of its own, repeat-padded.
    grid = SegmentGrid(2.0, 2.0)
    (coarse,) = whole.score_timelines([x], [speech], grid)
    # The same file windows, scored in other batches: another order of the same sums.
    assert len(coarse.segments) == 15 and coarse.score == pytest.approx(timeline.score, abs=tolerance)
    # A segment, as a file, is read from 0.5 s before its first speech to 0.5 s after its last.
    pieces = []
    for segment in coarse.segments[:3]:
        a, b = round(segment.start_s * 16000), round(segment.end_s * 16000)
        inside = [(p * 16000, q * 16000) for p, q in speech.regions if q * 16000 > a and p * 16000 < b]
        pieces.append(x[max(a, math.floor(inside[0][0] - 8000)) : min(b, math.ceil(inside[-1][1] + 8000))])
    np.testing.assert_allclose([s.score for s in coarse.segments[:3]],
                               [whole.outputs(whole.model_inputs(p))[0, 1] for p in pieces], rtol=0, atol=tolerance)
    # The official crop reads only the first window, and its timeline still shows the whole file.
    official = small_rawnet2(reference_dir, "asvspoof2021", batch_size=4)
    (cropped,) = official.score_timelines([x], [speech], official.default_grid())
    assert cropped.score == cropped.segments[0].score and len(cropped.segments) == len(timeline.segments)


# -- AASIST -------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def aasist(reference_dir) -> AASISTScorer:
    return AASISTScorer.load(reference_dir / "aasist" / "AASIST.pth", device="cpu", batch_size=3, crop="official")


@pytest.mark.slow
def test_aasist_official_weights_match_official_outputs(aasist, reference_dir, audio_dir, odd_files):
    expected = json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())["AASIST.pth"]
    assert (aasist.spec_.variant, aasist.spec_.config) == ("aasist", CONFIGS["AASIST"])  # told by the shapes
    scores = aasist.score_files([audio_dir / "LA_T_1272637.flac", audio_dir / "espeak_en.wav",
                                 odd_files["44k_stereo"]])
    assert scores[0] == pytest.approx(5.236644, abs=1e-4)
    assert scores[0] == pytest.approx(expected["LA_T_1272637.flac"]["score"], abs=1e-4)
    assert scores[1] == pytest.approx(expected["espeak_en.wav"]["score"], abs=1e-4)
    assert scores[1] < 0 < scores[0]
    # 16 -> 44.1 -> 16 kHz keeps the band below 8 kHz up to the filters' transition and 16-bit rounding twice
    # (seen: 0.013). 0.05 is 0.4 % of the 11.8 between these bona fide and spoof clips.
    assert scores[2] == pytest.approx(scores[0], abs=0.05)


def test_aasist_reads_the_weights_cache(reference_dir, audio_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path))
    # An installation without its bundled copies falls back on the cache.
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path / "not-installed")
    with pytest.raises(FileNotFoundError, match="antispoof weights fetch aasist-l"):
        AASISTScorer.load(None, variant="aasist-l")
    (tmp_path / "weights").mkdir()
    shutil.copy(reference_dir / "aasist" / "AASIST-L.pth", tmp_path / "weights")
    scorer = AASISTScorer.load(None, variant="aasist-l", device="cpu", crop="official")
    assert (scorer.spec_.variant, scorer.spec_.config) == ("aasist-l", CONFIGS["AASIST-L"])
    assert scorer.info_["source"] == str(tmp_path / "weights" / "AASIST-L.pth")
    expected = json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())["AASIST-L.pth"]
    assert scorer.score_files([audio_dir / "LA_T_1272637.flac"])[0] == pytest.approx(
        expected["LA_T_1272637.flac"]["score"], abs=1e-4)


def test_aasist_model_file_round_trip(aasist, tmp_path):
    aasist.save(tmp_path / "aasist.pth")
    again = AASISTScorer.load(tmp_path / "aasist.pth")
    assert again.spec_ == aasist.spec_
    saved, original = again.model_.state_dict(), aasist.model_.state_dict()
    assert saved.keys() == original.keys()
    assert all(torch.equal(saved[k], original[k]) for k in saved)
    with pytest.raises(CheckpointError, match="score it with --scorer aasist"):
        RawNet2Scorer.load(tmp_path / "aasist.pth")


@pytest.mark.slow
def test_cli_score_prints_verdicts_and_reproduces_the_official_crop(reference_dir, audio_dir):
    clips = [audio_dir / "LA_T_1272637.flac", audio_dir / "espeak_en.wav"]
    weights = str(reference_dir / "aasist" / "AASIST.pth")
    expected = json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())["AASIST.pth"]
    threshold = official_aasist_threshold(AASISTScorer.load(weights).info_["fingerprint"])
    assert threshold is not None  # the official weights are recognised, whatever file they come from
    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", "--weights", weights, "--crop", "official",
                                       *map(str, clips)])
    assert result.exit_code == 0, result.output
    assert (f"{clips[0]}: bona fide (score 5.2366 at or above the threshold {threshold.value:g}, "
            f"{threshold.meaning}; official crop, 2.90 s") in result.stdout
    assert f"{clips[1]}: spoof (score -6.5591 below the threshold {threshold.value:g}" in result.stdout
    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", "--weights", weights, "--crop", "official",
                                       "--format", "json", *map(str, clips)])
    assert result.exit_code == 0, result.output
    objects = json.loads(result.stdout)
    assert [o["mode"] for o in objects] == ["official crop"] * 2
    # Parity with the official evaluation (kind 3: the toolkit's promise to the official outputs, 1e-4).
    for obj, clip in zip(objects, clips, strict=True):
        assert obj["score"] == pytest.approx(expected[clip.name]["score"], abs=1e-4)
        assert obj["segments"][0]["score"] == obj["score"]


# -- training -----------------------------------------------------------------------------------------------------

TINY_RAWNET2 = {"nb_samp": 16000, "first_conv": 32, "in_channels": 1, "filts": [4, [4, 4], [4, 8], [8, 8]],
                "blocks": [2, 4], "nb_fc_node": 8, "gru_node": 8, "nb_gru_layer": 1, "nb_classes": 2}


def test_fit_trains_through_the_shared_trainer(tiny_corpus, tmp_path):
    scorer = RawNet2Scorer(config=TINY_RAWNET2, device="cpu", batch_size=4)
    assert scorer.fit(tiny_corpus, run_dir=tmp_path / "run", epochs=2, batch_size=4, seed=0,
                      dev_trials=tiny_corpus) is scorer
    best = torch.load(tmp_path / "run" / "best.pth", weights_only=True)
    assert (scorer.info_["epoch"], scorer.info_["dev_eer"]) == (best["epoch"], best["dev_eer"])
    assert all(torch.equal(v, best["state_dict"][k]) for k, v in scorer.model_.state_dict().items())
    scorer.save(tmp_path / "model.pth")
    again = RawNet2Scorer.load(tmp_path / "model.pth", batch_size=4)
    with fast_paths_off():  # the same weights on the fixed path: the same bits
        np.testing.assert_array_equal(again.score_files([t.path for t in tiny_corpus]),
                                      scorer.score_files([t.path for t in tiny_corpus]))


def test_in_memory_signals_score_as_their_files(reference_dir):
    import soundfile as sf

    scorer = AASISTScorer.load(reference_dir / "aasist" / "AASIST-L.pth", batch_size=3)
    paths = [reference_dir / "lfcc" / "audio" / name for name in ("LA_T_1272637.flac", "espeak_en.wav")]
    signals = [sf.read(p, dtype="float64")[0] for p in paths]
    # The same samples, the same rows, the same batches, the fixed path (the measured ones may differ between
    # calls): the same bits.
    from scipy.signal import resample_poly

    with fast_paths_off():
        np.testing.assert_array_equal(scorer.score_signals(signals), scorer.score_files(paths))
        # At another rate the signal is resampled first, as load_audio would.
        at_8k = resample_poly(signals[0], 1, 2)
        resampled = scorer.score_signals([resample_poly(at_8k, 2, 1)])[0]
        assert scorer.score_signals([at_8k], sample_rate=8000)[0] == resampled
