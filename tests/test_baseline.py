"""The lfcc-gmm scorer: training, the score definition, model files, streaming, safety."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle

import numpy as np
import pytest
import soundfile as sf
from error_bounds import assert_within, lfcc_order_bound, mean_llr_order_bound
from sklearn.mixture import GaussianMixture

from lfcc_gmm.audio import AudioConversionWarning, AudioError, load_audio
from lfcc_gmm.baseline import LFCCGMMScorer, ModelFileError, file_score
from lfcc_gmm.extraction import iter_file_lfcc
from lfcc_gmm.features import lfcc
from lfcc_gmm.scorers import get_scorer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from conftest import synthetic_corpus

    return synthetic_corpus(tmp_path_factory.mktemp("corpus"), n_per_class=5, seconds=1.5)


@pytest.fixture(scope="module")
def trained(corpus):
    return LFCCGMMScorer(n_components=4, max_iter=5, init_samples=1000, random_state=3).fit(corpus)


def sklearn_gmm(gmm) -> GaussianMixture:
    """The same parameters in scikit-learn's GaussianMixture: an independent log-likelihood."""
    reference = GaussianMixture(gmm.weights_.size, covariance_type="diag")
    reference.weights_, reference.means_, reference.covariances_ = gmm.weights_, gmm.means_, gmm.covariances_
    reference.precisions_cholesky_ = 1 / np.sqrt(gmm.covariances_)
    return reference


def test_registered_under_its_name():
    assert get_scorer("lfcc-gmm") is LFCCGMMScorer


def test_score_is_mean_frame_llr(trained, corpus):
    path = corpus[0].path
    frames = lfcc(load_audio(path).signal)
    expected = (sklearn_gmm(trained.bonafide_gmm_).score_samples(frames).mean()
                - sklearn_gmm(trained.spoof_gmm_).score_samples(frames).mean())
    # Scoring uses float32 LFCC and float32 BLAS: agreement to a small fraction of a nat per frame.
    assert trained.score_files([path])[0] == pytest.approx(expected, abs=1e-3 * max(1.0, abs(expected)))


def test_training_separates_the_synthetic_classes(trained, corpus):
    scores = trained.score_files([t.path for t in corpus])
    keys = np.array([t.key for t in corpus])
    assert scores[keys == "bonafide"].min() > 0 > scores[keys == "spoof"].max()
    summary = trained.training_summary_
    assert summary["bonafide"]["files"] == summary["spoof"]["files"] == 5
    frames_per_file = lfcc(load_audio(corpus[0].path).signal).shape[0]
    assert summary["bonafide"]["frames"] == 5 * frames_per_file


def test_training_is_deterministic(corpus, trained):
    again = LFCCGMMScorer(n_components=4, max_iter=5, init_samples=1000, random_state=3).fit(corpus)
    np.testing.assert_array_equal(again.spoof_gmm_.means_, trained.spoof_gmm_.means_)


def test_save_load_round_trip_and_metadata(trained, corpus, tmp_path):
    trained.save(tmp_path / "model.npz")
    loaded = LFCCGMMScorer.load(tmp_path / "model.npz")
    paths = [t.path for t in corpus]
    np.testing.assert_array_equal(loaded.score_files(paths), trained.score_files(paths))
    # Worker processes score each file as this process does (file_score on one BLAS thread): the same bits.
    for jobs in (2, -1):  # -1 = every core, as in joblib
        parallel = LFCCGMMScorer.load(tmp_path / "model.npz", jobs=jobs)
        assert parallel.jobs == jobs
        np.testing.assert_array_equal(parallel.score_files(paths), trained.score_files(paths))
    meta = loaded.metadata()
    assert (meta["format"], meta["preset"], meta["feature_dim"], meta["n_components"]) == (
        "antispoof-lfcc-gmm", "asvspoof2019", 60, 4)
    assert meta["training"]["spoof"]["files"] == 5 and meta["antispoof_version"]


def test_asvspoof2021_preset_gives_57_dims(corpus):
    scorer = LFCCGMMScorer("asvspoof2021", n_components=2, max_iter=2, init_samples=500).fit(corpus)
    assert scorer.bonafide_gmm_.means_.shape == (2, 57)
    assert np.isfinite(scorer.score_files([corpus[0].path])).all()


def test_bad_training_files_are_skipped_and_recorded(corpus, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"garbage" * 50)
    trials = [*corpus, dataclasses.replace(corpus[1], file_id="bad", path=bad)]
    scorer = LFCCGMMScorer(n_components=2, max_iter=2, init_samples=500).fit(trials)
    (failure,) = scorer.training_summary_["failures"]
    assert failure["file_id"] == "bad" and "not a readable audio file" in failure["reason"]


def test_training_needs_both_classes(corpus):
    with pytest.raises(ValueError, match="no usable spoof training files"):
        LFCCGMMScorer(n_components=2).fit([t for t in corpus if t.key == "bonafide"])
    with pytest.raises(ValueError, match="have no bonafide/spoof key"):
        LFCCGMMScorer(n_components=2).fit([dataclasses.replace(corpus[0], key=None)])


