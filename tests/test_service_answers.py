"""The service answers as the command line does: ``POST /v1/score`` against ``antispoof score --format json`` on the
same files, and the segments of a stream (``WS /v1/stream``, a plain websocket client) against the same file
uploaded whole."""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the service's extra is not installed: pip install 'antispoof[serve]'")
websockets_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed ([serve])")

from service_process import ANTISPOOF, API_KEY, REPO_ROOT, ServiceProcess, demo_trials  # noqa: E402

from antispoof_service.uploads import MEMORY_LIMIT  # noqa: E402

pytest_plugins = ["service_process"]  # its fixtures: service_files

#: Per scorer: demo files, an 11 s file of several segments, a 44.1 kHz stereo file (converted, and says so), and
#: for lfcc-gmm a 60 s file of 1.9 MB, over the size an upload is held in memory (uploads.MEMORY_LIMIT), so that
#: both ways of scoring an upload, from its bytes and from its spooled file, are held to the CLI's answer. AASIST
#: gets the two that differ most, to keep its CPU time modest.
FILES = {"lfcc-gmm": ("demo0", "demo1", "joined", "stereo", "noise60"), "aasist": ("joined", "stereo")}
#: Scores of the CLI and the service come from the same function on the same samples (the JSON round trip of a
#: float is exact): the issue asks for 1e-6. A deep model may sum in another order in the other process (another
#: batch composition, a measured CPU fast path chosen otherwise: rawnet.tuning), which :func:`score_tolerance`
#: bounds.
SCORE_TOLERANCE = 1e-6


def score_tolerance(scorer: str, paths: list) -> float:
    """SCORE_TOLERANCE, or for AASIST at least the tolerance of two float32 evaluations of its network on the
    windows of these files (:func:`rawnet.precision.order_tolerance`); a file score is a weighted mean of window
    scores, so it stays within the same bound."""
    if scorer != "aasist":
        return SCORE_TOLERANCE
    import torch

    from lfcc_gmm.audio import load_audio
    from lfcc_gmm.scorers import load_scorer
    from rawnet.precision import order_tolerance

    model = load_scorer("aasist")
    rows = np.concatenate([model.model_inputs(load_audio(p, warn=False).signal) for p in paths])
    return max(SCORE_TOLERANCE, order_tolerance(model.cpu_network(), torch.from_numpy(rows)))


@pytest.fixture(scope="module")
def both(service_files, tmp_path_factory):
    """One service with lfcc-gmm (default) and the bundled AASIST."""
    server = ServiceProcess(tmp_path_factory.mktemp("answers"), "--scorer", "lfcc-gmm", "--model",
                            str(service_files["model"]), "--scorer", "aasist", "--max-concurrency", "2")
    yield server
    assert server.stop() == 0


def cli_results(scorer: str, paths: list, model=None) -> list[dict]:
    model_args = [] if model is None else ["--model", str(model)]
    command = [*ANTISPOOF, "score", "--scorer", scorer, *model_args, "--format", "json", *map(str, paths)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_same_result(served: dict, expected: dict, tolerance: float = SCORE_TOLERANCE) -> None:
    """Field for field: the same names in the same order, the same values, scores within ``tolerance``."""
    assert list(served) == list(expected)
    for field in served:
        if field == "file":
            continue
        if field == "score":
            assert served["score"] == pytest.approx(expected["score"], abs=tolerance)
        elif field == "segments":
            assert [(s["start_s"], s["end_s"]) for s in served["segments"]] == \
                   [(s["start_s"], s["end_s"]) for s in expected["segments"]]
            np.testing.assert_allclose([s["score"] for s in served["segments"]],
                                       [s["score"] for s in expected["segments"]], rtol=0, atol=tolerance)
        else:
            assert served[field] == expected[field], field


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["lfcc-gmm", "aasist"])
def test_upload_answers_as_the_command_line(both, service_files, scorer):
    paths = [service_files[name] for name in FILES[scorer]]
    if scorer == "lfcc-gmm":  # uploads held in memory and one spooled to a file
        assert min(p.stat().st_size for p in paths) <= MEMORY_LIMIT < max(p.stat().st_size for p in paths)
    expected = cli_results(scorer, paths, service_files["model"] if scorer == "lfcc-gmm" else None)
    assert len(expected) == len(paths)
    tolerance = score_tolerance(scorer, paths)
    for path, cli in zip(paths, expected, strict=True):
        status, served = both.score(path, scorer=scorer)
        assert status == 200, served
        assert served["file"] == path.name and cli["file"] == str(path)
        assert_same_result(served, cli, tolerance)


