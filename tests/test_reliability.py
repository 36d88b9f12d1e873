"""Bad and unusual input through the command line, and files that must never be trusted.

Every input case goes through ``antispoof score``, ``antispoof lfcc`` and ``antispoof train lfcc-gmm``:
good files are processed (conversions said out loud), each bad file is reported with its path and its
cause, a batch never dies on one file, and the exit code says whether anything failed. Model files,
cache entries and fusion files that are really pickles are refused without running their payload.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner, Result
from scipy.signal import resample_poly

from cli.main import main
from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.extraction import cache_key
from lfcc_gmm.features import PRESETS, lfcc
from lfcc_gmm.fusion import LinearFusion
from lfcc_gmm.scorefiles import read_scores

REPO_ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
RESAMPLED = (8000, 22050, 44100, 48000)

# Good files all carry the samples of one 1-s 16-bit recording, so their results can be compared exactly.
# Bad files map to the cause their error message must give.
BAD_CAUSES = {
    "empty": r"is an empty file \(0 bytes\)",
    "zero_samples": r"contains zero samples",
    "truncated": r"corrupt",
    "not_audio": r"not a readable audio file",
    "nan": r"contains 1 non-finite sample\(s\) \(NaN or Inf\)",
    "inf": r"contains 2 non-finite sample\(s\) \(NaN or Inf\)",
    "too_short": r"too short for LFCC: signal of 100 samples gives no LFCC frame",
    "directory": r"is a directory, not an audio file",
    "unreadable": r"permission denied",
}


def _build_matrix(folder: Path, source: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """Write the input matrix; returns (good, bad) as ID -> path (ID = file stem)."""
    folder.mkdir()
    x, rate = sf.read(source, dtype="float64")  # 16-bit samples k / 32768
    assert rate == RATE and x.shape == (RATE,)
    good, bad = {}, {}

    def put(table, name, suffix=".wav"):
        table[name] = folder / f"{name}{suffix}"
        return table[name]

    sf.write(put(good, "pcm16"), x, RATE, subtype="PCM_16")
    # k / 32768 is exact in float32 and as a 24-bit integer (k·256): the same samples in other encodings.
    sf.write(put(good, "float32"), x, RATE, subtype="FLOAT")
    sf.write(put(good, "pcm24"), x, RATE, subtype="PCM_24")
    for rate in RESAMPLED:
        sf.write(put(good, f"rate{rate}"), resample_poly(x, rate // 50, RATE // 50), rate, subtype="FLOAT")
    # After a resampled file, so that the batch summary's single example is not this one.
    sf.write(put(good, "stereo"), np.stack([x, x], axis=1), RATE, subtype="FLOAT")
    sf.write(put(good, "silence"), np.zeros(RATE), RATE, subtype="PCM_16")
    lie = put(good, "header_lie")
    sf.write(lie, x, RATE, subtype="PCM_16")
    lie.write_bytes(lie.read_bytes()[: 44 + 2 * 4000])  # the header still says 16000 samples

    put(bad, "empty").write_bytes(b"")
    sf.write(put(bad, "zero_samples"), np.zeros(0), RATE, subtype="PCM_16")
    truncated = put(bad, "truncated", ".flac")
    sf.write(truncated, np.random.default_rng(0).uniform(-0.5, 0.5, RATE), RATE, subtype="PCM_16")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    put(bad, "not_audio").write_bytes(b"this is a text file, not audio\n" * 20)
    with_nan, with_inf = x.copy(), x.copy()
    with_nan[100] = np.nan
    with_inf[[5, 9000]] = [np.inf, -np.inf]
    sf.write(put(bad, "nan"), with_nan, RATE, subtype="FLOAT")
    sf.write(put(bad, "inf"), with_inf, RATE, subtype="FLOAT")
    sf.write(put(bad, "too_short"), x[:100], RATE, subtype="PCM_16")
    put(bad, "directory").mkdir()
    unreadable = put(bad, "unreadable")
    sf.write(unreadable, x, RATE, subtype="PCM_16")
    unreadable.chmod(0)  # enough for a normal user; root is handled by the `unreadable` fixture
    assert set(bad) == set(BAD_CAUSES)
    return good, bad


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A tiny trained model, its training corpus and the input matrix (built once per module)."""
    from conftest import synthetic_corpus

    root = tmp_path_factory.mktemp("reliability")
    corpus = synthetic_corpus(root / "corpus", n_per_class=4)
    model = root / "model.npz"
    LFCCGMMScorer(n_components=2, max_iter=2, init_samples=300).fit(corpus).save(model)
    good, bad = _build_matrix(root / "matrix", corpus[0].path)
    honest = root / "first4000.wav"  # what the lying header's file really holds
    sf.write(honest, sf.read(corpus[0].path)[0][:4000], RATE, subtype="PCM_16")
    return {"root": root, "corpus": corpus, "model": model, "good": good, "bad": bad, "honest": honest}


