"""The LFCC-GMM countermeasure (ASVspoof 2019 "B2" / 2021 LA-DF baselines) as a registered scorer.

Two diagonal GMMs, one trained on bona fide frames and one on spoof frames; the score of an utterance
is the mean frame log-likelihood under the bona fide model minus that under the spoof model (SPEC §4),
so higher = more bona fide and 0 is the equal-prior decision point.

Model files are a single ``.npz`` holding the two GMMs' arrays and a JSON metadata string; they are
read with ``allow_pickle=False`` so opening one can never run code.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from . import __version__
from .atomic import atomic_write
from .audio import AudioConversionWarning, AudioError, probe_conversions, resample
from .augment import Augmenter
from .blas import single_blas_thread
from .extraction import augmented_features, extract_features, iter_file_lfcc
from .features import get_config, iter_lfcc, lfcc
from .gmm import Design, DiagonalGMM, GMMParams, design, log_likelihood
from .protocols import BONAFIDE, SPOOF, Trial, audio_paths
from .scorers import Scorer, ScorerOptionError
from .segments import SegmentGrid, Timeline, frame_segment_means, segments_from_spans
from .verdicts import Threshold

MODEL_FORMAT = "antispoof-lfcc-gmm"
_CLASSES = (BONAFIDE, SPOOF)
# Long recordings are scored block by block so memory stays bounded (issue: 1-hour files).
_BLOCK_SECONDS = 30.0


class ModelFileError(ValueError):
    """A model file that is not an LFCC-GMM model written by this toolkit (or is damaged)."""


def frame_llrs(chunks: Iterable[np.ndarray], bonafide: GMMParams | Design,
               spoof: GMMParams | Design) -> tuple[float, np.ndarray]:
    """Mean frame log-likelihood ratio (bona fide − spoof) over LFCC rows arriving in chunks, and each frame's
    ratio (float64, one per row)."""
    totals = np.zeros(2)
    ratios = []
    for rows in chunks:
        bona, spoofed = log_likelihood(rows, bonafide), log_likelihood(rows, spoof)
        # Summed per class, as the official baseline does: the file score does not depend on the per-frame part.
        totals += bona.sum(), spoofed.sum()
        ratios.append(bona - spoofed)
    frames = np.concatenate(ratios) if ratios else np.zeros(0)
    return float((totals[0] - totals[1]) / frames.shape[0]), frames


def frames_llr(chunks: Iterable[np.ndarray], bonafide: GMMParams | Design, spoof: GMMParams | Design) -> float:
    """Mean frame log-likelihood ratio (bona fide − spoof) over LFCC rows arriving in chunks."""
    return frame_llrs(chunks, bonafide, spoof)[0]


def file_score(path: str | os.PathLike, bonafide: GMMParams | Design, spoof: GMMParams | Design,
               preset: str) -> float:
    """Mean frame log-likelihood ratio of one file; a long 16 kHz file is streamed with bounded memory."""
    chunks = iter_file_lfcc(path, preset, block_seconds=_BLOCK_SECONDS, dtype=np.float32)
    return frames_llr(chunks, bonafide, spoof)


def _score_group(paths: Sequence[str | os.PathLike], bonafide: Design, spoof: Design, preset: str) -> list[float]:
    # Parallelism comes from ``jobs`` (one file per core), not from BLAS threads. Conversions are reported by
    # score_files in the caller's process; a worker's warnings would reach the terminal raw, beside its own report.
    with single_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        return [file_score(p, bonafide, spoof, preset) for p in paths]


def _warn_conversions(paths: Sequence[str | os.PathLike]) -> None:
    for path in paths:
        notes = probe_conversions(path)
        if notes:
            warnings.warn(f"{path}: {'; '.join(notes)}", AudioConversionWarning, stacklevel=3)


class LFCCGMMScorer(Scorer):
    """LFCC front end + bona fide / spoof GMMs, trained and scored on the CPU without torch.

    Parameters
    ----------
    preset : {"asvspoof2019", "asvspoof2021"}
        LFCC configuration (see :data:`lfcc_gmm.features.PRESETS`).
    n_components : int
        Components per GMM (official: 512).
    max_iter : int
        EM iterations (official: 10).
    init_samples : int
        Frames drawn to seed each GMM.
    random_state : int
        Seed; the bona fide and spoof GMMs use ``random_state`` and ``random_state + 1``.
    jobs : int
        Processes for feature extraction and scoring.
    cache_dir : path-like, optional
        On-disk LFCC cache used during training.
    augment : str, optional
        :class:`lfcc_gmm.augment.Augmenter` spec (e.g. ``"rawboost,noise,reverb,tel8k"``); each training
        file then also contributes the frames of ``augment_copies`` augmented copies, drawn
        deterministically from (``random_state``, copy, file index).
    augment_copies : int
        Augmented copies per training file.

    Attributes
    ----------
    bonafide_gmm_, spoof_gmm_ : DiagonalGMM
    training_summary_ : dict
        Files, frames and failures per class, recorded in the model file.
    """

    # Set by fit/load (through setattr, per class): declared for the type checker only.
    bonafide_gmm_: DiagonalGMM
    spoof_gmm_: DiagonalGMM
    training_summary_: dict[str, Any]

    name: ClassVar[str] = "lfcc-gmm"
    description: ClassVar[str] = "LFCC + two diagonal GMMs (official ASVspoof 2019/2021 baseline); CPU, no torch"
    runtime_options: ClassVar[tuple[str, ...]] = ("jobs",)
    default_threshold: ClassVar[float] = 0.0
    threshold_meaning: ClassVar[str] = (
        "0, where the two GMMs are equally likely: not calibrated, as this model was trained without a dev set "
        "(train with --dev-protocol/--dev-list to set its threshold at the dev set's equal error rate)")

    def __init__(
        self,
        preset: str = "asvspoof2019",
        n_components: int = 512,
        max_iter: int = 10,
        init_samples: int = 100_000,
        random_state: int = 0,
        jobs: int = 1,
        cache_dir: str | os.PathLike | None = None,
        augment: str | None = None,
        augment_copies: int = 1,
    ):
        self.preset = preset
        self.n_components = n_components
        self.max_iter = max_iter
        self.init_samples = init_samples
        self.random_state = random_state
        self.jobs = jobs
        self.cache_dir = cache_dir
        self.augment = augment
        self.augment_copies = augment_copies

    def untrained_gmm(self, class_index: int) -> DiagonalGMM:
        """The GMM :meth:`fit` trains for class ``class_index`` (0 bona fide, 1 spoof), seeded ``random_state +
        class_index``."""
        return DiagonalGMM(self.n_components, max_iter=self.max_iter, init_samples=self.init_samples,
                           random_state=self.random_state + class_index)

    def fit(
        self,
        trials: Sequence[Trial],
        *,
        progress: Callable[[str, int, int], None] | None = None,
        client: Any = None,
        dev_trials: Sequence[Trial] | None = None,
        **options: Any,
    ) -> LFCCGMMScorer:
        """Extract LFCCs of every labelled trial and fit one GMM per class.

        Files that fail to load are skipped and listed in ``training_summary_["failures"]``.
        ``progress(stage, done, total)`` is called during extraction ("features"), EM ("bonafide",
        "spoof") and the dev scoring ("dev"). With a ``distributed.Client`` as ``client``, both run on that Dask
        cluster (:func:`lfcc_gmm.distributed.fit_on_cluster`). With labelled ``dev_trials``, the model's verdict
        threshold is their equal error rate point, recorded in ``training_summary_["dev"]`` (files, failures,
        EER, threshold) and in the model file.
        """
        self._fit_gmms(trials, progress, client)
        if dev_trials is not None:
            self.training_summary_["dev"] = self._dev_threshold(dev_trials, progress)
        return self

    def _dev_threshold(self, trials: Sequence[Trial], progress: Callable[[str, int, int], None] | None,
                       ) -> dict[str, Any]:
        """EER and EER threshold of this model on labelled dev trials (unreadable files skipped, counted)."""
        from .batch import score_isolating_failures
        from .metrics import compute_eer

        if any(t.key not in _CLASSES for t in trials):
            raise ValueError("dev trials need bonafide/spoof keys to set a threshold")
        outcomes = []
        for start in range(0, len(trials), 64):
            outcomes += score_isolating_failures(self, trials[start : start + 64])
            if progress is not None:
                progress("dev", min(start + 64, len(trials)), len(trials))
        scored = [o for o in outcomes if o.score is not None]
        scores = {key: [float(o.score) for o in scored if o.trial.key == key and o.score is not None]
                  for key in _CLASSES}
        if not (scores[BONAFIDE] and scores[SPOOF]):
            raise ValueError("the dev set needs scorable bona fide and spoof files to set a threshold")
        eer, threshold = compute_eer(scores[BONAFIDE], scores[SPOOF])
        return {"files": len(scored), "failures": len(outcomes) - len(scored), "eer": float(eer),
                "threshold": float(threshold)}

    def _fit_gmms(self, trials: Sequence[Trial], progress: Callable[[str, int, int], None] | None,
                  client: Any) -> None:
        get_config(self.preset)  # fail fast on a bad preset or augmentation spec, before any long work
        if self.augment:
            Augmenter(self.augment)
        unlabelled = [t.file_id for t in trials if t.key not in _CLASSES]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} training trials have no bonafide/spoof key (e.g. {unlabelled[0]})")
        paths = audio_paths(trials)
        if client is not None:
            from .distributed import fit_on_cluster

            fit_on_cluster(self, trials, client, progress=progress)
            return
        extraction = extract_features(
            paths, self.preset, jobs=self.jobs, cache_dir=self.cache_dir,
            on_error="collect", progress=None if progress is None else lambda d, n: progress("features", d, n),
        )
        summary: dict[str, Any] = {"preset": self.preset, "failures": [
            {"file_id": t.file_id, "path": str(t.path), "reason": result.error}
            for t, result in zip(trials, extraction, strict=True) if not result.ok
        ]}
        per_file = [[r.features] if r.features is not None else [] for r in extraction]
        if self.augment:
            good = [i for i, r in enumerate(extraction) if r.ok]
            copies = augmented_features([paths[i] for i in good], good, self.augment, self.augment_copies,
                                        self.preset, self.random_state, self.jobs,
                                        None if progress is None else lambda d, n: progress("augment", d, n))
            for i, extra in zip(good, copies, strict=True):
                per_file[i].extend(extra)
            summary["augment"] = {"spec": self.augment, "copies": self.augment_copies}
        for offset, key in enumerate(_CLASSES):
            files = [f for t, f in zip(trials, per_file, strict=True) if t.key == key and f]
            if not files:
                raise ValueError(f"no usable {key} training files: both classes are needed")
            frames = [rows for f in files for rows in f]
            summary[key] = {"files": len(files), "frames": int(sum(f.shape[0] for f in frames))}
            gmm = self.untrained_gmm(offset)
            if progress is not None:
                gmm.set_params(callback=lambda it, _ll, k=key: progress(k, it, self.max_iter))
            gmm.fit(frames)
            gmm.set_params(callback=None)
            setattr(self, f"{key}_gmm_", gmm)
        self.training_summary_ = summary

    def threshold(self) -> Threshold:
        """The equal error rate point on the dev set given at training, else 0 (see :attr:`threshold_meaning`)."""
        dev = getattr(self, "training_summary_", {}).get("dev")
        if dev is None:
            return Threshold(self.default_threshold, self.threshold_meaning)
        return Threshold(dev["threshold"], f"the equal error rate point of this model on its dev set at training "
                                           f"({dev['files']} files, EER {100 * dev['eer']:.2f} %)")

    def _designs(self) -> tuple[Design, Design]:
        # Laying the GMMs out for scoring costs about as much as scoring a short file: once per call.
        return design(self.bonafide_gmm_.params_), design(self.spoof_gmm_.params_)

    def score_files(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Mean frame log-likelihood ratio (bona fide − spoof) of each file.

        Files that are resampled or down-mixed on load are reported as :class:`AudioConversionWarning`, one per file.
        """
        bonafide, spoof = self._designs()
        _warn_conversions(paths)
        if self.jobs == 1 or len(paths) == 1:
            return np.asarray(_score_group(paths, bonafide, spoof, self.preset))
        from joblib import Parallel, delayed, effective_n_jobs

        # One task per worker and group of files, so the GMM designs are shipped once per group, not per file.
        # effective_n_jobs resolves -1 (all cores) and, under joblib's Dask backend, the cluster's threads.
        n = effective_n_jobs(self.jobs)
        groups = [paths[i::n] for i in range(n)]
        results = Parallel(n_jobs=n)(delayed(_score_group)(g, bonafide, spoof, self.preset) for g in groups)
        scores = np.empty(len(paths))
        for i, values in enumerate(results):
            scores[i::n] = values
        return scores

    def score_signals(self, signals: Sequence[np.ndarray], sample_rate: int = 16000) -> np.ndarray:
        """Mean frame log-likelihood ratio of in-memory signals (resampled to 16 kHz if needed)."""
        bonafide, spoof = self._designs()
        scores = []
        with single_blas_thread():  # as in score_files: small products, and the same rounding
            for signal in signals:
                x = resample(np.asarray(signal, dtype=np.float64), sample_rate, 16000)
                scores.append(frames_llr([lfcc(x, preset=self.preset, dtype=np.float32)], bonafide, spoof))
        return np.asarray(scores)

    def score_timelines(
        self,
        signals: Sequence[np.ndarray],
        speech: Sequence[Any],
        grid: SegmentGrid | None,
        sample_rate: int = 16000,
    ) -> list[Timeline]:
        """The mean frame log-likelihood ratio of each signal, and its mean over the frames of each segment.

        One pass computes every frame's ratio; the file score sums them per class exactly as :meth:`score_files`
        does, and the segments are means over the frames centred in them
        (:func:`~lfcc_gmm.segments.frame_segment_means`), so they cost a cumulative sum. Long signals go through
        the LFCC in blocks, as :func:`file_score` streams files. ``speech`` is not used: the baseline averages
        over every frame, as the official one.
        """
        bonafide, spoof = self._designs()
        config = get_config(self.preset)
        length, hop = config.frame_lengths(16000)
        block = int(_BLOCK_SECONDS * 16000)
        timelines = []
        with single_blas_thread():  # as in score_files: small products, and the same rounding
            for signal in signals:
                x = resample(np.asarray(signal, dtype=np.float64), sample_rate, 16000)
                blocks = (x[start : start + block] for start in range(0, x.shape[0], block))
                try:
                    score, ratios = frame_llrs(iter_lfcc(blocks, 16000, config, np.float32), bonafide, spoof)
                except ValueError as exc:  # a file's reason, as file_score gives it
                    raise AudioError("the signal", f"too short for LFCC: {exc}") from exc
                segments: tuple = ()
                if grid is not None:
                    spans = grid.spans(x.shape[0], 16000)
                    centres = np.arange(ratios.shape[0]) * hop + length / 2
                    segments = segments_from_spans(spans, frame_segment_means(ratios, centres, spans), 16000)
                timelines.append(Timeline(score, segments))
        return timelines

    def assess_files(self, paths: Sequence[str | os.PathLike], grid: SegmentGrid | None) -> list[Any]:
        """:meth:`Scorer.assess_files` spread over ``jobs`` processes, a group of files each."""
        from .analysis import assess_paths

        if self.jobs == 1 or len(paths) <= 1:
            return assess_paths(self, paths, grid)
        from joblib import Parallel, delayed, effective_n_jobs

        n = min(effective_n_jobs(self.jobs), len(paths))
        groups = [paths[i::n] for i in range(n)]
        single = self._single_process_copy()
        results = Parallel(n_jobs=n)(delayed(assess_paths)(single, g, grid) for g in groups)
        out: list[Any] = [None] * len(paths)
        for i, values in enumerate(results):
            out[i::n] = values
        return out

    def _single_process_copy(self) -> LFCCGMMScorer:
        # A worker never forks again: the same model with jobs=1 (a shallow copy shares the GMMs).
        single = copy.copy(self)
        single.jobs = 1
        return single

    def metadata(self) -> dict[str, Any]:
        """What the model file records besides the arrays."""
        return {
            "format": MODEL_FORMAT,
            "format_version": 1,
            "antispoof_version": __version__,
            "preset": self.preset,
            "n_components": self.n_components,
            "max_iter": self.max_iter,
            "init_samples": self.init_samples,
            "random_state": self.random_state,
            "augment": self.augment,
            "augment_copies": self.augment_copies,
            "feature_dim": int(self.bonafide_gmm_.n_features_in_),
            "training": self.training_summary_,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write both GMMs and the metadata to one ``.npz`` file, atomically."""
        arrays = {f"{key}_{name}": value for key in _CLASSES
                  for name, value in getattr(self, f"{key}_gmm_").to_arrays().items()}
        arrays["metadata"] = np.array(json.dumps(self.metadata()))
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike | None, **options: Any) -> LFCCGMMScorer:
        """Read a model written by :meth:`save`; ``options`` (``jobs``) set runtime parameters."""
        if path is None:
            raise ScorerOptionError("the lfcc-gmm scorer needs a model file (--model), made by "
                                    "`antispoof train lfcc-gmm`")
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path}: not an LFCC-GMM model file ({exc})") from exc
        try:
            meta = json.loads(str(arrays.pop("metadata")))
        except KeyError:
            raise ModelFileError(f"{path}: no metadata; not written by antispoof") from None
        if meta.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{path}: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
        scorer = cls(preset=meta["preset"], n_components=meta["n_components"], max_iter=meta["max_iter"],
                     init_samples=meta["init_samples"], random_state=meta["random_state"],
                     augment=meta.get("augment"), augment_copies=meta.get("augment_copies", 1), **options)
        for key in _CLASSES:
            part = {name: arrays[f"{key}_{name}"] for name in GMMParams._fields}
            gmm = DiagonalGMM.from_arrays(part)
            if gmm.n_features_in_ != meta["feature_dim"]:
                raise ModelFileError(f"{path}: {key} GMM has {gmm.n_features_in_} dims, metadata says "
                                     f"{meta['feature_dim']}")
            setattr(scorer, f"{key}_gmm_", gmm)
        scorer.training_summary_ = meta.get("training", {})
        return scorer
