"""The scorer interface every countermeasure implements, and the registry that finds installed ones.

A scorer turns audio files into one float each, **higher = more bona fide**. Scorers are found through
the ``antispoof.scorers`` entry-point group, so a third-party package adds its own with one line of
packaging metadata and no change here::

    [options.entry_points]
    antispoof.scorers =
        my-cm = my_package.module:MyScorer
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import numpy as np

from .protocols import Trial

ENTRY_POINT_GROUP = "antispoof.scorers"


class ScorerNotFoundError(LookupError):
    """No scorer of that name is installed, or its package failed to import."""


class Scorer(abc.ABC):
    """Base class of every scorer.

    Subclasses set :attr:`name`, implement :meth:`score_files`, :meth:`save` and :meth:`load`, and
    optionally :meth:`fit`. ``load`` takes the keyword options named in :attr:`runtime_options`
    (e.g. ``device``, ``batch_size``) so that the command line can pass them uniformly.
    """

    name: ClassVar[str]
    #: Keyword options :meth:`load` accepts, e.g. ``("jobs",)`` or ``("device", "batch_size")``.
    runtime_options: ClassVar[tuple[str, ...]] = ()
    #: One line for ``antispoof scorers``.
    description: ClassVar[str] = ""
    #: Score at or above which a one-line verdict says "bona fide"; None when the scorer has no
    #: meaningful fixed threshold (verdicts then need ``--threshold``).
    default_threshold: ClassVar[float | None] = None

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

    @abc.abstractmethod
    def save(self, path: str | os.PathLike) -> None:
        """Write the trained scorer to ``path`` (data and JSON only, never pickle)."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | os.PathLike | None, **options: Any) -> Scorer:
        """Read a scorer written by :meth:`save` (or an official checkpoint, where the scorer supports it).

        ``path`` is None when the user gave no model file: a scorer with default weights (AASIST) loads
        those, the others raise ValueError saying what is missing.
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