@pytest.fixture
def unreadable(workspace, monkeypatch):
    """Make the matrix's ``unreadable`` file unreadable for this process.

    chmod 000 is enough for a normal user, but root reads anything: then os.access is made to answer as
    it would for a normal user, which is the check lfcc_gmm.audio makes before libsndfile opens a file.
    """
    path = workspace["bad"]["unreadable"]
    if os.geteuid() == 0:
        real_access = os.access

        def access(target, mode, *args, **kwargs):
            if mode & os.R_OK and os.path.abspath(os.fspath(target)) == str(path):
                return False
            return real_access(target, mode, *args, **kwargs)

        monkeypatch.setattr(os, "access", access)
    return path


def batch_order(workspace, exclude: tuple[str, ...] = ("unreadable",)) -> list[tuple[str, Path]]:
    """Corpus files, good matrix files and bad ones interleaved, so failures sit between successes.

    The unreadable file is left out by default: as a command-line argument it meets click's own
    readability check first (see test_unreadable_argument_is_one_failure_not_a_usage_error).
    """
    good = [(t.file_id, t.path) for t in workspace["corpus"]] + list(workspace["good"].items())
    bad = [(i, p) for i, p in workspace["bad"].items() if i not in exclude]
    order = []
    for i, item in enumerate(good):
        order.append(item)
        if i % 2 and bad:
            order.append(bad.pop(0))
    return order + bad


