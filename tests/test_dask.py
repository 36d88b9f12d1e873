"""The Dask backend: lfcc, score and train lfcc-gmm on a local 2-worker cluster give the local results.

Dask workers run NumPy with one BLAS thread (the nanny sets OPENBLAS_NUM_THREADS=1), and OpenBLAS rounds
differently with one thread than with two, so the local runs they are compared with are held to one BLAS
thread too (``threadpool_limits(1)``); with that, features, scores and single-shard models are equal bit
for bit.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from error_bounds import U32, statistics_order_bound
from sklearn.base import clone
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from cli.main import main
from lfcc_gmm.audio import AudioConversionWarning
from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.extraction import extract_features
from lfcc_gmm.protocols import Trial
from rawnet.precision import FLOOR_EPSILONS, ORDER_FACTOR

distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed: pip install antispoof[dask]")
from lfcc_gmm import distributed as cluster_backend  # noqa: E402

# Dask's HTTP endpoint moves to a free port when another cluster on this shared machine holds the default.
pytestmark = pytest.mark.filterwarnings("ignore:Port \\d+ is already in use:UserWarning")
SETTINGS = {"n_components": 4, "max_iter": 4, "init_samples": 300, "random_state": 3}


@pytest.fixture(scope="module")
def scheduler():
    """Address of a 2-process LocalCluster, as the task asks (one thread per worker)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                                  processes=True) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def client(scheduler):
    with cluster_backend.connect(scheduler) as client:
        yield client


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five 1.5-s files per class, one of them at 22.05 kHz, then a corrupt and a too-short spoof file."""
    from conftest import synthetic_corpus

    folder = tmp_path_factory.mktemp("dask_corpus")
    trials = synthetic_corpus(folder / "audio", n_per_class=5, seconds=1.5)
    resampled = folder / "audio" / "F000_22k.wav"
    signal, _ = sf.read(trials[0].path)
    sf.write(resampled, np.interp(np.arange(0, len(signal), 16000 / 22050), np.arange(len(signal)), signal), 22050)
    trials[0] = Trial("F000_22k", "bonafide", path=resampled)
    corrupt, short = folder / "audio" / "corrupt.wav", folder / "audio" / "short.wav"
    corrupt.write_bytes(b"RIFF but not a wave file" * 8)
    sf.write(short, np.zeros(100), 16000)
    trials += [Trial("corrupt", "spoof", "S01", path=corrupt), Trial("short", "spoof", "S01", path=short)]
    listing = folder / "train.csv"
    listing.write_text("".join(f"{t.path},{t.key},{t.attack}\n" for t in trials))
    return trials, listing


@pytest.fixture(scope="module")
def local_model(corpus):
    trials, _ = corpus
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LFCCGMMScorer(**SETTINGS).fit(trials)
    return model, conversion_notes(caught)


def conversion_notes(caught: list[warnings.WarningMessage]) -> list[str]:
    return sorted(str(w.message) for w in caught if issubclass(w.category, AudioConversionWarning))


def gmm_arrays(model: LFCCGMMScorer) -> dict[str, np.ndarray]:
    """The arrays of both GMMs, named as in the model file."""
    return {f"{key}_{name}": value for key in ("bonafide", "spoof")
            for name, value in getattr(model, f"{key}_gmm_").to_arrays().items()}


def class_frames(trials, key: str) -> list[np.ndarray]:
    """The float32 LFCC of one class's readable trials, as fit() extracts them."""
    results = extract_features([t.path for t in trials if t.key == key], "asvspoof2019", on_error="collect")
    return [r.features for r in results if r.ok]


def float32_em_errors(local: LFCCGMMScorer, trials) -> dict[str, float]:
    """How far the local float32 EM lands from the same EM in float64, in the measures assert_equal_to_rounding
    uses: its own float32 rounding error, measured on this machine's kernels."""
    errors = {}
    for key in ("bonafide", "spoof"):
        ours = getattr(local, f"{key}_gmm_")
        exact = clone(ours).set_params(dtype=np.float64).fit(class_frames(trials, key))
        errors[f"{key}_weights"] = float(np.max(np.abs(ours.weights_ / exact.weights_ - 1)))
        errors[f"{key}_covariances"] = float(np.max(np.abs(ours.covariances_ / exact.covariances_ - 1)))
        errors[f"{key}_means"] = float(np.max(np.abs(ours.means_ - exact.means_) / np.sqrt(exact.covariances_)))
    return errors


