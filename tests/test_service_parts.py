"""The service's parts without a server: stream windows, upload spooling, admission, metrics, settings, options."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("fastapi", reason="the service's extra is not installed: pip install 'antispoof[serve]'")

from service_process import multipart  # noqa: E402

from antispoof_service.admission import Admission  # noqa: E402
from antispoof_service.errors import ServiceError  # noqa: E402
from antispoof_service.metrics import Histogram, ServiceMetrics  # noqa: E402
from antispoof_service.multipart import MAX_HEADER_BYTES, MultipartError, MultipartReader  # noqa: E402
from antispoof_service.results import check_upload, decode_upload  # noqa: E402
from antispoof_service.settings import ScorerSpec, ServiceSettings  # noqa: E402
from antispoof_service.streaming import StreamBuffer, StreamError, StreamFormat  # noqa: E402
from antispoof_service.uploads import MEMORY_LIMIT, Upload, spool_body  # noqa: E402
from lfcc_gmm.audio import load_audio  # noqa: E402


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


# -- the multipart reader -------------------------------------------------------------------------------------
#: A body written by hand (RFC 2046): a preamble, a part without headers, a part whose data holds CRLF and a
#: near-delimiter, a part with spaces after its delimiter and headers in mixed case, and an epilogue.
BOUNDARY = b"b0undary"
HAND_BODY = (b"preamble to ignore\r\n--b0undary\r\n\r\nno headers\r\n--b0undary\r\n"
             b'content-disposition: form-data; name="a"\r\n\r\nline\r\n--b0undar\r\n-b0undary no\r\n'
             b"--b0undary  \t\r\nContent-Type:  audio/wav \r\nX-Other: \xc3\xa9\r\n\r\n\r\n"
             b"--b0undary--\r\nepilogue --b0undary\r\n")
HAND_PARTS = [({}, b"no headers"),
              ({"content-disposition": 'form-data; name="a"'}, b"line\r\n--b0undar\r\n-b0undary no"),
              ({"content-type": "audio/wav", "x-other": "\u00e9"}, b"")]


def _read_parts(body: bytes, cuts: list[int], boundary: bytes = BOUNDARY) -> tuple[list, bool]:
    parts: list[tuple[dict, bytes]] = []

    def on_part(headers: dict[str, str]) -> bool:
        parts.append((headers, b""))
        return True

    def on_data(data: bytes) -> None:
        parts[-1] = (parts[-1][0], parts[-1][1] + data)

    reader = MultipartReader(boundary, on_part, on_data)
    for start, stop in zip([0, *cuts], [*cuts, len(body)], strict=True):
        reader.feed(body[start:stop])
    return parts, reader.finished


def test_multipart_reader_finds_every_part_wherever_the_body_is_cut():
    """Cut once at every position and twice at every pair of positions 7 bytes apart: the same parts, headers
    and data as the body read whole, and the closing delimiter seen (a cut body is not finished)."""
    assert _read_parts(HAND_BODY, []) == (HAND_PARTS, True)
    for cut in range(1, len(HAND_BODY)):
        assert _read_parts(HAND_BODY, [cut]) == (HAND_PARTS, True), cut
        if cut + 7 < len(HAND_BODY):
            assert _read_parts(HAND_BODY, [cut, cut + 7]) == (HAND_PARTS, True), cut
    closing = HAND_BODY.index(b"--b0undary--")
    assert _read_parts(HAND_BODY[: closing + 11], [])[1] is False


#: Part data drawn from bytes that make near-delimiters often (CR, LF, "-", the boundary's letters).
_PART_DATA = st.binary(max_size=60).map(lambda raw: bytes(b"\r\n-b0udaryx"[byte % 11] for byte in raw))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(st.dictionaries(st.sampled_from(["name", "content-type", "x-a"]),
                                                st.text("abc=; /", max_size=12), max_size=3), _PART_DATA),
                      max_size=4),
       cuts=st.lists(st.floats(0, 1), max_size=6))
def test_multipart_reader_reads_back_any_body_written_by_the_rules(parts, cuts):
    """Any parts whose data holds no delimiter, written as RFC 2046 says and cut anywhere, are read back as written
    (header values are written stripped, as they are read)."""
    parts = [({k: v.strip() for k, v in headers.items()}, data) for headers, data in parts]
    parts = [(headers, data) for headers, data in parts if b"\r\n--b0undary" not in b"\r\n" + data + b"\r\n"]
    body = b"".join(b"--b0undary\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n"
                    + data + b"\r\n" for headers, data in parts) + b"--b0undary--\r\n"
    at = sorted({int(cut * len(body)) for cut in cuts} - {0, len(body)})
    assert _read_parts(body, at) == (parts, True)


@pytest.mark.parametrize(("body", "problem"), [
    (b"--b0undary\r\nno colon here\r\n\r\ndata\r\n--b0undary--", "malformed part header"),
    (b"--b0undary\r\n: no name\r\n\r\ndata\r\n--b0undary--", "malformed part header"),
    (b"--b0undary junk\r\n\r\ndata\r\n--b0undary--", "unexpected bytes after a boundary"),
    (b"--b0undary" + b" " * 2000, "no line end after a boundary"),
    (b"--b0undary\r\nX: " + b"y" * MAX_HEADER_BYTES, "headers are longer than"),
])
def test_multipart_reader_refuses_broken_framing(body, problem):
    with pytest.raises(MultipartError, match=problem):
        _read_parts(body, [])
    with pytest.raises(MultipartError, match="1 to 70"):
        MultipartReader(b"x" * 71, lambda headers: True, lambda data: None)


def test_unwanted_parts_are_skipped_without_holding_them():
    """Data of parts the caller does not want never reaches the sink, however long (only a delimiter's length of
    it is kept between chunks)."""
    big = bytes(range(256)) * 4096
    body = (b"--b0undary\r\nName: skip\r\n\r\n" + big + b"\r\n--b0undary\r\nName: keep\r\n\r\nwanted"
            b"\r\n--b0undary--")
    received = []
    reader = MultipartReader(BOUNDARY, lambda headers: headers["name"] == "keep", received.append)
    for start in range(0, len(body), 65536):
        reader.feed(body[start : start + 65536])
        assert len(reader._buffer) < len(BOUNDARY) + 4
    assert b"".join(received) == b"wanted" and reader.finished


# -- decoding an upload -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("memory_limit", [MEMORY_LIMIT, 0])
def test_an_upload_decodes_as_the_file_would_load_and_its_problems_are_answers(tmp_path, memory_limit):
    """In memory or spooled to a file: the audio load_audio reads from the file; 413 over the duration limit, 400
    empty-audio for a header without samples, 400 undecodable-audio for bytes that are not audio, each naming the
    upload; the header check for plug-ins that read files (check_upload) answers the same."""
    def upload_of(data: bytes, name: str) -> Upload:
        upload = Upload(tmp_path / "spool", name, memory_limit)
        upload.write(data)
        upload.finish()
        return upload

    (tmp_path / "spool").mkdir()
    sf.write(tmp_path / "two.flac", np.sin(np.arange(32_000) / 9), 16000, subtype="PCM_16")
    sf.write(tmp_path / "none.wav", np.zeros(0), 16000)
    upload = upload_of((tmp_path / "two.flac").read_bytes(), "two.flac")
    np.testing.assert_array_equal(decode_upload(upload, max_duration_s=2.0).signal,
                                  load_audio(tmp_path / "two.flac").signal)
    check_upload(upload, max_duration_s=2.0)
    upload.remove()
    for data, name, limit, (status, code) in (
        ((tmp_path / "two.flac").read_bytes(), "two.flac", 1.5, (413, "too-long")),
        ((tmp_path / "none.wav").read_bytes(), "none.wav", 10.0, (400, "empty-audio")),
        (b"hello, not audio", "text.wav", 10.0, (400, "undecodable-audio")),
    ):
        upload = upload_of(data, name)
        assert (upload.path is None) == (memory_limit > 0)
        for check in (decode_upload, check_upload):
            with pytest.raises(ServiceError) as caught:
                check(upload, limit)
            assert (caught.value.status, caught.value.code) == (status, code)
            assert caught.value.message.startswith(f"{name}: ")
        upload.remove()
    assert list((tmp_path / "spool").iterdir()) == []


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


def test_a_failing_job_fails_its_request_only_and_close_waits_for_running_jobs():
    """An exception in a slot's thread is raised in the request that awaited it, and the slot serves the next
    job; close() lets a running job finish, cancels the jobs not started, and stops the threads."""
    import threading
    import time

    async def main():
        admission = Admission(slots=1, queue=4)

        def fail():
            raise ValueError("bad file")

        async with admission.admit():
            with pytest.raises(ValueError, match="bad file"):
                await admission.run(fail)
        async with admission.admit():
            assert await admission.run(lambda: 42) == 42
        started, finished = threading.Event(), []

        def slow():
            started.set()
            time.sleep(0.2)
            finished.append(True)

        async def request(job):
            async with admission.admit():
                return await admission.run(job)

        running = asyncio.create_task(request(slow))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        queued = asyncio.create_task(request(lambda: finished.append(False)))
        await asyncio.sleep(0.01)
        threads = list(admission._threads)
        admission.close()  # returns once the running job is done
        assert finished == [True] and not any(thread.is_alive() for thread in threads)
        await running
        with pytest.raises(ServiceError) as caught:
            await queued
        assert (caught.value.status, caught.value.code, finished) == (503, "shutting-down", [True])

    asyncio.run(main())


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