def test_long_file_streams_to_the_whole_file_score(trained, corpus, tmp_path):
    # 70 s of the corpus's clips one after another (longer than two 30 s streaming blocks, whose frames score
    # very differently): the streamed score must weigh every frame once, as the whole-file mean does.
    clips = [load_audio(t.path).signal for t in corpus]
    x = np.concatenate([clips[i % len(clips)] for i in range(47)])[: 16000 * 70]
    sf.write(tmp_path / "long.wav", x, 16000, subtype="FLOAT")
    frames = lfcc(x.astype(np.float32).astype(np.float64), dtype=np.float32)
    # The streamed rows (file_score reads 30 s blocks) are the whole file's, up to the order of their sums.
    rows = np.concatenate(list(iter_file_lfcc(tmp_path / "long.wav", block_seconds=30.0, dtype=np.float32)))
    rows_bound = lfcc_order_bound(x, dtype=np.float32)
    assert_within(rows, frames, rows_bound)
    bona, spoof = trained.bonafide_gmm_, trained.spoof_gmm_
    expected = bona.score_samples(frames).mean() - spoof.score_samples(frames).mean()
    streamed = file_score(tmp_path / "long.wav", bona.params_, spoof.params_, "asvspoof2019")
    # Streaming scores each block in its own float32 products (another order than the whole file's chunks, and
    # per-row results differ between BLAS kernels): bounded per frame for both models, with the rows' own bound.
    tolerance = mean_llr_order_bound(frames, bona.params_, spoof.params_, rows_bound)
    assert tolerance < 1e-3 * abs(expected)  # the bound is tight enough for the test to mean something
    assert streamed == pytest.approx(expected, rel=0, abs=tolerance)


def test_other_rates_and_in_memory_signals(trained, corpus, tmp_path):
    from scipy.signal import resample_poly

    x = load_audio(corpus[0].path).signal
    sf.write(tmp_path / "44k.wav", resample_poly(x, 441, 160), 44100, subtype="FLOAT")
    with pytest.warns(AudioConversionWarning, match="resampled 44100 Hz -> 16000 Hz"):
        at_44k = trained.score_files([tmp_path / "44k.wav"])[0]
    original = trained.score_files([corpus[0].path])[0]
    assert at_44k == pytest.approx(original, rel=0.05)  # two resamplings blur the top band a little
    # In memory, the LFCC of the whole signal is one batch; from the file, the stream batches it otherwise.
    frames = lfcc(x, dtype=np.float32)
    tolerance = mean_llr_order_bound(frames, trained.bonafide_gmm_.params_, trained.spoof_gmm_.params_,
                                     lfcc_order_bound(x, dtype=np.float32))
    assert trained.score_signals([x])[0] == pytest.approx(original, rel=0, abs=tolerance)


def test_too_short_file_is_an_audio_error(trained, tmp_path):
    sf.write(tmp_path / "tiny.wav", np.zeros(100), 16000)
    with pytest.raises(AudioError, match="too short"):
        trained.score_files([tmp_path / "tiny.wav"])


class Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_model_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil_npz = tmp_path / "evil.npz"
    np.savez(evil_npz, metadata=np.array([Payload(str(marker))], dtype=object))
    evil_pickle = tmp_path / "evil_pickle.npz"
    evil_pickle.write_bytes(pickle.dumps(Payload(str(marker))))
    for path in (evil_npz, evil_pickle):
        with pytest.raises(ModelFileError, match="not an LFCC-GMM model file"):
            LFCCGMMScorer.load(path)
    assert not marker.exists()


def test_foreign_npz_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.ones(3))
    with pytest.raises(ModelFileError, match="no metadata"):
        LFCCGMMScorer.load(tmp_path / "other.npz")
    np.savez(tmp_path / "fmt.npz", metadata=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(ModelFileError, match="format 'something-else'"):
        LFCCGMMScorer.load(tmp_path / "fmt.npz")
    assert not os.path.exists(tmp_path / "pwned")


def test_augmentation_adds_deterministic_copies(corpus, tmp_path):
    settings = dict(n_components=2, max_iter=2, init_samples=500, random_state=5)
    plain = LFCCGMMScorer(**settings).fit(corpus)
    augmented = LFCCGMMScorer(augment="noise,reverb", augment_copies=2, **settings).fit(corpus)
    for key in ("bonafide", "spoof"):
        assert augmented.training_summary_[key]["frames"] == 3 * plain.training_summary_[key]["frames"]
    again = LFCCGMMScorer(augment="noise,reverb", augment_copies=2, **settings).fit(corpus)
    np.testing.assert_array_equal(again.bonafide_gmm_.means_, augmented.bonafide_gmm_.means_)
    assert not np.array_equal(plain.bonafide_gmm_.means_, augmented.bonafide_gmm_.means_)
    augmented.save(tmp_path / "aug.npz")
    assert LFCCGMMScorer.load(tmp_path / "aug.npz").metadata()["augment"] == "noise,reverb"
    with pytest.raises(ValueError, match="augmentation 'nonsense'"):
        LFCCGMMScorer(augment="nonsense", **settings).fit(corpus)


def test_bad_file_error_crosses_worker_processes(trained, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"junk" * 30)
    trained.save(tmp_path / "model.npz")
    parallel = LFCCGMMScorer.load(tmp_path / "model.npz", jobs=2)
    with pytest.raises(AudioError, match="not a readable audio file"):
        parallel.score_files([bad, bad])