def assert_equal_to_rounding(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], errors: dict[str, float]
                             ) -> None:
    """GMM parameters equal up to the rounding of a differently ordered EM (see the tests below).

    Sharded EM sums one set of statistics per shard where the local fit sums chunk after chunk, and the float32
    E-step products then round differently: another order of the same float32 computation, held to ORDER_FACTOR
    times the local fit's own float32 error (``errors``, from float32_em_errors; relative for weights and
    variances, in standard deviations for the means), as rawnet.precision.order_tolerance does for networks.
    """
    floor = FLOOR_EPSILONS * 2 * U32
    for key in ("bonafide", "spoof"):
        for name in ("weights", "covariances"):
            tolerance = max(ORDER_FACTOR * errors[f"{key}_{name}"], floor)
            np.testing.assert_allclose(ours[f"{key}_{name}"], theirs[f"{key}_{name}"], rtol=tolerance, atol=0)
        spread = np.sqrt(theirs[f"{key}_covariances"])
        moved = np.max(np.abs(ours[f"{key}_means"] - theirs[f"{key}_means"]) / spread)
        assert moved <= max(ORDER_FACTOR * errors[f"{key}_means"], floor)


@pytest.mark.slow
def test_train_cli_on_cluster_writes_the_local_model(scheduler, corpus, tmp_path):
    _, listing = corpus
    # Augmented copies are seeded by each file's place in the whole list, wherever its shard runs.
    args = ["train", "lfcc-gmm", "--list", str(listing), "--components", "4", "--iterations", "4",
            "--init-samples", "300", "--seed", "3", "--augment", "noise", "--allow-failures"]
    runner = CliRunner()
    with threadpool_limits(1):
        local = runner.invoke(main, [*args, "-o", str(tmp_path / "local.npz")])
        remote = runner.invoke(main, [*args, "-o", str(tmp_path / "dask.npz"), "--backend", "dask",
                                      "--scheduler", scheduler])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert "2 file(s) were skipped" in remote.output
    assert (tmp_path / "dask.npz.errors.tsv").read_text() == (tmp_path / "local.npz.errors.tsv").read_text()
    with np.load(tmp_path / "local.npz", allow_pickle=False) as a, np.load(tmp_path / "dask.npz") as b:
        theirs, ours = dict(a), dict(b)
    # Too few files for more than one shard per class: EM sums in the local order, and the workers' one BLAS
    # thread matches ours. The same bytes.
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


@pytest.mark.slow
def test_unsharded_fit_is_the_local_fit_bit_for_bit(client, corpus, local_model):
    trials, _ = corpus
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        remote = LFCCGMMScorer(**SETTINGS).fit(trials, client=client)
    local = local_model[0]
    for name, value in gmm_arrays(local).items():
        np.testing.assert_array_equal(gmm_arrays(remote)[name], value, err_msg=name)
    for key in ("bonafide", "spoof"):
        np.testing.assert_array_equal(getattr(remote, f"{key}_gmm_").lower_bounds_,
                                      getattr(local, f"{key}_gmm_").lower_bounds_)
    assert remote.training_summary_ == local.training_summary_


