"""The service's parts without a server: stream windows, upload spooling, admission, metrics, settings, options."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the service's extra is not installed: pip install 'antispoof[serve]'")

from service_process import multipart  # noqa: E402

from antispoof_service.admission import Admission  # noqa: E402
from antispoof_service.errors import ServiceError  # noqa: E402
from antispoof_service.metrics import Histogram, ServiceMetrics  # noqa: E402
from antispoof_service.settings import ScorerSpec, ServiceSettings  # noqa: E402
from antispoof_service.streaming import StreamBuffer, StreamError, StreamFormat  # noqa: E402
from antispoof_service.uploads import MEMORY_LIMIT, spool_body  # noqa: E402


async def _chunks(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _spool(data: bytes, content_type: str, folder, limit: int = 1 << 20, chunk: int = 7,
           length: int | None = None, memory_limit: int = MEMORY_LIMIT):
    return asyncio.run(spool_body(_chunks(data, chunk), content_type, length, folder, limit, memory_limit))


def _received(upload) -> bytes:
    """The bytes of a finished upload, from memory or from its spooled file."""
    return upload.data if upload.path is None else upload.path.read_bytes()


# -- streams ----------------------------------------------------------------------------------------------------
def test_int16_stream_is_the_signal_soundfile_reads(tmp_path):
    """A WAV file's PCM streamed in odd-sized chunks (samples split across chunks) is soundfile's float64 read."""
    rng = np.random.default_rng(1)
    pcm = rng.integers(-32768, 32767, 5000, dtype=np.int16)
    path = tmp_path / "x.wav"
    sf.write(path, pcm, 16000, subtype="PCM_16")
    buffer = StreamBuffer("int16", length=1000, hop=500, max_samples=10_000)
    data = pcm.astype("<i2").tobytes()
    for start in range(0, len(data), 333):  # odd: every other chunk ends inside a sample
        buffer.feed(data[start : start + 333])
    np.testing.assert_array_equal(buffer.signal(), sf.read(path, dtype="float64")[0])


def test_windows_complete_exactly_when_their_last_sample_arrives():
    """Window k = [k*hop, k*hop+length) is returned by the feed that brings sample k*hop+length-1, not before."""
    length, hop = 40, 15
    buffer = StreamBuffer("float32", length, hop, max_samples=1000)
    values = np.arange(200, dtype="<f4")
    seen = []
    for n in range(200):
        for start, stop in buffer.feed(values[n : n + 1].tobytes()):
            assert stop == n + 1  # completed by this very sample
            seen.append((start, stop))
            np.testing.assert_array_equal(buffer.window(start, stop), values[start:stop])
    assert seen == [(k * hop, k * hop + length) for k in range((200 - length) // hop + 1)]


def test_stream_limits_and_formats():
    buffer = StreamBuffer("float32", 4, 2, max_samples=10)
    buffer.feed(np.zeros(10, "<f4").tobytes())
    with pytest.raises(StreamError, match="limit"):
        buffer.feed(np.zeros(1, "<f4").tobytes())
    partial = StreamBuffer("int16", 4, 2, max_samples=10)
    partial.feed(b"\x01")
    with pytest.raises(StreamError, match="inside a sample"):
        partial.signal()
    with pytest.raises(StreamError, match="encoding"):
        StreamFormat("pcm24")
    with pytest.raises(StreamError, match="16000 Hz"):
        StreamFormat("int16", 44100)


# -- uploads ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("memory_limit", [MEMORY_LIMIT, 1000, 0])
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64, 10_000])
def test_multipart_file_field_is_spooled_byte_for_byte(tmp_path, chunk, memory_limit):
    """The push parser sees the body cut at every position (chunk 1) and still receives exactly the file's bytes,
    ignoring other fields, under the client's file name (directory parts dropped): held in memory under the
    memory limit, else spooled to a file from the part that passes it (at 1000 the file's 1,814 bytes roll over
    midway, at every possible byte with chunk 1)."""
    audio = bytes(range(256)) * 7 + b"\r\n--not-the-boundary\r\n"
    body, content_type = multipart({"note": ("n.txt", b"hello", "text/plain"),
                                    "file": ("../dir/clip.wav", audio, "audio/wav")})
    upload = _spool(body, content_type, tmp_path, chunk=chunk, memory_limit=memory_limit)
    try:
        assert _received(upload) == audio
        assert (upload.filename, upload.size) == ("clip.wav", len(audio))
        assert (upload.path is None) == (len(audio) <= memory_limit)
        assert list(tmp_path.iterdir()) == ([] if upload.path is None else [upload.path])
    finally:
        upload.remove()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("case", "status", "code"), [
    ("truncated", 400, "truncated-body"),
    ("no file field", 422, "bad-parameter"),
    ("text part", 415, "unsupported-type"),
    ("empty file", 400, "empty-audio"),
    ("over limit while streaming", 413, "too-large"),
    ("over limit by its length", 413, "too-large"),
    ("raw text body", 415, "unsupported-type"),
])
def test_bad_bodies_are_refused_and_leave_nothing(tmp_path, case, status, code):
    audio = b"RIFF" + bytes(2000)
    body, content_type = multipart({"file": ("a.wav", audio, "audio/wav")})
    length = None
    if case == "truncated":
        body = body[: len(body) // 2]
    elif case == "no file field":
        body, content_type = multipart({"upload": ("a.wav", audio, "audio/wav")})
    elif case == "text part":
        body, content_type = multipart({"file": ("a.wav", b"hello", "text/plain")})
    elif case == "empty file":
        body, content_type = multipart({"file": ("a.wav", b"", "audio/wav")})
    elif case == "over limit by its length":
        length = 10_000
    elif case == "raw text body":
        content_type = "text/plain"
    limit = 1000 if case.startswith("over limit") else 1 << 20
    with pytest.raises(ServiceError) as caught:  # spooled to a file from the first byte: the file must go too
        _spool(body, content_type, tmp_path, limit=limit, length=length, memory_limit=0)
    assert (caught.value.status, caught.value.code) == (status, code)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("memory_limit", [MEMORY_LIMIT, 500])
def test_raw_body_is_received_and_named_like_stdin(tmp_path, memory_limit):
    data = bytes(range(256)) * 3
    upload = _spool(data, "audio/flac", tmp_path, chunk=100, memory_limit=memory_limit)
    assert (_received(upload), upload.filename, upload.size) == (data, "-", len(data))
    assert (upload.path is None) == (memory_limit == MEMORY_LIMIT)
    upload.remove()
    assert list(tmp_path.iterdir()) == []


def test_an_upload_in_memory_is_written_to_a_file_only_while_a_file_is_needed(tmp_path):
    """For a scorer that reads files only: the bytes held in memory, as a file, removed afterwards."""
    upload = _spool(b"RIFF" + bytes(100), "audio/wav", tmp_path)
    with upload.on_disk() as path:
        assert path.parent == tmp_path and path.read_bytes() == b"RIFF" + bytes(100)
    assert list(tmp_path.iterdir()) == []


# -- admission --------------------------------------------------------------------------------------------------
def test_admission_refuses_beyond_slots_plus_queue_then_recovers():
    """2 slots and a queue of 3: of 8 simultaneous requests 5 are admitted and 3 get 503; once they are done a new
    request is admitted again; at most 2 ever run at once."""

    async def main():
        admission = Admission(slots=2, queue=3)
        release = asyncio.Event()
        running, peak, outcomes = [0], [0], []

        def work():
            return None

        async def request():
            try:
                async with admission.admit():
                    await release.wait()

                    def job():
                        running[0] += 1
                        peak[0] = max(peak[0], running[0])
                        running[0] -= 1

                    await admission.run(job)
                outcomes.append(200)
            except ServiceError as exc:
                assert exc.headers["Retry-After"] == "1"
                outcomes.append(exc.status)

        tasks = [asyncio.create_task(request()) for _ in range(8)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*tasks)
        async with admission.admit():
            await admission.run(work)
        admission.close()
        return sorted(outcomes), peak[0], admission.waiting, admission.running

    outcomes, peak, waiting, running = asyncio.run(main())
    assert outcomes == [200] * 5 + [503] * 3
    assert peak <= 2 and (waiting, running) == (0, 0)


# -- metrics ----------------------------------------------------------------------------------------------------
def test_histogram_buckets_are_cumulative_with_sum_and_count():
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert histogram.lines("h") == ['h_bucket{le="0.1"} 2', 'h_bucket{le="1.0"} 3', 'h_bucket{le="+Inf"} 4',
                                    "h_sum 3.65", "h_count 4"]


def test_metrics_text_is_well_formed():
    metrics = ServiceMetrics({"g": ("a gauge", lambda: 3)})
    metrics.observe_request("/v1/score", 200, 0.2)
    metrics.observe_request("/v1/score", 503, 0.001)
    text = metrics.render()
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line
    assert 'antispoof_requests_total{route="/v1/score",status="503"} 1' in text
    assert "\ng 3.0\n" in text


# -- settings and the command line ------------------------------------------------------------------------------
def test_settings_travel_to_workers_as_json():
    settings = ServiceSettings((ScorerSpec("aasist"), ScorerSpec("lfcc-gmm", "m.npz", {"jobs": 1})), queue=3)
    assert ServiceSettings.from_json(settings.to_json()) == settings
    with pytest.raises(ValueError, match="named twice"):
        ServiceSettings((ScorerSpec("aasist"), ScorerSpec("aasist")))


def test_models_pair_with_the_scorer_before_them(monkeypatch):
    from click.testing import CliRunner

    import antispoof_service.server as server
    from cli.main import main

    seen = {}
    monkeypatch.setattr(server, "serve", lambda settings, *args: seen.setdefault("settings", settings))
    runner = CliRunner()
    result = runner.invoke(main, ["serve", "--scorer", "aasist", "--scorer", "lfcc-gmm", "--model", "m.npz",
                                  "--scorer=rawnet2", "--weights=r.pth", "--queue", "5"])
    assert result.exit_code == 0, result.output
    assert [(s.name, s.model) for s in seen["settings"].scorers] == [("aasist", None), ("lfcc-gmm", "m.npz"),
                                                                      ("rawnet2", "r.pth")]
    assert seen["settings"].queue == 5
    result = runner.invoke(main, ["serve", "--model", "m.npz", "--scorer", "lfcc-gmm"])
    assert result.exit_code == 2 and "after the --scorer" in result.output
    result = runner.invoke(main, ["serve", "--api-key-env", "ANTISPOOF_TEST_UNSET_VARIABLE"])
    assert result.exit_code == 2 and "unset or empty" in result.output