def stream(service: ServiceProcess, scorer: str, pcm: bytes, encoding: str, chunk: int) -> tuple[list, dict]:
    """Send ``pcm`` in chunks of ``chunk`` bytes, then the end message; the segment messages and the final result.
    Bounded: the connection times out after 120 s without a message."""
    uri = service.url.replace("http://", "ws://") + f"/v1/stream?scorer={scorer}"
    segments = []
    with websockets_client.connect(uri, additional_headers={"Authorization": f"Bearer {API_KEY}"},
                                   open_timeout=30, close_timeout=10, max_size=None) as socket:
        socket.send(json.dumps({"encoding": encoding, "sample_rate": 16000}))
        ready = json.loads(socket.recv(timeout=30))
        assert ready["type"] == "ready" and ready["scorer"] == scorer
        for start in range(0, len(pcm), chunk):
            socket.send(pcm[start : start + chunk])
        socket.send(json.dumps({"type": "end"}))
        while True:
            message = json.loads(socket.recv(timeout=120))
            if message["type"] == "segment":
                segments.append(message)
            else:
                assert message["type"] == "result", message
                return segments, message["result"]


@pytest.mark.slow
@pytest.mark.parametrize("scorer", ["aasist", "lfcc-gmm"])
def test_stream_segments_equal_the_uploaded_file(both, service_files, scorer):
    """int16 PCM of an 11 s file in 0.25 s chunks: a segment arrives for every complete window, on the upload's grid
    and (AASIST, whose segments are its model windows) with the upload's segment scores; the final result is the
    upload's result. LFCC-GMM's live segments are the window scored alone, whose first and last frames see less
    context than inside the whole file, so only its final result is compared."""
    path = service_files["joined"]
    pcm = sf.read(path, dtype="int16")[0].astype("<i2").tobytes()
    status, uploaded = both.score(path, scorer=scorer)
    assert status == 200
    started = time.monotonic()
    segments, result = stream(both, scorer, pcm, "int16", chunk=8000)
    assert time.monotonic() - started < 300
    tolerance = score_tolerance(scorer, [path])
    assert_same_result(result, uploaded, tolerance)
    assert result["file"] == "stream"
    live = [(s["start_s"], s["end_s"]) for s in segments]
    whole = [(s["start_s"], s["end_s"]) for s in uploaded["segments"]]
    assert live and live == whole[: len(live)]
    assert len(whole) - len(live) <= 1  # only the end-aligned last segment waits for the end of the stream
    assert all(s["latency_s"] >= 0 for s in segments)
    if scorer == "aasist":
        np.testing.assert_allclose([s["score"] for s in segments],
                                   [s["score"] for s in uploaded["segments"][: len(segments)]],
                                   rtol=0, atol=tolerance)


def test_stream_refuses_bad_openings(both):
    uri = both.url.replace("http://", "ws://") + "/v1/stream"
    cases = [({}, {"encoding": "int16"}, "unauthorized"),
             ({"Authorization": f"Bearer {API_KEY}"}, {"encoding": "pcm24"}, "bad-parameter"),
             ({"Authorization": f"Bearer {API_KEY}"}, {"encoding": "int16", "sample_rate": 8000}, "bad-parameter")]
    for headers, first, code in cases:
        with websockets_client.connect(uri, additional_headers=headers, open_timeout=30) as socket:
            socket.send(json.dumps(first))
            message = json.loads(socket.recv(timeout=30))
            assert message["type"] == "error" and message["error"]["code"] == code, message


@pytest.mark.slow
def test_a_plugin_is_served_like_any_scorer(highband_plugin, service_files, tmp_path):
    """The example plug-in (scores files only) through the entry point: an upload gets its score_files value and
    the command line's result; a stream gets no live segments but the file-level result of its samples."""
    from lfcc_gmm.scorers import get_scorer

    model = tmp_path / "hb.json"
    get_scorer("highband")().fit(demo_trials("train", 20)).save(model)
    server = ServiceProcess(tmp_path / "plugin", "--scorer", "highband", "--model", str(model),
                            env={"PYTHONPATH": highband_plugin})
    try:
        path = service_files["demo0"]
        status, served = server.score(path)
        assert status == 200, served
        assert served["score"] == float(get_scorer("highband").load(model).score_files([path])[0])  # same function
        pcm = sf.read(path, dtype="int16")[0].astype("<i2").tobytes()
        segments, result = stream(server, "highband", pcm, "int16", chunk=16000)
        assert segments == [] and result["score"] == served["score"]
    finally:
        assert server.stop() == 0