def read_errors(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def invoke(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


# --------------------------------------------------------------------------------------------------------------
# antispoof score


def score_args(workspace, *extra):
    return ["score", "--scorer", "lfcc-gmm", "--model", workspace["model"], *extra]


def test_score_batch_scores_every_good_file_and_lists_every_bad_one(workspace, tmp_path):
    order = batch_order(workspace)
    assert len(order) > 20  # past the verdict limit: a real batch
    good_ids = [i for i, _ in order if i not in BAD_CAUSES]
    bad = [(i, p) for i, p in order if i in BAD_CAUSES]
    out = tmp_path / "scores.txt"
    result = invoke(*score_args(workspace, "-o", out), *[p for _, p in order])

    assert result.exit_code == 1, result.output
    table = read_scores(out)
    assert table.ids == good_ids
    assert np.isfinite(table.scores).all()  # silence included: the log floor keeps LFCC finite
    scores = dict(zip(table.ids, table.scores, strict=True))
    # One recording stored as 16-bit, 24-bit, float and as two identical channels: the same samples, the same
    # score. A wrong integer scale or a channel misread as time would show here.
    assert scores["pcm16"] == scores["pcm24"] == scores["float32"] == scores["stereo"]
    assert scores["pcm16"] == scores["F000"]
    # A header claiming more samples than the file holds: the samples present are scored, nothing invented.
    honest = LFCCGMMScorer.load(workspace["model"]).score_files([workspace["honest"]])[0]
    assert scores["header_lie"] == honest

    rows = read_errors(Path(f"{out}.errors.tsv"))
    assert [row["file_id"] for row in rows] == [i for i, _ in bad]
    for (file_id, path), row in zip(bad, rows, strict=True):
        assert row["path"] == str(path)
        # The path has its column; the reason says only what is wrong (issue 16: failure lines repeated the path).
        assert str(path) not in row["reason"] and re.search(BAD_CAUSES[file_id], row["reason"]), row
    assert f"{len(bad)} of {len(order)} files failed; see {out}.errors.tsv" in result.output
    assert not Path(f"{out}.partial").exists()

    # Conversions are announced, with a count, and each resampled file by name.
    assert f"note: {len(RESAMPLED) + 1} file(s) are not 16 kHz mono and will be converted" in result.output
    for rate in RESAMPLED:
        assert f"note: {workspace['good'][f'rate{rate}']}: resampled {rate} Hz -> 16000 Hz" in result.output

    again = invoke(*score_args(workspace, "-o", out, "--allow-failures"), *[p for _, p in order])
    assert again.exit_code == 0, again.output
    assert read_scores(out).ids == good_ids and len(read_errors(Path(f"{out}.errors.tsv"))) == len(bad)


def test_score_batch_names_every_converted_file(workspace, tmp_path):
    order = batch_order(workspace)
    result = invoke(*score_args(workspace, "-o", tmp_path / "s.txt", "--allow-failures"), *[p for _, p in order])
    assert result.exit_code == 0, result.output
    assert f"{workspace['good']['stereo']}: averaged 2 channels to mono" in result.output


def test_score_verdicts_say_what_was_converted_and_why_a_file_failed(workspace):
    good, bad = workspace["good"], workspace["bad"]
    names = ["stereo", "rate8000", "silence", "nan", "directory", "truncated", "too_short"]
    paths = [good.get(n) or bad.get(n) for n in names]
    result = invoke(*score_args(workspace, "--allow-failures", "--format", "json"), *paths)
    assert result.exit_code == 0, result.output
    objects = {o["file"]: o for o in json.loads(result.stdout)}
    assert list(objects) == [str(p) for p in paths]
    assert "converted on load: averaged 2 channels to mono" in objects[str(good["stereo"])]["warnings"]
    assert "converted on load: resampled 8000 Hz -> 16000 Hz" in objects[str(good["rate8000"])]["warnings"]
    silence = objects[str(good["silence"])]
    assert silence["verdict"] == "no speech" and np.isfinite(silence["score"])
    for name in ("nan", "directory", "truncated", "too_short"):
        failure = objects[str(bad[name])]
        # The reason says what is wrong; the path is the object's file, never repeated in the reason.
        assert re.search(BAD_CAUSES[name], failure["error"]) and str(bad[name]) not in failure["error"]
        assert failure["verdict"] is None and failure["score"] is None
    text = invoke(*score_args(workspace, "--allow-failures"), *paths).stdout
    assert f"{bad['nan']}: FAILED (" in text and f"{good['silence']}: no speech (" in text


def test_score_verdicts_exit_1_when_a_file_failed(workspace):
    result = invoke(*score_args(workspace), workspace["good"]["pcm16"], workspace["bad"]["not_audio"])
    assert "FAILED" in result.output
    assert result.exit_code == 1


def test_score_list_with_a_directory_fails_that_entry_only(workspace, tmp_path):
    listing = tmp_path / "list.csv"
    directory = workspace["bad"]["directory"]
    listing.write_text(f"{workspace['good']['pcm16']},bonafide\n{directory},spoof\n")
    out = tmp_path / "s.txt"
    result = invoke(*score_args(workspace, "--list", listing, "-o", out))
    assert "missing" not in result.output
    assert result.exit_code == 1 and read_scores(out).ids == ["pcm16"]
    (row,) = read_errors(Path(f"{out}.errors.tsv"))
    assert row["path"] == str(directory) and "is a directory" in row["reason"]


def test_score_list_batch_reports_an_unreadable_file(workspace, unreadable, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text(f"{workspace['good']['pcm16']},bonafide\n{unreadable},spoof\n")
    out = tmp_path / "s.txt"
    result = invoke(*score_args(workspace, "--list", listing, "-o", out))
    assert result.exit_code == 1, result.output
    assert read_scores(out).ids == ["pcm16"]
    (row,) = read_errors(Path(f"{out}.errors.tsv"))
    # The path has its column; the reason says only what is wrong (issue 16: failure lines repeated the path).
    assert row["path"] == str(unreadable) and row["reason"].startswith("permission denied")


@pytest.mark.parametrize("command", ["score", "lfcc"])
def test_unreadable_argument_is_one_failure_not_a_usage_error(workspace, unreadable, tmp_path, command):
    files = [workspace["good"]["pcm16"], unreadable]
    out = tmp_path / "out"
    args = score_args(workspace, "-o", out) if command == "score" else ["lfcc", "-o", out]
    result = invoke(*args, *files)
    assert result.exit_code == 1, result.output
    errors = Path(f"{out}.errors.tsv") if command == "score" else out / "lfcc.errors.tsv"
    (row,) = read_errors(errors)
    assert row["path"] == str(unreadable) and "permission denied" in row["reason"]


# --------------------------------------------------------------------------------------------------------------
# antispoof lfcc


def test_lfcc_batch_writes_every_good_file_and_lists_every_bad_one(workspace, tmp_path):
    order = batch_order(workspace)
    bad = [(i, p) for i, p in order if i in BAD_CAUSES]
    out = tmp_path / "feats"
    result = invoke("lfcc", "-o", out, *[p for _, p in order])

    assert result.exit_code == 1, result.output
    written = {p.stem: np.load(p, allow_pickle=False) for p in out.glob("*.npy")}
    assert written.keys() == {i for i, _ in order if i not in BAD_CAUSES}
    # Every 1-s file has 16000 samples at 16 kHz, resampled or not (resample_poly gives n·up/down samples):
    # ceil((16000 - 160) / 160) = 99 frames; the lying header's 4000 samples give ceil(3840 / 160) = 24.
    for file_id, features in written.items():
        assert features.shape == (24 if file_id == "header_lie" else 99, 60), file_id
    for name in ("pcm24", "float32", "stereo", "F000"):
        np.testing.assert_array_equal(written[name], written["pcm16"], err_msg=name)
    assert all(np.isfinite(a).all() for a in written.values())

    errors = out / "lfcc.errors.tsv"
    rows = read_errors(errors)
    assert [(row["file_id"], row["path"]) for row in rows] == [(i, str(p)) for i, p in bad]
    for row in rows:
        assert re.search(BAD_CAUSES[row["file_id"]], row["reason"]), row
    assert f"{len(bad)} of {len(order)} files failed; see {errors}" in result.output
    for rate in RESAMPLED:
        assert f"note: {workspace['good'][f'rate{rate}']}: resampled {rate} Hz -> 16000 Hz" in result.output
    assert f"note: {workspace['good']['stereo']}: averaged 2 channels to mono" in result.output

    # A rerun skips what exists, retries the failures, and --allow-failures makes them non-fatal.
    again = invoke("lfcc", "-o", out, "--allow-failures", *[p for _, p in order])
    assert again.exit_code == 0, again.output
    assert f"{len(written)} file(s) already have features" in again.output
    assert len(read_errors(errors)) == len(bad)


# --------------------------------------------------------------------------------------------------------------
# antispoof train lfcc-gmm


def training_list(workspace, folder: Path) -> tuple[Path, list[tuple[str, Path]]]:
    """A CSV list of the corpus with its keys, the good matrix files and the bad ones (except the directory,
    which the list's up-front existence check handles)."""
    rows = [(t.path, t.key) for t in workspace["corpus"]]
    rows += [(p, "bonafide") for p in workspace["good"].values()]
    bad = [(i, p) for i, p in workspace["bad"].items() if i != "directory"]
    rows += [(p, "spoof") for _, p in bad]
    listing = folder / "train.csv"
    listing.write_text("path,label\n" + "".join(f"{p},{k}\n" for p, k in rows))
    return listing, bad


TRAIN_TINY = ("--components", "2", "--iterations", "2", "--init-samples", "300")


def test_train_skips_bad_files_and_records_each_with_its_cause(workspace, unreadable, tmp_path):
    listing, bad = training_list(workspace, tmp_path)
    model = tmp_path / "m.npz"
    result = invoke("train", "lfcc-gmm", "--list", listing, "-o", model, *TRAIN_TINY)
    # The exit code is test_train_exit_code_reports_skipped_files's business; the model is written either way.
    assert "Traceback" not in result.output and model.is_file(), result.output
    meta = LFCCGMMScorer.load(model).metadata()["training"]
    n_good = len(workspace["corpus"]) + len(workspace["good"])
    assert meta["bonafide"]["files"] + meta["spoof"]["files"] == n_good
    failures = meta["failures"]
    assert [(f["file_id"], f["path"]) for f in failures] == [(i, str(p)) for i, p in bad]
    for failure in failures:
        assert re.search(BAD_CAUSES[failure["file_id"]], failure["reason"]), failure
    assert f"{len(bad)} file(s) were skipped" in result.output
    assert f"note: {workspace['good']['rate44100']}: resampled 44100 Hz -> 16000 Hz" in result.output


def test_train_lists_every_skipped_file_in_an_errors_file(workspace, unreadable, tmp_path):
    listing, bad = training_list(workspace, tmp_path)
    model = tmp_path / "m.npz"
    invoke("train", "lfcc-gmm", "--list", listing, "-o", model, *TRAIN_TINY)
    rows = read_errors(Path(f"{model}.errors.tsv"))
    assert [(row["file_id"], row["path"]) for row in rows] == [(i, str(p)) for i, p in bad]


def test_train_exit_code_reports_skipped_files(workspace, unreadable, tmp_path):
    listing, _ = training_list(workspace, tmp_path)
    result = invoke("train", "lfcc-gmm", "--list", listing, "-o", tmp_path / "m.npz", *TRAIN_TINY)
    assert result.exit_code == 1 and (tmp_path / "m.npz").exists()
    allowed = invoke("train", "lfcc-gmm", "--list", listing, "-o", tmp_path / "m.npz", "--allow-failures",
                     *TRAIN_TINY)
    assert allowed.exit_code == 0, allowed.output


# --------------------------------------------------------------------------------------------------------------
# Protocols and score files


def protocol_args(command: str, workspace, protocol: Path, tmp_path: Path) -> list:
    inputs = ["--protocol", protocol, "--audio-dir", workspace["corpus"][0].path.parent, "--ext", ".wav"]
    if command == "score":
        return score_args(workspace, *inputs, "-o", tmp_path / "s.txt")
    if command == "lfcc":
        return ["lfcc", *inputs, "-o", tmp_path / "feats"]
    return ["train", "lfcc-gmm", *inputs, "-o", tmp_path / "m.npz", *TRAIN_TINY]


@pytest.mark.parametrize("command", ["score", "lfcc", "train"])
@pytest.mark.parametrize(
    ("text", "line", "cause"),
    [
        ("S F000 - - bonafide\nS F001 - S01\n", 2, "4 columns where earlier lines have 5"),
        ("S F000 - - bonafide\nS F001 - S01 maybe\n", 2, "unknown label 'maybe'"),
        ("S F000 - - bonafide\nS F001 - S01 spoof\nS F000 - S01 spoof\n", 3, "duplicate ID 'F000'"),
        ("S F000\n", 1, "2 columns; expected 1"),
    ],
)
def test_malformed_protocol_is_a_data_error_naming_file_and_line(workspace, tmp_path, command, text, line, cause):
    protocol = tmp_path / "protocol.txt"
    protocol.write_text(text)
    result = invoke(*protocol_args(command, workspace, protocol, tmp_path))
    assert result.exit_code == 1
    assert f"Error: {protocol}:{line}: {cause}" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["protocol.txt"]  # nothing written


def test_duplicate_id_names_its_real_line(workspace, tmp_path):
    protocol = tmp_path / "protocol.txt"
    protocol.write_text("S F000 - - bonafide\n\nS F001 - S01 spoof\nS F000 - S01 spoof\n")
    result = invoke(*protocol_args("score", workspace, protocol, tmp_path))
    assert f"{protocol}:4: duplicate ID 'F000'" in result.output


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_binary_protocol_or_score_file_names_the_file(workspace, tmp_path, command):
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\x80\x04\x95\x00\xff binary \xfe\n" * 4)
    if command == "score":
        result = invoke(*protocol_args("score", workspace, binary, tmp_path))
    else:
        result = invoke("evaluate", binary)
    assert result.exit_code == 1
    assert str(binary) in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a - bonafide 1.5\nb A01 spoof nan\n", ":2: score is nan (scores must be finite)"),
        ("a - bonafide 1.5\nb A01 spoof -inf\n", ":2: score is -inf (scores must be finite)"),
        ("a - bonafide 1.5\nb A01 spoof 0,25\n", ":2: score '0,25' is not a number"),
        ("a - bonafide 1.5\nA01 spoof 0.25\n", ":2: 3 columns where earlier lines have 4"),  # ID missing
        ("a 1.5\n-0.5\n", ":2: 1 columns where earlier lines have 2"),  # ID missing
    ],
)
def test_evaluate_rejects_bad_score_files_naming_file_and_line(tmp_path, text, message):
    scores = tmp_path / "scores.txt"
    scores.write_text(text)
    result = invoke("evaluate", scores, "--json")
    assert result.exit_code == 1
    assert f"Error: {scores}{message}" in result.output
    assert result.stdout == ""  # no half-computed JSON


# --------------------------------------------------------------------------------------------------------------
# Untrusted files: a pickle where data is expected is refused without running it


class Payload:
    """Unpickling this creates ``marker``: if the marker exists, the payload ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_models(folder: Path, real_model: Path, marker: Path) -> list[Path]:
    """Three disguises: a bare pickle named .npz, an npz whose metadata is a pickled object, and the real
    model with one GMM array replaced by a pickled object (np.load reads npz members lazily)."""
    bare = folder / "bare_pickle.npz"
    bare.write_bytes(pickle.dumps(Payload(marker)))
    metadata = folder / "object_metadata.npz"
    np.savez(metadata, metadata=np.array([Payload(marker)], dtype=object))
    with np.load(real_model, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["spoof_means"] = np.array([Payload(marker)], dtype=object)
    member = folder / "object_member.npz"
    np.savez(member, **arrays)
    return [bare, metadata, member]


def test_crafted_model_files_are_refused_by_score_without_running(workspace, tmp_path):
    marker = tmp_path / "payload_ran"
    for evil in crafted_models(tmp_path, workspace["model"], marker):
        result = invoke("score", "--scorer", "lfcc-gmm", "--model", evil, workspace["good"]["pcm16"])
        assert result.exit_code == 1, (evil.name, result.output)
        assert f"Error: {evil}: not an LFCC-GMM model file" in result.output
        assert "Traceback" not in result.output
    assert not marker.exists()


def test_pickled_lfcc_cache_entries_are_recomputed_not_loaded(workspace, tmp_path):
    cache = tmp_path / "cache"
    corpus = workspace["corpus"]
    listing = tmp_path / "train.csv"
    listing.write_text("".join(f"{t.path},{t.key}\n" for t in corpus))
    args = ["train", "lfcc-gmm", "--list", listing, "--cache-dir", cache, *TRAIN_TINY]
    assert invoke(*args, "-o", tmp_path / "clean.npz").exit_code == 0
    config = PRESETS["asvspoof2019"]
    entries = [cache / f"{cache_key(t.path, config, RATE, np.float32)}.npy" for t in corpus]
    assert all(e.is_file() for e in entries)

    marker = tmp_path / "payload_ran"
    for i, entry in enumerate(entries):
        if i % 2:
            entry.write_bytes(pickle.dumps(Payload(marker)))  # a bare pickle
        else:
            np.save(entry, np.array([Payload(marker)], dtype=object), allow_pickle=True)  # a pickle inside .npy
    result = invoke(*args, "-o", tmp_path / "again.npz")
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    clean, again = LFCCGMMScorer.load(tmp_path / "clean.npz"), LFCCGMMScorer.load(tmp_path / "again.npz")
    for key in ("bonafide", "spoof"):
        np.testing.assert_array_equal(getattr(again, f"{key}_gmm_").means_, getattr(clean, f"{key}_gmm_").means_)
    # The poisoned entries were replaced by the real features.
    for trial, entry in zip(corpus, entries, strict=True):
        expected = lfcc(sf.read(trial.path)[0], dtype=np.float32)
        np.testing.assert_array_equal(np.load(entry, allow_pickle=False), expected)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_fusion_file_that_is_a_pickle_is_refused_without_running(tmp_path, protocol):
    marker = tmp_path / "payload_ran"
    path = tmp_path / "fusion.json"
    path.write_bytes(pickle.dumps(Payload(marker), protocol=protocol))
    with pytest.raises(ValueError):
        LinearFusion.load(path)
    assert not marker.exists()


def test_binary_fusion_file_error_names_the_file(tmp_path):
    path = tmp_path / "fusion.json"
    path.write_bytes(pickle.dumps(Payload(tmp_path / "payload_ran"), protocol=pickle.HIGHEST_PROTOCOL))
    with pytest.raises(ValueError, match=re.escape(str(path))):
        LinearFusion.load(path)


# --------------------------------------------------------------------------------------------------------------
# Source scan: no code path may unpickle


PICKLE_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "shelve", "marshal"}
YAML_SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _is_constant(node: ast.AST | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_calls(source: str) -> list[tuple[int, str]]:
    """(line, call) for every call in ``source`` that can unpickle untrusted data.

    Flags ``allow_pickle=`` anything but ``False``; ``pickle``-family and ``joblib.load`` loaders;
    ``torch.load`` without ``weights_only=True``; ``yaml.load``/``load_all`` without a safe Loader and
    ``yaml.unsafe_load``/``full_load``. Import aliases (``import numpy as np``, ``from pickle import
    loads``) are resolved, wherever in the file the import is.
    """
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as c` binds `c` to a.b.
                bound = alias.asname or alias.name.split(".")[0]
                aliases[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        if "allow_pickle" in keywords and not _is_constant(keywords["allow_pickle"], False):
            found.append((node.lineno, "allow_pickle other than False"))
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        name = aliases.get(head, head) + (f".{rest}" if rest else "")
        module, _, function = name.rpartition(".")
        unpickler = module.split(".")[0] in PICKLE_MODULES and function in {"load", "loads", "Unpickler", "open"}
        if unpickler or name == "joblib.load":
            found.append((node.lineno, name))
        elif name == "torch.load" and not _is_constant(keywords.get("weights_only"), True):
            found.append((node.lineno, "torch.load without weights_only=True"))
        elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            found.append((node.lineno, name))
        elif name in ("yaml.load", "yaml.load_all"):
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            loader_name = _dotted(loader) if loader is not None else None
            if loader_name is None or loader_name.rpartition(".")[2] not in YAML_SAFE_LOADERS:
                found.append((node.lineno, f"{name} without a safe Loader"))
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.load(p, allow_pickle=True)",
        "import numpy\nnumpy.load(p, allow_pickle=flag)",
        "import pickle\npickle.load(f)",
        "from pickle import loads as l\nl(b)",
        "import joblib\njoblib.load(p)",
        "import torch\ntorch.load(p)",
        "import torch\ntorch.load(p, map_location='cpu', weights_only=False)",
        "def f():\n    import torch as t\n    return t.load(\n        p,\n        map_location='cpu')",
        "import yaml\nyaml.load(text)",
        "import yaml\nyaml.load(text, Loader=yaml.FullLoader)",
        "import yaml\nyaml.unsafe_load(text)",
    ],
)
def test_scanner_catches_unsafe_loads(snippet):
    assert unsafe_calls(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.load(p, allow_pickle=False)\nnp.load(p)",
        "import torch\ntorch.load(p,\n    map_location='cpu',\n    weights_only=True)",
        "import yaml\nyaml.safe_load(text)\nyaml.load(text, Loader=yaml.SafeLoader)",
        "import json\njson.load(f)",
        '"""torch.load(path) in a docstring is not a call"""',
    ],
)
def test_scanner_passes_safe_loads(snippet):
    assert unsafe_calls(snippet) == []


def test_package_sources_never_unpickle():
    sources = sorted(p for folder in ("lfcc_gmm", "rawnet", "cli") for p in (REPO_ROOT / folder).rglob("*.py"))
    assert len(sources) >= 20
    problems = [f"{path.relative_to(REPO_ROOT)}:{line}: {what}"
                for path in sources for line, what in unsafe_calls(path.read_text(encoding="utf-8"))]
    assert problems == []
    # The scan sees the real loaders it vouches for: made unsafe, they are flagged (else it proves nothing).
    for name, safe, unsafe in [("lfcc_gmm/baseline.py", "allow_pickle=False", "allow_pickle=True"),
                               ("rawnet/checkpoint.py", "weights_only=True", "weights_only=False")]:
        text = (REPO_ROOT / name).read_text(encoding="utf-8")
        assert safe in text, name
        assert unsafe_calls(text) == [] and unsafe_calls(text.replace(safe, unsafe)), name