@pytest.mark.slow
def test_sharded_fit_matches_the_local_fit(client, corpus, local_model):
    trials, _ = corpus
    local, local_notes = local_model
    calls = []
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # One file per shard: 5 bona fide and 7 spoof shards, the last two holding only failed files.
        remote = cluster_backend.fit_on_cluster(LFCCGMMScorer(**SETTINGS), trials, client, min_shard_files=1,
                                                progress=lambda *call: calls.append(call))
    assert conversion_notes(caught) == local_notes and "F000_22k.wav: resampled" in local_notes[0]
    assert remote.training_summary_ == local.training_summary_
    assert [f["file_id"] for f in remote.training_summary_["failures"]] == ["corrupt", "short"]
    assert calls[-1 - 2 * SETTINGS["max_iter"]] == ("features", len(trials), len(trials))
    assert calls[-2 * SETTINGS["max_iter"]:] == [(k, i, 4) for k in ("bonafide", "spoof") for i in range(1, 5)]
    for key in ("bonafide", "spoof"):
        ours, theirs = getattr(remote, f"{key}_gmm_"), getattr(local, f"{key}_gmm_")
        # Same initial model: the first E-step's mean log-likelihood differs only by the order of its float32
        # products and float64 sums, within their rounding bound at that model.
        frames = class_frames(trials, key)
        n_frames = sum(len(f) for f in frames)
        start = theirs._initial_params(frames, n_frames, check_random_state(theirs.random_state))
        bound = statistics_order_bound(np.concatenate(frames), start, dtype=np.float32)["log_likelihood"] / n_frames
        assert ours.lower_bounds_[0] == pytest.approx(theirs.lower_bounds_[0], rel=0, abs=bound)
        assert ours.n_iter_ == theirs.n_iter_ == 4 and not ours.converged_
    assert_equal_to_rounding(gmm_arrays(remote), gmm_arrays(local), float32_em_errors(local, trials))


@pytest.mark.slow
def test_sharded_fit_does_not_depend_on_the_number_of_workers(client, corpus):
    trials, _ = corpus
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        two = cluster_backend.fit_on_cluster(LFCCGMMScorer(**SETTINGS), trials, client, min_shard_files=2)
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as single, distributed.Client(single) as one_worker:
            one = cluster_backend.fit_on_cluster(LFCCGMMScorer(**SETTINGS), trials, one_worker, min_shard_files=2)
    for name, value in gmm_arrays(two).items():
        np.testing.assert_array_equal(value, gmm_arrays(one)[name], err_msg=name)


def test_fit_gmm_needs_a_seeding_method(client):
    from lfcc_gmm.gmm import DiagonalGMM

    explicit = {"weights": [1.0], "means": [[0.0]], "covariances": [[1.0]]}
    with pytest.raises(ValueError, match="init must be"):
        cluster_backend.fit_gmm(client, [client.scatter([np.zeros((5, 1))])], DiagonalGMM(1, init=explicit))


@pytest.mark.slow
def test_lfcc_cli_on_cluster_writes_the_local_features(scheduler, client, corpus, tmp_path, monkeypatch):
    trials, _ = corpus
    # Relative paths, from a folder the workers were not started in: they must still find the files.
    folder = trials[1].path.parent.parent
    monkeypatch.chdir(folder)
    files = [str(t.path.relative_to(folder)) for t in trials]
    runner = CliRunner()
    with threadpool_limits(1):
        local = runner.invoke(main, ["lfcc", *files, "-o", str(tmp_path / "local"), "--allow-failures"])
        with distributed.get_task_stream(client=client) as tasks:
            remote = runner.invoke(main, ["lfcc", *files, "-o", str(tmp_path / "dask"), "--allow-failures",
                                          "--backend", "dask", "--scheduler", scheduler])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert tasks.data, "nothing ran on the cluster"
    written = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "dask").iterdir())
    assert "lfcc.errors.tsv" in written and len(written) == len(trials) - 1
    for name in (n for n in written if n.endswith(".npy")):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name
    # The workers opened the files by absolute path, and libsndfile's reason names the path it was given.
    errors = [(tmp_path / run / "lfcc.errors.tsv").read_text() for run in ("local", "dask")]
    assert errors[1].replace(f"{folder}/", "") == errors[0] and "audio/corrupt.wav" in errors[0]


