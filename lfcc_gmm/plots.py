"""Figures for comparing countermeasures: DET curves on probit axes and score histograms, saved as PNG.

matplotlib is imported inside the functions and drives an Agg canvas directly (no display, no pyplot
global state), so importing this module stays cheap. Figures are deterministic: the same scores give the
same PNG bytes.

``systems`` arguments map a system name to its labelled scores: any object with ``scores``, ``keys`` and
``attacks`` (``attacks`` may be None), such as :class:`lfcc_gmm.report.SystemScores` or
:class:`lfcc_gmm.scorefiles.LabelledScores`. Higher score = more bona fide.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy.special import ndtri

from .atomic import atomic_write
from .metrics import bonafide_mask, compute_eer, det_points

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Error rates (%) that may label the DET axes; those inside the plotted range are used.
_DET_TICKS_PERCENT = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40, 60, 80, 90, 95,
                      98, 99)
# Below 1e-5 a DET curve says nothing any ASVspoof set can measure.
_DET_FLOOR = float(ndtri(1e-5))


class DetCurve(NamedTuple):
    """What :func:`det_figure` draws for one system.

    ``x``/``y`` are probit(FAR)/probit(FRR) of the operating points (:func:`lfcc_gmm.metrics.det_points`);
    the EER marker sits on the diagonal at (probit(eer), probit(eer)), absent when the EER is 0.
    """

    x: np.ndarray
    y: np.ndarray
    eer: float
    eer_probit: float


def _split(data: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(data.scores, dtype=np.float64)
    bona = bonafide_mask(data.keys)
    return scores[bona], scores[~bona]


def det_curves(systems: Mapping[str, Any]) -> dict[str, DetCurve]:
    """DET coordinates and the EER point of every system, in the order given."""
    curves = {}
    for name, data in systems.items():
        bona, spoof = _split(data)
        x, y = det_points(bona, spoof)
        eer = compute_eer(bona, spoof)[0]
        curves[name] = DetCurve(x, y, eer, float(ndtri(eer)))
    return curves


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _det_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    # Probit spacing shrinks towards small rates: skip ticks that would print over their neighbour.
    gap = (high - low) / 12
    positions: list[float] = []
    labels: list[str] = []
    for percent in reversed(_DET_TICKS_PERCENT):
        position = float(ndtri(percent / 100))
        if low <= position <= high and (not positions or positions[-1] - position >= gap):
            positions.append(position)
            labels.append(f"{percent:g}")
    return positions, labels


def det_figure(systems: Mapping[str, Any], title: str = "DET curves") -> Figure:
    """DET curves of several systems on probit axes, ticks in %, each system's EER marked on the diagonal.

    Lines carry ``gid`` ``"det:NAME"`` and markers ``"eer:NAME"``, so the plotted data can be read back.
    """
    curves = det_curves(systems)
    figure = _new_figure(6.0, 6.0)
    axes = figure.add_subplot()
    finite_eer = [c.eer_probit for c in curves.values() if np.isfinite(c.eer_probit)]
    lows = [np.min(np.concatenate((c.x, c.y))) for c in curves.values() if c.x.size] + finite_eer
    low = max(min(lows, default=ndtri(0.01)) - 0.1, _DET_FLOOR)
    # Show at least up to 50 %, and well past the worst EER so a weak system's curve is not cut at its EER.
    high = min(max(ndtri(0.5), max(finite_eer, default=-np.inf) + 0.6), ndtri(0.95))
    axes.plot([low, high], [low, high], color="0.75", linestyle=":", linewidth=1, label="FAR = FRR")
    for i, (name, curve) in enumerate(curves.items()):
        color = f"C{i % 10}"
        axes.plot(curve.x, curve.y, color=color, linewidth=1.5, gid=f"det:{name}",
                  label=f"{name} (EER {100 * curve.eer:.2f} %)")
        if np.isfinite(curve.eer_probit):
            axes.plot([curve.eer_probit], [curve.eer_probit], marker="o", markersize=6, linestyle="none",
                      markerfacecolor="white", markeredgecolor=color, markeredgewidth=1.5, gid=f"eer:{name}")
    positions, labels = _det_ticks(low, high)
    axes.set_xticks(positions, labels)
    axes.set_yticks(positions, labels)
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_aspect("equal")
    axes.grid(True, color="0.9")
    axes.set_xlabel("false acceptance rate: spoofs accepted (%)")
    axes.set_ylabel("false rejection rate: bona fide rejected (%)")
    axes.set_title(title)
    # DET curves run from top left to bottom right: the bottom-left corner is the free one.
    axes.legend(loc="lower left", fontsize="small")
    return figure


def histogram_figure(systems: Mapping[str, Any], by_attack: bool = False, bins: int = 60) -> Figure:
    """Score histograms, one panel per system: bona fide against spoof (or each attack), EER threshold dashed.

    Densities, so a class with few trials stays visible; each panel has its own bins since systems' scores
    live on different scales.
    """
    from matplotlib import colormaps

    figure = _new_figure(8.0, 0.4 + 2.6 * len(systems))
    panels = figure.subplots(len(systems), 1, squeeze=False)[:, 0]
    for axes, (name, data) in zip(panels, systems.items(), strict=True):
        scores = np.asarray(data.scores, dtype=np.float64)
        bona = bonafide_mask(data.keys)
        edges = np.histogram_bin_edges(scores, bins=bins)
        axes.hist(scores[bona], edges, density=True, histtype="stepfilled", alpha=0.35, color="C0",
                  label=f"bona fide ({np.count_nonzero(bona):,})")
        spoof = scores[~bona]
        if by_attack and data.attacks is not None:
            attacks = np.asarray(data.attacks)[~bona]
            names = np.unique(attacks)
            palette = colormaps["tab10" if names.size <= 10 else "tab20"]
            for i, attack in enumerate(names):
                chosen = spoof[attacks == attack]
                axes.hist(chosen, edges, density=True, histtype="step", linewidth=1.2, color=palette(i % 20),
                          label=f"{attack} ({chosen.size:,})")
        else:
            axes.hist(spoof, edges, density=True, histtype="step", linewidth=1.5, color="C3",
                      label=f"spoof ({spoof.size:,})")
        threshold = compute_eer(scores[bona], spoof)[1]
        axes.axvline(threshold, color="0.3", linestyle="--", linewidth=1, label="EER threshold")
        axes.set_title(name)
        axes.set_ylabel("density")
        axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    panels[-1].set_xlabel("score (higher = more bona fide)")
    return figure


#: Columns of the waveform envelope in :func:`timeline_figure`: enough for a sharp picture at any length.
_ENVELOPE_COLUMNS = 2000


def _envelope(signal: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time, min, max) of the signal in at most :data:`_ENVELOPE_COLUMNS` columns: a long recording is drawn as
    its envelope, not as millions of points."""
    x = np.asarray(signal, dtype=np.float64)
    width = max(1, -(-x.shape[0] // _ENVELOPE_COLUMNS))
    n = -(-x.shape[0] // width)
    padded = np.concatenate([x, np.full(n * width - x.shape[0], x[-1] if x.size else 0.0)]).reshape(n, width)
    return (np.arange(n) * width + width / 2) / sample_rate, padded.min(axis=1), padded.max(axis=1)


def timeline_figure(signal: np.ndarray, sample_rate: int, speech: Any, result: Any) -> Figure:
    """A recording's timeline: the waveform above, the segment scores below, non-speech shaded in both.

    Parameters
    ----------
    signal : the mono samples that were scored.
    sample_rate : their rate.
    speech : its :class:`lfcc_gmm.speech.SpeechActivity` (``regions``, ``duration_s``).
    result : its :class:`lfcc_gmm.verdicts.FileResult` (``segments``, ``threshold``, ``verdict``, ``score``, …).

    Each segment is drawn at its centre, with a horizontal bar over the time it covers; points below the threshold
    (dashed line) are red. Artists carry ``gid``: ``"waveform"``, ``"segments"`` (its data are the centres and
    scores), ``"threshold"``, ``"non-speech"`` (one shaded span per stretch without speech), so that the drawn data
    can be read back.
    """
    figure = _new_figure(10.0, 5.0)
    wave_axes, score_axes = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    duration = signal.shape[0] / sample_rate
    times, low, high = _envelope(signal, sample_rate)
    wave_axes.fill_between(times, low, high, color="0.35", linewidth=0.5, gid="waveform")
    wave_axes.set_ylabel("amplitude")
    edges = [0.0] + [t for region in speech.regions for t in region] + [duration]
    for axes in (wave_axes, score_axes):
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            if end > start:
                axes.axvspan(start, end, color="0.88", zorder=0, linewidth=0, gid="non-speech")
    segments = result.segments
    if segments:
        centres = np.array([(s.start_s + s.end_s) / 2 for s in segments])
        scores = np.array([s.score for s in segments])
        score_axes.hlines(scores, [s.start_s for s in segments], [s.end_s for s in segments], color="C0",
                          alpha=0.35, linewidth=3)
        score_axes.plot(centres, scores, color="C0", marker="o", markersize=4, linewidth=1, gid="segments",
                        label="segment score")
        if result.threshold is not None:
            below = scores < result.threshold
            score_axes.plot(centres[below], scores[below], color="C3", marker="o", markersize=5, linestyle="none",
                            label="below the threshold")
    if result.threshold is not None:
        score_axes.axhline(result.threshold, color="0.2", linestyle="--", linewidth=1, gid="threshold",
                           label=f"threshold {result.threshold:g}")
    score_axes.set_xlim(0, duration)
    score_axes.set_xlabel("time (s); grey: no speech detected")
    score_axes.set_ylabel("score (higher = more bona fide)")
    score_axes.legend(loc="lower left", fontsize="small")
    verdict = result.verdict or "no threshold"
    wave_axes.set_title(f"{Path(result.file).name}: {verdict} (score {result.score:.3f}, {result.scorer}, "
                        f"{result.mode})", fontsize="medium")
    return figure


def save_png(figure: Figure, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG atomically; no software-version metadata, so the bytes are reproducible."""
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=dpi, metadata={"Software": None})
    return path
