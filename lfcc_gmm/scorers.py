"""The scorer interface every countermeasure implements, and the registry that finds installed ones.

A scorer turns audio files into one float each, **higher = more bona fide**. :func:`load_scorer` gives a ready
(trained) scorer from its name, a model file or None, and runtime options, checked against what the scorer takes;
:func:`create_scorer` an untrained one to ``fit``. Scorers are found through
the ``antispoof.scorers`` entry-point group, so a third-party package adds its own with one line of
packaging metadata and no change here::

    [options.entry_points]
    antispoof.scorers =
        my-cm = my_package.module:MyScorer
"""

from __future__ import annotations

import abc
import inspect
import os
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .protocols import Trial
from .segments import SegmentGrid, Timeline, segments_from_spans
from .verdicts import WHOLE_FILE, Threshold

if TYPE_CHECKING:
    from .analysis import Assessment
    from .speech import SpeechActivity

ENTRY_POINT_GROUP = "antispoof.scorers"


class ScorerNotFoundError(LookupError):
    """No scorer of that name is installed, or its package failed to import."""


class ScorerOptionError(ValueError):
    """Options that do not fit the scorer: one it does not take, or no model file where it needs one.

    A usage error (exit code 2 on the command line), not a problem with the data.
    """


class Scorer(abc.ABC):
    """Base class of every scorer.

    Subclasses set :attr:`name`, implement :meth:`score_files`, :meth:`save` and :meth:`load`, and
    optionally :meth:`fit`. ``load`` takes the keyword options named in :attr:`runtime_options`
    (e.g. ``device``, ``batch_size``) and :attr:`file_options`, so that :func:`load_scorer` and the command
    line can pass them uniformly. A scorer that needs a model file raises :class:`ScorerOptionError` from
    ``load(None)``.

    Attributes
    ----------
    training_summary_ : dict
        Set by ``fit`` where the scorer records what its training used and produced (JSON-compatible; the
        keys are the scorer's own).
    """

    training_summary_: dict[str, Any]

    name: ClassVar[str]
    #: Keyword options :meth:`load` accepts that set how the scorer runs, e.g. ``("jobs",)`` or
    #: ``("device", "batch_size")``.
    runtime_options: ClassVar[tuple[str, ...]] = ()
    #: Keyword options :meth:`load` accepts that say what a weights file holds when the file does not describe
    #: itself (e.g. the variant and config of a bare official state_dict).
    file_options: ClassVar[tuple[str, ...]] = ()
    #: One line for ``antispoof scorers``.
    description: ClassVar[str] = ""
    #: Score at or above which a verdict says "bona fide"; None when the scorer has no meaningful fixed threshold
    #: (verdicts then need ``--threshold``). :meth:`threshold` says what it means.
    default_threshold: ClassVar[float | None] = None
    #: What :attr:`default_threshold` is, for a person reading a verdict (see :meth:`threshold`).
    threshold_meaning: ClassVar[str] = "the scorer's default threshold"

    def fit(self, trials: Sequence[Trial], **options: Any) -> Scorer:
        """Train on labelled trials (each with ``path`` and ``key``); returns ``self``."""
        raise NotImplementedError(f"scorer {self.name!r} cannot be trained through the common interface")

    @abc.abstractmethod
    def score_files(self, paths: Sequence[str | os.PathLike]) -> np.ndarray:
        """Score audio files; one float per file, higher = more bona fide."""

    def score_signals(self, signals: Sequence[np.ndarray], sample_rate: int = 16000) -> np.ndarray:
        """Score in-memory float64 mono signals at ``sample_rate`` (e.g. degraded copies that are never
        written to disk); one float per signal. Optional: scorers that support it override this."""
        raise NotImplementedError(f"scorer {self.name!r} cannot score in-memory signals")

    # -- whole-file verdicts: timelines and assessments (lfcc_gmm.analysis) ---------------------------------------
    @property
    def mode(self) -> str:
        """How the file scores read a file: ``"whole file"``, or ``"official crop"`` for a scorer that crops."""
        return WHOLE_FILE

    @property
    def window_s(self) -> float | None:
        """The model's input window in seconds, for a scorer that pads shorter files (None: no fixed window)."""
        return None

    def threshold(self) -> Threshold | None:
        """The default verdict threshold and what it means; None when the scorer has none."""
        value = self.default_threshold
        return None if value is None else Threshold(value, self.threshold_meaning)

    def default_grid(self) -> SegmentGrid:
        """The segment grid of a timeline unless ``--segment-s``/``--hop-s`` say otherwise."""
        return SegmentGrid()

    def score_timelines(
        self,
        signals: Sequence[np.ndarray],
        speech: Sequence[SpeechActivity],
        grid: SegmentGrid | None,
        sample_rate: int = 16000,
    ) -> list[Timeline]:
        """The file score and segment scores of each mono signal; ``grid`` None leaves the segments out.

        This default scores each segment as a signal of its own (:meth:`score_signals`); scorers override it to
        share work between the file and its segments. ``speech`` is each signal's activity, for scorers that
        weigh their windows by it. Raises ``NotImplementedError`` where :meth:`score_signals` does.
        """
        scores = self.score_signals(signals, sample_rate)
        timelines = []
        for signal, score in zip(signals, scores, strict=True):
            if grid is None:
                timelines.append(Timeline(float(score)))
                continue
            spans = grid.spans(signal.shape[0], sample_rate)
            values = ([score] if len(spans) == 1 and spans[0, 1] == signal.shape[0]
                      else self.score_signals([signal[a:b] for a, b in spans], sample_rate))
            timelines.append(Timeline(float(score), segments_from_spans(spans, values, sample_rate)))
        return timelines

    def assess_files(self, paths: Sequence[str | os.PathLike], grid: SegmentGrid | None) -> list[Assessment | str]:
        """Check and score files: per path its :class:`~lfcc_gmm.analysis.Assessment`, or why it failed.

        The default runs :func:`lfcc_gmm.analysis.assess_paths` here; a scorer with its own parallelism (the
        ``jobs`` of lfcc-gmm) overrides it to spread the files over its workers.
        """
        from .analysis import assess_paths

        return assess_paths(self, paths, grid)

    @abc.abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Write the trained scorer to ``path`` (data and JSON only, never pickle)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | os.PathLike | None, **options: Any) -> Scorer:
        """Read a scorer written by :meth:`save` (or an official checkpoint, where the scorer supports it).

        ``path`` is None when the user gave no model file: a scorer with default weights (AASIST) loads
        those, the others raise :class:`ScorerOptionError` saying what is missing.
        """