@pytest.mark.slow
def test_score_cli_on_cluster_writes_the_local_scores(scheduler, client, corpus, local_model, tmp_path,
                                                      monkeypatch):
    trials, listing = corpus
    local_model[0].save(tmp_path / "model.npz")
    args = ["score", "--model", str(tmp_path / "model.npz"), "--list", str(listing), "--allow-failures",
            "--chunk-size", "5"]
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", scheduler)
    runner = CliRunner()
    with threadpool_limits(1):
        local = runner.invoke(main, [*args, "-o", str(tmp_path / "local.txt")])
        with distributed.get_task_stream(client=client) as tasks:
            remote = runner.invoke(main, [*args, "-o", str(tmp_path / "dask.txt"), "--backend", "dask"])
    assert local.exit_code == 0, local.output
    assert remote.exit_code == 0, remote.output
    assert tasks.data, "nothing ran on the cluster"
    assert len((tmp_path / "dask.txt").read_text().splitlines()) == len(trials) - 2
    for suffix in ("", ".errors.tsv"):
        assert (tmp_path / f"local.txt{suffix}").read_text() == (tmp_path / f"dask.txt{suffix}").read_text()


@pytest.mark.filterwarnings("ignore::lfcc_gmm.audio.AudioConversionWarning")
def test_score_library_under_joblib_on(client, corpus, local_model):
    trials, _ = corpus
    paths = [t.path for t in trials[:-2]]
    model = local_model[0]
    with threadpool_limits(1):
        expected = model.score_files(paths)
        model.jobs = cluster_backend.worker_threads(client)
        try:
            with cluster_backend.joblib_on(client):
                got = model.score_files(paths)
        finally:
            model.jobs = 1
    np.testing.assert_array_equal(got, expected)


def test_score_on_cluster_needs_a_joblib_scorer(scheduler, highband_plugin, corpus, tmp_path):
    from lfcc_gmm.scorers import get_scorer

    trials, _ = corpus
    get_scorer("highband")().fit(trials[1:-2]).save(tmp_path / "hb.json")
    result = CliRunner().invoke(main, ["score", "--scorer", "highband", "--model", str(tmp_path / "hb.json"),
                                       str(trials[1].path), "--backend", "dask", "--scheduler", scheduler])
    assert result.exit_code == 2 and "'highband' is not" in result.output


def test_no_scheduler_is_a_usage_error(monkeypatch, tmp_path, corpus):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    result = CliRunner().invoke(main, ["lfcc", str(corpus[0][1].path), "-o", str(tmp_path), "--backend", "dask"])
    assert result.exit_code == 2
    assert "no Dask scheduler" in result.output and "DASK_SCHEDULER_ADDRESS" in result.output
    with pytest.raises(ValueError, match="DASK_SCHEDULER_ADDRESS"):
        cluster_backend.scheduler_address()


def test_scheduler_needs_the_dask_backend(tmp_path, corpus):
    result = CliRunner().invoke(main, ["lfcc", str(corpus[0][1].path), "-o", str(tmp_path),
                                       "--scheduler", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2 and "--scheduler is only used with --backend dask" in result.output


def test_unreachable_scheduler_is_a_data_error(monkeypatch, tmp_path, corpus):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setattr(cluster_backend, "CONNECT_TIMEOUT", 1.0)
    trials, listing = corpus
    result = CliRunner().invoke(main, ["train", "lfcc-gmm", "--list", str(listing), "-o", str(tmp_path / "m.npz"),
                                       "--backend", "dask", "--scheduler", address])
    assert result.exit_code == 1
    assert f"cannot connect to the Dask scheduler at {address} (gave up after 1 s)" in result.output
    assert not (tmp_path / "m.npz").exists()


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install antispoof\[dask\]"), cluster_backend.connect("tcp://127.0.0.1:1"):
        pass


def test_dask_is_imported_only_when_asked_for():
    code = ("import sys, lfcc_gmm, cli.main; from click.testing import CliRunner;"
            "commands = ([], ['lfcc'], ['score'], ['train', 'lfcc-gmm']);"
            "assert all(CliRunner().invoke(cli.main.main, [*c, '--help']).exit_code == 0 for c in commands);"
            "loaded = [m for m in ('dask', 'distributed') if m in sys.modules];"
            "assert not loaded, f'imported {loaded}'")
    subprocess.run([sys.executable, "-c", code], check=True)
