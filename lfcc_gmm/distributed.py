"""Scale-out on a Dask cluster: connect, run the joblib-parallel extraction and scoring there, and train
the LFCC-GMM with the features held in the workers' memory.

``antispoof lfcc`` and ``antispoof score`` need no code of their own: inside :func:`joblib_on` the
``joblib.Parallel`` calls of :mod:`lfcc_gmm.extraction` and :class:`lfcc_gmm.baseline.LFCCGMMScorer` run
on the cluster's worker threads, results in input order. Training (:func:`fit_on_cluster`) extracts each
shard of files on a worker and keeps the frames there; every EM iteration ships only the parameters out
and one :class:`lfcc_gmm.gmm.SufficientStatistics` per shard back, summed and turned into new parameters by
:func:`lfcc_gmm.gmm.m_step` on the client.

Workers open the audio by the client's absolute paths, so the audio must sit on a filesystem every
machine mounts at the same place. Dask (``pip install antispoof[dask]``) is imported only when a
function here is called, never by ``import lfcc_gmm``.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
from sklearn.utils import check_random_state

from .audio import AudioConversionWarning
from .extraction import augmented_features, extract_features
from .gmm import DiagonalGMM, GMMParams, SufficientStatistics, initial_params, sufficient_statistics
from .protocols import BONAFIDE, SPOOF, Trial, audio_paths

if TYPE_CHECKING:
    from distributed import Client, Future

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
#: Seconds to keep trying to reach the scheduler before giving up.
CONNECT_TIMEOUT = 10.0
#: Most shards a class's training files are split into. A shard is the unit of work and of summation; the
#: split depends on the files alone, so the model is bit-for-bit the same whatever the number of workers.
#: Each shard sends one set of statistics (K x (2d + 1) float64, 0.5 MB for 512 components) to the client
#: per EM iteration.
SHARDS_PER_CLASS = 64
#: Fewest files in a shard (unless the class has fewer): smaller shards cost more in task overhead than
#: they gain in parallelism.
MIN_SHARD_FILES = 16


class ClusterFittable(Protocol):
    """What :func:`fit_on_cluster` reads from and sets on the scorer it fits (an
    :class:`lfcc_gmm.baseline.LFCCGMMScorer`), stated structurally: the scorer dispatches its ``fit`` here, so this
    module must not import it back.
    """

    preset: str
    cache_dir: str | os.PathLike | None
    augment: str | None
    augment_copies: int
    random_state: int
    max_iter: int
    training_summary_: dict[str, Any]

    def untrained_gmm(self, class_index: int) -> DiagonalGMM: ...


F = TypeVar("F", bound=ClusterFittable)


class SchedulerConnectionError(ConnectionError):
    """The Dask scheduler could not be reached."""


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"the Dask backend needs dask.distributed ({exc}): pip install antispoof[dask]") from exc
    return distributed


def scheduler_address(address: str | None = None) -> str:
    """``address`` if given, else ``$DASK_SCHEDULER_ADDRESS``.

    Raises
    ------
    ValueError
        When neither is set.
    """
    address = address or os.environ.get(SCHEDULER_ENV)
    if not address:
        raise ValueError(f"no Dask scheduler: give its address (e.g. tcp://10.0.0.1:8786) or set {SCHEDULER_ENV}")
    return address


@contextmanager
def connect(address: str | None = None, *, timeout: float | None = None) -> Iterator[Client]:
    """A ``distributed.Client`` connected to the scheduler at ``address`` (see :func:`scheduler_address`),
    closed on exit.

    Parameters
    ----------
    address : str, optional
        E.g. ``tcp://10.0.0.1:8786``; default ``$DASK_SCHEDULER_ADDRESS``.
    timeout : float, optional
        Seconds to keep trying (default :data:`CONNECT_TIMEOUT`).

    Raises
    ------
    ImportError
        Dask is not installed.
    ValueError
        No address given or set.
    SchedulerConnectionError
        Nothing answered at ``address`` in time, or the address is malformed.
    """
    distributed = _import_distributed()
    address = scheduler_address(address)
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerConnectionError(f"cannot connect to the Dask scheduler at {address} "
                                       f"(gave up after {timeout:g} s): {exc}") from exc
    try:
        yield client
    finally:
        client.close()


@contextmanager
def joblib_on(client: Client) -> Iterator[None]:
    """Within the block, ``joblib.Parallel`` runs on all of ``client``'s worker threads (results in order)."""
    from joblib import parallel_config

    with parallel_config(backend="dask", client=client):
        yield


