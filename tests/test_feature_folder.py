"""`antispoof lfcc -o DIR` and :func:`lfcc_gmm.batch.extract_to_folder`: every feature file lands under DIR, under a
name no other input shares (issue 16: same-named inputs wrote next to the audio, or crashed with relative paths)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.audio import load_audio
from lfcc_gmm.batch import extract_to_folder, feature_paths
from lfcc_gmm.features import lfcc
from lfcc_gmm.protocols import Trial, trials_from_paths


def tone(path: Path, hz: float, fmt: str | None = None, subtype: str | None = None) -> Path:
    """One second of a tone at ``hz`` (each file its own, so a file written for another input shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(16000) / 16000
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t) + 0.01 * np.cos(2 * np.pi * 3 * hz * t), 16000, format=fmt,
             subtype=subtype)
    return path


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


def run_lfcc(*args) -> object:
    result = CliRunner().invoke(main, ["lfcc", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


def assert_features_of(npy: Path, audio: Path) -> None:
    # The same computation as the command's default (2019 preset, float64) on the decoded file.
    np.testing.assert_array_equal(np.load(npy, allow_pickle=False), lfcc(load_audio(audio, warn=False).signal))


def test_same_names_in_two_folders_with_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tone(Path("a/x.flac"), 220), tone(Path("b/x.flac"), 330)
    before = files_under(tmp_path)
    result = run_lfcc("a/x.flac", "b/x.flac", "-o", "OUT")
    assert "Wrote 2 feature file(s) to OUT" in result.output
    assert files_under(tmp_path) - before == {Path("OUT/a/x.flac.npy"), Path("OUT/b/x.flac.npy")}
    assert_features_of(tmp_path / "OUT/a/x.flac.npy", tmp_path / "a/x.flac")
    assert_features_of(tmp_path / "OUT/b/x.flac.npy", tmp_path / "b/x.flac")


def test_same_names_in_two_folders_with_absolute_paths(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    data = tmp_path / "data"
    a, b = tone(data / "a" / "x.flac", 220), tone(data / "b" / "x.flac", 330)
    out = tmp_path / "elsewhere" / "OUT"
    before = files_under(tmp_path)
    run_lfcc(a, b, "-o", out)
    # Mirrored below the folder the inputs share (data/), never beside the audio.
    assert files_under(tmp_path) - before == {Path("elsewhere/OUT/a/x.flac.npy"), Path("elsewhere/OUT/b/x.flac.npy")}
    assert_features_of(out / "a" / "x.flac.npy", a)
    assert_features_of(out / "b" / "x.flac.npy", b)


def test_same_stem_in_two_formats(tmp_path, monkeypatch):
    if not (sf.check_format("MP3", "MPEG_LAYER_III") and sf.check_format("OGG", "VORBIS")):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write MP3 and Ogg Vorbis")
    monkeypatch.chdir(tmp_path)
    tone(Path("tts.mp3"), 220, "MP3", "MPEG_LAYER_III"), tone(Path("tts.ogg"), 330, "OGG", "VORBIS")
    before = files_under(tmp_path)
    run_lfcc("tts.mp3", "tts.ogg", "-o", "OUT")
    assert files_under(tmp_path) - before == {Path("OUT/tts.mp3.npy"), Path("OUT/tts.ogg.npy")}
    assert_features_of(tmp_path / "OUT/tts.mp3.npy", tmp_path / "tts.mp3")
    assert_features_of(tmp_path / "OUT/tts.ogg.npy", tmp_path / "tts.ogg")


def test_paths_climbing_out_of_the_working_folder(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    tone(tmp_path / "a" / "x.flac", 220), tone(tmp_path / "b" / "x.flac", 330)
    before = files_under(tmp_path)
    run_lfcc("../a/x.flac", "../b/x.flac", "-o", "OUT")
    assert files_under(tmp_path) - before == {Path("work/OUT/a/x.flac.npy"), Path("work/OUT/b/x.flac.npy")}


def test_distinct_names_keep_the_file_id_layout_and_a_rerun_skips_them(tmp_path):
    a, b = tone(tmp_path / "a" / "one.wav", 220), tone(tmp_path / "b" / "two.wav", 330)
    out = tmp_path / "OUT"
    run_lfcc(a, b, "-o", out)
    assert files_under(out) == {Path("one.npy"), Path("two.npy")}
    again = run_lfcc(a, b, "-o", out)
    assert "2 file(s) already have features" in again.output and "Wrote 0 feature file(s)" in again.output


def test_feature_paths_of_protocol_ids_and_of_the_same_file_twice(tmp_path):
    trials = [Trial("LA_T_1", "bonafide", path=tmp_path / "x" / "LA_T_1.flac"), Trial("LA_T_2", "spoof")]
    assert feature_paths(trials, tmp_path / "F") == [tmp_path / "F" / "LA_T_1.npy", tmp_path / "F" / "LA_T_2.npy"]
    with pytest.raises(ValueError, match="x.wav is given 2 times; name each audio file once"):
        trials_from_paths([tmp_path / "a" / "x.wav", tmp_path / "a" / "x.wav"])
    again = [Trial(f"{tmp_path}/a/x", None, path=tmp_path / "a" / "x.wav")] * 2  # built without trials_from_paths
    with pytest.raises(ValueError, match="would both write .*x.wav.npy; give each file once"):
        feature_paths(again, tmp_path / "F")


def test_library_reports_what_it_wrote(tmp_path):
    good = tone(tmp_path / "good.wav", 220)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 20)
    result = extract_to_folder(trials_from_paths([good, bad]), tmp_path / "F")
    assert (result.n_total, result.n_written, result.n_skipped) == (2, 1, 0)
    assert [(f[0], f[1]) for f in result.failures] == [("bad", str(bad))]
    assert result.errors_path == tmp_path / "F" / "lfcc.errors.tsv" and result.errors_path.is_file()
    assert sorted(os.listdir(tmp_path / "F")) == ["good.npy", "lfcc.errors.tsv"]
