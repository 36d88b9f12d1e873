"""Fixed-length waveform examples for the raw-waveform models, and the DataLoaders that feed them.

A :class:`WaveformDataset` reads trials with :func:`lfcc_gmm.audio.load_audio` (16 kHz mono; files that need
resampling or down-mixing are reported once, by :func:`warn_conversions`, not at every load) and returns
``(float32 tensor (nb_samp,), int64 label)``, label 1 for bona fide and 0 for spoof (the class index of the models'
outputs). In evaluation mode every example is the deterministic :func:`rawnet.functional.pad_or_truncate` view. In
training mode the optional augmentation is applied to the whole signal first (as the official RawBoost recipe
does), then a random ``nb_samp`` window is cut, or the signal is repeat-padded when shorter (SPEC §5).

Every random choice of an example is drawn from ``SeedSequence((seed, epoch, index))``: it does not depend on the
worker that loads it, on the order examples are loaded in, or on whether the run was resumed.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE, AudioConversionWarning, load_audio, probe_conversions
from lfcc_gmm.protocols import BONAFIDE, SPOOF, Trial
from rawnet.functional import pad_or_truncate, random_crop_or_pad

BONAFIDE_LABEL = 1
SPOOF_LABEL = 0
#: Label of an unlabelled trial in evaluation mode.
UNLABELLED = -1

#: ``augment(signal, seed) -> signal``: float64 1-D in, float64 1-D out, deterministic given the integer seed.
Augment = Callable[[np.ndarray, int], np.ndarray]


def trial_label(trial: Trial) -> int:
    """1 for a bona fide trial, 0 for a spoof, :data:`UNLABELLED` (-1) for a trial without a key."""
    return {BONAFIDE: BONAFIDE_LABEL, SPOOF: SPOOF_LABEL, None: UNLABELLED}[trial.key]


def warn_conversions(trials: Sequence[Trial], what: str, sample_rate: int = DEFAULT_SAMPLE_RATE) -> int:
    """Emit one :class:`~lfcc_gmm.audio.AudioConversionWarning` if some files are not ``sample_rate`` mono.

    Reads only the headers. Returns the number of such files.
    """
    converted = [
        (t.path, notes) for t in trials if t.path is not None and (notes := probe_conversions(t.path, sample_rate))
    ]
    if converted:
        path, notes = converted[0]
        warnings.warn(
            f"{len(converted)} of {len(trials)} {what} files are converted on load (e.g. {path}: {'; '.join(notes)})",
            AudioConversionWarning,
            stacklevel=2,
        )
    return len(converted)


def example_randomness(seed: int, epoch: int, index: int) -> tuple[np.random.Generator, int]:
    """The crop generator and the augmentation seed of example ``index`` in ``epoch``, independent streams."""
    crop, augment = np.random.SeedSequence((seed, epoch, index)).spawn(2)
    high, low = augment.generate_state(2, np.uint32)
    return np.random.default_rng(crop), (int(high) << 32) | int(low)


class WaveformDataset(Dataset):
    """Trials as fixed-length float32 waveforms with their labels.

    Parameters
    ----------
    trials : trials with ``path`` set; in training mode each needs a key.
    nb_samp : samples per example (the model config's ``nb_samp``).
    train : training mode (random window, augmentation) rather than the deterministic evaluation view.
    random_crop : in training mode, cut a random window from longer signals; False keeps the first ``nb_samp``
        samples, as the ASVspoof 2021 RawNet2 baseline trains.
    augment : ``augment(signal, seed) -> signal`` applied in training mode only, e.g. a
        :class:`lfcc_gmm.augment.Augmenter`; it must pickle to reach DataLoader workers.
    seed : base seed of all random choices.
    sample_rate : rate the audio is loaded at.
    """

    def __init__(
        self,
        trials: Sequence[Trial],
        nb_samp: int,
        *,
        train: bool = False,
        random_crop: bool = True,
        augment: Augment | None = None,
        seed: int = 0,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ) -> None:
        if nb_samp < 1:
            raise ValueError(f"nb_samp must be at least 1, got {nb_samp}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        missing = [t.file_id for t in trials if t.path is None]
        if missing:
            raise ValueError(f"{len(missing)} trial(s) have no audio path (e.g. {missing[0]!r})")
        self.trials = list(trials)
        self.labels = np.array([trial_label(t) for t in self.trials], dtype=np.int64)
        if train:
            unlabelled = [t.file_id for t in self.trials if t.key is None]
            if unlabelled:
                raise ValueError(
                    f"training needs labelled trials; {len(unlabelled)} have no bonafide/spoof key "
                    f"(e.g. {unlabelled[0]!r})"
                )
        self.nb_samp = nb_samp
        self.train = train
        self.random_crop = random_crop
        self.augment = augment
        self.seed = seed
        self.sample_rate = sample_rate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the random choices of ``epoch`` (call before iterating; workers copy the dataset per epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.trials)

    def waveform(self, index: int) -> np.ndarray:
        """The float64 example of ``index`` in the current epoch, before conversion to a tensor."""
        trial = self.trials[index]
        if trial.path is None:  # refused by __init__; only a trial list changed afterwards gets here
            raise ValueError(f"trial {trial.file_id!r} has no audio path")
        signal = load_audio(trial.path, self.sample_rate, warn=False).signal
        if not self.train:
            return pad_or_truncate(signal, self.nb_samp)
        crop_rng, augment_seed = example_randomness(self.seed, self.epoch, index)
        if self.augment is not None:
            try:
                signal = np.asarray(self.augment(signal, augment_seed), dtype=np.float64)
            except Exception as exc:
                raise ValueError(f"{trial.path}: augmentation {self.augment!r} failed: {exc}") from exc
            if signal.ndim != 1 or signal.size == 0 or not np.isfinite(signal).all():
                raise ValueError(
                    f"{trial.path}: augmentation {self.augment!r} returned {signal.shape} samples that are not a "
                    "non-empty finite 1-D signal"
                )
        if self.random_crop:
            return random_crop_or_pad(signal, self.nb_samp, crop_rng)
        return pad_or_truncate(signal, self.nb_samp)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.waveform(index).astype(np.float32))
        return x, torch.tensor(self.labels[index], dtype=torch.int64)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed NumPy's and Python's global generators from the worker's torch seed.

    The dataset's own choices never use global generators; this keeps any that a user's augmentation might touch
    reproducible too (the torch seed of a worker derives from the main process's generator).
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)  # noqa: NPY002 (the global generator is the point here)
    random.seed(worker_seed)


def make_loader(
    dataset: WaveformDataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    drop_last: bool = False,
    workers: int = 0,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset``, or over this process's shard of it under DistributedDataParallel.

    The order comes from a :class:`~torch.utils.data.DistributedSampler` (also for a single process), shuffled per
    epoch from ``seed`` when ``shuffle``; call :func:`set_loader_epoch` before each epoch. Without shuffling the
    shards are interleaved and padded by repeating the first examples, so every process runs the same number of
    batches (:func:`shard_indices` gives the dataset index of each example a process sees).

    Parameters
    ----------
    dataset : the examples.
    batch_size : examples per batch and process.
    shuffle : shuffle every epoch (training).
    drop_last : drop the last incomplete batch (the official training loaders do).
    workers : loader processes; 0 loads in the main process.
    seed : seed of the shuffle.
    num_replicas, rank : the process group's size and this process's rank.
    pin_memory : page-locked batches, for faster copies to a GPU.
    """
    sampler: DistributedSampler[int] = DistributedSampler(
        dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=seed_worker if workers > 0 else None,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of a :func:`make_loader` loader's shuffle and of its dataset's random choices."""
    # DataLoader types its sampler and dataset as the base classes; make_loader's are these.
    cast(DistributedSampler, loader.sampler).set_epoch(epoch)
    cast(WaveformDataset, loader.dataset).set_epoch(epoch)


def shard_indices(loader: DataLoader) -> list[int]:
    """Dataset indices of the examples this process's :func:`make_loader` loader yields, in order."""
    indices: list[Any] = list(loader.sampler)
    if loader.drop_last and loader.batch_size is not None:  # drop_last implies a batch size
        indices = indices[: len(indices) - len(indices) % loader.batch_size]
    return [int(i) for i in indices]