def worker_threads(client: Client) -> int:
    """Threads over all the cluster's workers (at least 1): the ``jobs`` that keeps each of them busy."""
    return max(1, sum(client.nthreads().values()))


def absolute_trials(trials: Sequence[Trial]) -> list[Trial]:
    """The trials with absolute paths, so that workers started in other folders open the same files."""
    return [t if t.path is None else dataclasses.replace(t, path=Path(t.path).absolute()) for t in trials]


@dataclass(frozen=True)
class ShardReport:
    """What the client learns about a shard once it is loaded: small, whatever the shard's size.

    Attributes
    ----------
    lengths : tuple of int
        Frames of each array of the shard, in order.
    n_files : int
        Files that loaded.
    failures : tuple of (int, str)
        (trial index, reason) of each file that did not.
    conversions : tuple of (int, tuple of str)
        (trial index, conversions applied on load) of each converted file.
    """

    lengths: tuple[int, ...]
    n_files: int
    failures: tuple[tuple[int, str], ...]
    conversions: tuple[tuple[int, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Shard:
    """Training frames as a worker holds them: per usable file, its LFCCs then its augmented copies'."""

    frames: list[np.ndarray]
    report: ShardReport


def load_shard(
    paths: Sequence[str], indices: Sequence[int], preset: str, cache_dir: str | None,
    augment: str | None, augment_copies: int, seed: int,
) -> Shard:
    """Extract (and augment) the LFCCs of some training files, as :meth:`LFCCGMMScorer.fit` does; run on a worker.

    ``indices`` are the files' positions in the whole training list, which seed their augmented copies.
    """
    with warnings.catch_warnings():
        # Reported on the client, where the user sees them.
        warnings.simplefilter("ignore", AudioConversionWarning)
        extraction = extract_features(paths, preset, cache_dir=cache_dir, on_error="collect")
    good = [(path, index, result.features) for path, index, result in zip(paths, indices, extraction, strict=True)
            if result.features is not None]
    copies = (augmented_features([p for p, _, _ in good], [i for _, i, _ in good], augment, augment_copies,
                                 preset, seed) if augment else [[] for _ in good])
    frames = [array for (_, _, features), extra in zip(good, copies, strict=True) for array in [features, *extra]]
    report = ShardReport(
        lengths=tuple(len(a) for a in frames),
        n_files=len(good),
        failures=tuple((i, r.error) for i, r in zip(indices, extraction, strict=True) if r.error is not None),
        conversions=tuple((i, r.conversions) for i, r in zip(indices, extraction, strict=True) if r.conversions),
    )
    return Shard(frames, report)


def _shard_frames(shard: Shard) -> list[np.ndarray]:
    return shard.frames


def _shard_report(shard: Shard) -> ShardReport:
    return shard.report


def _shapes(frames: Sequence[np.ndarray]) -> list[tuple[int, ...]]:
    return [a.shape for a in frames]


def _take_rows(frames: Sequence[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """Rows at sorted ``positions`` of the frames' concatenation, as float64 (without concatenating)."""
    starts = np.cumsum([0] + [len(a) for a in frames])
    owners = np.searchsorted(starts, positions, side="right") - 1
    rows = np.empty((len(positions), frames[0].shape[1]))
    for owner in np.unique(owners):
        mine = owners == owner
        rows[mine] = frames[owner][positions[mine] - starts[owner]]
    return rows


def _block_moments(frames: Sequence[np.ndarray], shift: np.ndarray, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per block of ``chunk_size`` rows of each array: sum and sum of squares of (x - shift).

    The blocks and their arithmetic are those of DiagonalGMM's variance pass, so that adding them up in
    order on the client reproduces its float64 rounding exactly.
    """
    sums, squares = [], []
    for array in frames:
        for start in range(0, len(array), chunk_size):
            block = array[start : start + chunk_size] - shift
            sums.append(block.sum(axis=0))
            squares.append(np.einsum("ij,ij->j", block, block))
    return np.array(sums), np.array(squares)


def _initial_params(client: Client, shards: Sequence[Future], lengths: Sequence[Sequence[int]], gmm: DiagonalGMM,
                    init: str, rng: np.random.RandomState) -> GMMParams:
    """DiagonalGMM's own initialisation, with the subsample and the variance gathered from the shards.

    The subsample is drawn as frame indices into the whole (shard after shard) frame sequence with the
    same generator calls as the local fit, and the variance is summed block by block in the local fit's
    order, so the initial model is bit-for-bit the local one whatever the sharding.
    """
    totals = [sum(shard) for shard in lengths]
    n_frames = sum(totals)
    n_samples = n_frames if gmm.init_samples is None else min(gmm.init_samples, n_frames)
    indices = np.arange(n_frames) if n_samples == n_frames else np.sort(rng.choice(n_frames, n_samples, replace=False))
    starts = np.cumsum([0, *totals])
    bounds = np.searchsorted(indices, starts)
    pieces = [client.submit(_take_rows, shard, indices[lo:hi] - start)
              for shard, start, lo, hi in zip(shards, starts[:-1], bounds[:-1], bounds[1:], strict=True) if hi > lo]
    sample = np.concatenate(client.gather(pieces))
    shift = sample.mean(axis=0)
    total, total_sq = np.zeros_like(shift), np.zeros_like(shift)
    for sums, squares in client.gather([client.submit(_block_moments, s, shift, gmm.chunk_size) for s in shards]):
        for block_sum, block_sq in zip(sums, squares, strict=True):
            total += block_sum
            total_sq += block_sq
    variance = (total_sq - total**2 / n_frames) / max(n_frames - 1, 1)
    return initial_params(sample, variance, gmm.n_components, init=init, var_floor=gmm.var_floor,
                          random_state=rng)


def fit_gmm(client: Client, shards: Sequence[Future], gmm: DiagonalGMM) -> DiagonalGMM:
    """``gmm.fit(frames)`` with the frames held on the cluster; fits ``gmm`` in place and returns it.

    Parameters
    ----------
    client : distributed.Client
    shards : sequence of Future
        Each resolving to a non-empty sequence of (n_i, d) frame arrays; the frames are these in order.
    gmm : DiagonalGMM
        Hyperparameters (``callback`` and ``tol`` included) as for :meth:`DiagonalGMM.fit`, except that
        ``init`` must name a seeding method. The EM loop itself is :meth:`DiagonalGMM.run_em`.

    Notes
    -----
    The initial model equals the local fit's bit for bit. EM then sums one set of statistics per shard, in
    shard order, where the local fit sums over chunks of its one long frame sequence: floating-point sums
    in another order, so the parameters agree with the local fit to rounding (float32 E-step products)
    rather than exactly, and exactly whatever the number of workers. With a single shard, and the same
    BLAS threading on the workers as locally, the fit is the local one bit for bit.
    """
    init = gmm.init
    if not isinstance(init, str):
        raise ValueError("fit_gmm seeds the means from the frames: init must be 'kmeans++' or 'random'")
    shapes = client.gather([client.submit(_shapes, s) for s in shards])
    lengths = [[n for n, _ in shard] for shard in shapes]
    n_frames = sum(map(sum, lengths))
    if n_frames < gmm.n_components:
        raise ValueError(f"X has {n_frames} frames, fewer than n_components={gmm.n_components}")
    start = _initial_params(client, shards, lengths, gmm, init, check_random_state(gmm.random_state))

    def e_step(params: GMMParams) -> SufficientStatistics:
        [shared] = client.scatter([params], broadcast=True)
        return sum(client.gather([client.submit(sufficient_statistics, shard, shared, dtype=gmm.dtype,
                                                chunk_size=gmm.chunk_size) for shard in shards]))

    return gmm.run_em(e_step, start)


def fit_on_cluster(
    scorer: F,
    trials: Sequence[Trial],
    client: Client,
    *,
    progress: Callable[[str, int, int], None] | None = None,
    shards_per_class: int = SHARDS_PER_CLASS,
    min_shard_files: int = MIN_SHARD_FILES,
) -> F:
    """:meth:`LFCCGMMScorer.fit` on a Dask cluster: features extracted and kept on the workers, EM there too.

    Sets the same attributes as the local fit (``bonafide_gmm_``, ``spoof_gmm_``, ``training_summary_``);
    see :func:`fit_gmm` for how the GMMs compare with the local ones. ``progress(stage, done, total)``
    reports extraction per shard ("features") and EM per iteration ("bonafide", "spoof").

    Parameters
    ----------
    scorer : LFCCGMMScorer (any :class:`ClusterFittable`)
        Its settings; fitted in place (its ``jobs`` is not used).
    trials : sequence of Trial
        Labelled training trials; their audio must be readable at the same absolute paths on the workers.
    client : distributed.Client
    shards_per_class, min_shard_files : int
        Consecutive files of a class form a shard: as many shards as ``min_shard_files`` allows, at most
        ``shards_per_class`` (see :data:`SHARDS_PER_CLASS`, :data:`MIN_SHARD_FILES`).
    """
    if shards_per_class < 1 or min_shard_files < 1:
        raise ValueError(f"shards_per_class and min_shard_files must be at least 1, got {shards_per_class} "
                         f"and {min_shard_files}")
    paths = [str(p) for p in audio_paths(absolute_trials(trials))]
    cache_dir = None if scorer.cache_dir is None else str(Path(scorer.cache_dir).absolute())
    members_of = {key: [i for i, t in enumerate(trials) if t.key == key] for key in (BONAFIDE, SPOOF)}
    plan = {key: _consecutive_runs(members, min(shards_per_class, -(-len(members) // min_shard_files)))
            for key, members in members_of.items()}
    futures: list[Future] = []
    try:
        loaded = {key: [client.submit(load_shard, [paths[i] for i in shard], shard, scorer.preset, cache_dir,
                                      scorer.augment, scorer.augment_copies, scorer.random_state, pure=False)
                        for shard in shards] for key, shards in plan.items()}
        futures.extend(f for shards in loaded.values() for f in shards)
        reports = _gather_reports(client, loaded, plan, progress)
        summary = _summary(scorer, trials, reports)
        for offset, key in enumerate((BONAFIDE, SPOOF)):
            usable = [client.submit(_shard_frames, shard) for shard, report in zip(loaded[key], reports[key],
                                                                                  strict=True) if report.lengths]
            futures.extend(usable)
            if not usable:
                raise ValueError(f"no usable {key} training files: both classes are needed")
            gmm = scorer.untrained_gmm(offset)
            if progress is not None:
                gmm.set_params(callback=lambda it, _ll, k=key: progress(k, it, scorer.max_iter))
            fit_gmm(client, usable, gmm)
            gmm.set_params(callback=None)
            setattr(scorer, f"{key}_gmm_", gmm)
    finally:
        client.cancel(futures)
    scorer.training_summary_ = summary
    return scorer


def _consecutive_runs(members: list[int], count: int) -> list[list[int]]:
    """``members`` cut into ``count`` consecutive runs of near-equal length (none when there are no members)."""
    return [members[len(members) * j // count : len(members) * (j + 1) // count] for j in range(count)]


def _gather_reports(client: Client, loaded: dict[str, list[Future]], plan: dict[str, list[list[int]]],
                    progress: Callable[[str, int, int], None] | None) -> dict[str, list[ShardReport]]:
    """The shards' reports, in shard order, calling ``progress("features", files done, total)`` as they arrive."""
    distributed = _import_distributed()
    where = {client.submit(_shard_report, shard): (key, n) for key, shards in loaded.items()
             for n, shard in enumerate(shards)}
    reports: dict[str, list[Any]] = {key: [None] * len(shards) for key, shards in loaded.items()}
    total = sum(len(shard) for shards in plan.values() for shard in shards)
    done = 0
    for future, report in distributed.as_completed(where, loop=client.loop, with_results=True):
        key, n = where[future]
        reports[key][n] = report
        done += len(plan[key][n])
        if progress is not None:
            progress("features", done, total)
    return reports


def _summary(scorer: ClusterFittable, trials: Sequence[Trial], reports: dict[str, list[ShardReport]]) -> dict:
    """``training_summary_`` as the local fit writes it (failures in trial order), and the conversion notes."""
    all_reports = [r for shards in reports.values() for r in shards]
    for index, conversions in sorted(c for r in all_reports for c in r.conversions):
        warnings.warn(f"{trials[index].path}: {'; '.join(conversions)}", AudioConversionWarning, stacklevel=3)
    failures = sorted(f for r in all_reports for f in r.failures)
    summary: dict[str, Any] = {"preset": scorer.preset, "failures": [
        {"file_id": trials[i].file_id, "path": str(trials[i].path), "reason": reason} for i, reason in failures]}
    if scorer.augment:
        summary["augment"] = {"spec": scorer.augment, "copies": scorer.augment_copies}
    for key, shards in reports.items():
        summary[key] = {"files": sum(r.n_files for r in shards), "frames": int(sum(sum(r.lengths) for r in shards))}
    return summary
