"""Waveform datasets: exact crops and pads, labels, per-example determinism, the augmentation hook, sharding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf
import torch

from lfcc_gmm.audio import AudioConversionWarning, load_audio
from lfcc_gmm.protocols import Trial
from rawnet.data import (
    UNLABELLED,
    WaveformDataset,
    make_loader,
    set_loader_epoch,
    shard_indices,
    trial_label,
    warn_conversions,
)

NB_SAMP = 8000


@pytest.fixture
def corpus(tiny_corpus, tmp_path):
    """The eight 1-s trials plus a 0.3-s bona fide one (shorter than NB_SAMP, so it is repeat-padded)."""
    rng = np.random.default_rng(5)
    path = tmp_path / "short.wav"
    sf.write(path, 0.3 * rng.uniform(-1, 1, 4800), 16000, subtype="PCM_16")
    return [*tiny_corpus, Trial("short", "bonafide", path=path)]


def signal_of(trial: Trial) -> np.ndarray:
    return load_audio(trial.path).signal


def window_start(window: np.ndarray, signal: np.ndarray) -> int:
    """Where ``window`` (float32) sits in ``signal``; fails if it is not a contiguous slice of it."""
    starts = [s for s in range(signal.size - window.size + 1)
              if np.array_equal(window, signal[s : s + window.size].astype(np.float32))]
    assert len(starts) >= 1, "not a window of the signal"
    return starts[0]


class Reverse:
    """A picklable augmentation: time reversal plus a seed-dependent offset; records its calls in-process."""

    def __init__(self):
        self.calls = []

    def __call__(self, signal, seed):
        self.calls.append((signal.size, seed))
        return signal[::-1] + (seed % 1000) * 1e-6


def test_labels_follow_class_indices(corpus):
    assert [trial_label(t) for t in corpus[:2]] == [1, 0]
    assert trial_label(Trial("x", None)) == UNLABELLED
    data = WaveformDataset(corpus, NB_SAMP)
    _, label = data[1]
    assert label.dtype == torch.int64 and int(label) == 0


def test_evaluation_view_truncates_and_repeat_pads(corpus):
    data = WaveformDataset(corpus, NB_SAMP)
    x, label = data[0]
    assert x.dtype == torch.float32 and x.shape == (NB_SAMP,) and int(label) == 1
    np.testing.assert_array_equal(x.numpy(), signal_of(corpus[0])[:NB_SAMP].astype(np.float32))
    short, _ = data[len(corpus) - 1]
    s = signal_of(corpus[-1])
    expected = np.concatenate([s, s[: NB_SAMP - s.size]])  # 4800 + 3200 samples
    np.testing.assert_array_equal(short.numpy(), expected.astype(np.float32))
    data.set_epoch(7)  # evaluation never changes with the epoch
    np.testing.assert_array_equal(data[0][0].numpy(), x.numpy())


def test_training_crops_are_random_windows_fixed_by_seed_epoch_and_index(corpus):
    data = WaveformDataset(corpus, NB_SAMP, train=True, seed=3)
    signal = signal_of(corpus[2])
    starts = []
    for epoch in range(4):
        data.set_epoch(epoch)
        window = data[2][0].numpy()
        starts.append(window_start(window, signal))
        # The same example again, after touching others and from a fresh dataset: identical.
        data[0], data[5]
        np.testing.assert_array_equal(data[2][0].numpy(), window)
        again = WaveformDataset(corpus, NB_SAMP, train=True, seed=3)
        again.set_epoch(epoch)
        np.testing.assert_array_equal(again[2][0].numpy(), window)
    assert len(set(starts)) > 1, "the crop must move between epochs"
    other = WaveformDataset(corpus, NB_SAMP, train=True, seed=4)
    assert not np.array_equal(other[2][0].numpy(), WaveformDataset(corpus, NB_SAMP, train=True, seed=3)[2][0].numpy())
    # Shorter than nb_samp: repeat-padded in training too.
    np.testing.assert_array_equal(data[len(corpus) - 1][0].numpy(),
                                  WaveformDataset(corpus, NB_SAMP)[len(corpus) - 1][0].numpy())


def test_training_without_random_crop_keeps_the_start(corpus):
    data = WaveformDataset(corpus, NB_SAMP, train=True, random_crop=False, seed=3)
    data.set_epoch(2)
    np.testing.assert_array_equal(data[4][0].numpy(), signal_of(corpus[4])[:NB_SAMP].astype(np.float32))


def test_augmentation_runs_on_the_whole_signal_in_training_only(corpus):
    augment = Reverse()
    WaveformDataset(corpus, NB_SAMP, augment=augment)[0]
    assert augment.calls == [], "evaluation must not augment"

    data = WaveformDataset(corpus, NB_SAMP, train=True, augment=augment, seed=1)
    window = data[3][0].numpy()
    signal = signal_of(corpus[3])
    size, seed = augment.calls[-1]
    assert size == signal.size and isinstance(seed, int)
    window_start(window, signal[::-1] + (seed % 1000) * 1e-6)
    data[3]
    assert augment.calls[-1][1] == seed, "the augmentation seed is fixed by (seed, epoch, index)"
    data.set_epoch(1)
    data[3]
    assert augment.calls[-1][1] != seed


def test_worker_processes_reproduce_the_main_process(corpus):
    data = WaveformDataset(corpus, NB_SAMP, train=True, augment=Reverse(), seed=9)

    def epoch_batches(workers: int, epoch: int):
        loader = make_loader(data, 4, shuffle=True, workers=workers, seed=9)
        set_loader_epoch(loader, epoch)
        return [(x.numpy(), y.numpy()) for x, y in loader]

    for epoch in (0, 1):
        in_process, in_workers = epoch_batches(0, epoch), epoch_batches(2, epoch)
        assert len(in_process) == len(in_workers) == 3
        for (x0, y0), (x2, y2) in zip(in_process, in_workers, strict=True):
            np.testing.assert_array_equal(x0, x2)
            np.testing.assert_array_equal(y0, y2)
    labels = np.concatenate([y for _, y in epoch_batches(0, 0)])
    assert sorted(labels.tolist()) == sorted(data.labels.tolist())


def test_shards_cover_the_data_and_shuffle_per_epoch(corpus):
    data = WaveformDataset(corpus, NB_SAMP)
    shards = [make_loader(data, 2, num_replicas=2, rank=r) for r in (0, 1)]
    indices = [shard_indices(loader) for loader in shards]
    assert len(indices[0]) == len(indices[1]) == 5  # 9 trials: one repeated to even the shards
    assert set(indices[0]) | set(indices[1]) == set(range(len(corpus)))
    labels = np.concatenate([y.numpy() for _, y in shards[1]])
    np.testing.assert_array_equal(labels, data.labels[indices[1]])

    train = make_loader(WaveformDataset(corpus, NB_SAMP, train=True), 4, shuffle=True, drop_last=True, seed=1)
    first = shard_indices(train)
    assert len(first) == 8
    set_loader_epoch(train, 1)
    assert shard_indices(train) != first
    set_loader_epoch(train, 0)
    assert shard_indices(train) == first


def test_errors_name_the_problem(corpus, tmp_path):
    with pytest.raises(ValueError, match=r"training needs labelled trials; 1 have no .* \(e.g. 'nolabel'\)"):
        WaveformDataset([*corpus, Trial("nolabel", None, path=corpus[0].path)], NB_SAMP, train=True)
    unlabelled = WaveformDataset([Trial("nolabel", None, path=corpus[0].path)], NB_SAMP)
    assert int(unlabelled[0][1]) == UNLABELLED
    with pytest.raises(ValueError, match="have no audio path"):
        WaveformDataset([Trial("x", "spoof")], NB_SAMP)

    def broken(signal, seed):
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match=rf"{corpus[0].path.name}: augmentation .* failed: boom"):
        WaveformDataset(corpus, NB_SAMP, train=True, augment=broken)[0]
    with pytest.raises(ValueError, match=rf"{corpus[0].path.name}: .* not a non-empty finite 1-D signal"):
        WaveformDataset(corpus, NB_SAMP, train=True, augment=lambda s, seed: s[:0])[0]


def test_conversions_are_reported_once(corpus, tmp_path):
    stereo = tmp_path / "stereo44k.wav"
    sf.write(stereo, np.zeros((4410, 2)) + 0.1, 44100)
    trials = [*corpus, dataclasses.replace(corpus[0], file_id="s", path=stereo)]
    with pytest.warns(AudioConversionWarning, match=r"1 of 10 training files .*stereo44k.wav: averaged 2 channels"):
        assert warn_conversions(trials, "training") == 1
    x, _ = WaveformDataset(trials, NB_SAMP)[len(trials) - 1]
    assert x.shape == (NB_SAMP,)  # loaded at 16 kHz mono