def available_scorers() -> dict[str, EntryPoint]:
    """Installed scorers by name (entry points of ``antispoof.scorers``), without importing them."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def get_scorer(name: str) -> type[Scorer]:
    """Import and return the scorer class registered as ``name``.

    Raises
    ------
    ScorerNotFoundError
        Unknown name (the message lists the installed ones), a package that fails to import (e.g. the
        deep scorers without torch), or an entry point that is not a :class:`Scorer` subclass.
    """
    scorers = available_scorers()
    if name not in scorers:
        known = ", ".join(sorted(scorers)) or "none"
        raise ScorerNotFoundError(f"no scorer named {name!r} is installed (installed: {known})")
    try:
        cls = scorers[name].load()
    except (ImportError, AttributeError) as exc:
        raise ScorerNotFoundError(
            f"scorer {name!r} ({scorers[name].value}) cannot be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Scorer)):
        raise ScorerNotFoundError(f"entry point {name!r} ({scorers[name].value}) is not a Scorer subclass")
    return cls


def _flags(options: Sequence[str]) -> str:
    # Named as on the command line, which is where most of these errors are read.
    return ", ".join("--" + option.replace("_", "-") for option in options) or "none"


def load_scorer(name: str, path: str | os.PathLike | None = None, *, client: Any = None, **options: Any) -> Scorer:
    """A ready scorer: the class registered as ``name`` loaded from ``path`` with ``options``.

    Parameters
    ----------
    name : a registered scorer (see :func:`available_scorers`).
    path : its model or weights file; None for the scorer's default weights, where it has any.
    client : a ``distributed.Client`` to score on (joblib-parallel scorers only); ``jobs`` is then all of the
        cluster's worker threads.
    **options : :attr:`Scorer.runtime_options` and :attr:`Scorer.file_options` of the scorer; None means "not
        given" and leaves the scorer's default.

    Raises
    ------
    ScorerNotFoundError
        ``name`` is not installed or cannot be imported.
    ScorerOptionError
        An option the scorer does not take (named as a command-line flag), a cluster for a scorer that cannot
        use one, or no ``path`` for a scorer that needs a model file.
    """
    cls = get_scorer(name)
    given = {key: value for key, value in options.items() if value is not None}
    if client is not None:
        if "jobs" not in cls.runtime_options:
            raise ScorerOptionError(f"a Dask cluster (--backend dask) runs joblib-parallel scorers such as lfcc-gmm; "
                                    f"{name!r} is not one")
        from .distributed import worker_threads

        given["jobs"] = worker_threads(client)
    accepted = (*cls.runtime_options, *cls.file_options)
    unsupported = sorted(set(given) - set(accepted))
    if unsupported:
        raise ScorerOptionError(f"scorer {name!r} does not take {_flags(unsupported)} (it takes: {_flags(accepted)})")
    return cls.load(path, **given)


def create_scorer(name: str, **params: Any) -> Scorer:
    """An untrained scorer registered as ``name``, constructed with ``params`` (then call its ``fit``).

    Raises
    ------
    ScorerNotFoundError
        ``name`` is not installed or cannot be imported.
    ScorerOptionError
        A parameter the scorer's constructor does not take.
    """
    cls = get_scorer(name)
    parameters = inspect.signature(cls).parameters.values()
    named = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(params) - set(named))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in parameters):
        raise ScorerOptionError(f"scorer {name!r} has no parameter {', '.join(map(repr, unknown))} "
                                f"(its parameters: {', '.join(named) or 'none'})")
    return cls(**params)
