"""Verdicts on whole recordings (lfcc_gmm.analysis): no speech is never bona fide, a spliced insert shows in the
timeline, a TTS sentence after a pause is still spoof, the LFCC-GMM timeline is what it says, the thresholds are
set on data, and the command line prints it all for files, folders and standard input."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from error_bounds import gamma

from cli.main import main
from lfcc_gmm.analysis import analyse_audio, analyse_files, assess_audio, padding_window
from lfcc_gmm.audio import Audio, load_audio
from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.features import get_config, iter_lfcc
from lfcc_gmm.gmm import log_likelihood
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.plots import timeline_figure
from lfcc_gmm.protocols import read_protocol
from lfcc_gmm.segments import SegmentGrid
from lfcc_gmm.speech import detect_speech

CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo"
RATE = 16000
BONA_FIDE_EVAL = ("DEMO_E_0001", "DEMO_E_0003", "DEMO_E_0006", "DEMO_E_0009")


def clip(file_id: str) -> np.ndarray:
    return load_audio(CORPUS / "flac" / f"{file_id}.flac").signal


def near_silence(seconds: float, seed: int = 0) -> np.ndarray:
    return 10 ** (-60 / 20) * np.random.default_rng(seed).standard_normal(int(seconds * RATE))


def non_speech() -> dict[str, np.ndarray]:
    """3 s of digital silence, near-silence, a tone and loud noise: none of them may be called bona fide."""
    t = np.arange(3 * RATE) / RATE
    return {"silence": np.zeros(3 * RATE), "near-silence": near_silence(3),
            "tone": 0.3 * np.sin(2 * np.pi * 440 * t),
            "noise": 0.1 * np.random.default_rng(1).standard_normal(3 * RATE)}


def spliced(insert_id: str) -> tuple[np.ndarray, float, float]:
    """Four bona fide eval clips with a spoofed one in the middle; returns the signal and the insert's start and end
    in seconds."""
    before, after = [clip(i) for i in BONA_FIDE_EVAL[:2]], [clip(i) for i in BONA_FIDE_EVAL[2:]]
    insert = clip(insert_id)
    start = sum(x.size for x in before) / RATE
    return np.concatenate([*before, insert, *after]), start, start + insert.size / RATE


def assert_dip_at(segments, start: float, end: float) -> None:
    """The segments over the insert's middle score below every segment that does not touch the insert."""
    middle = (start + end) / 2
    over = [s.score for s in segments if s.start_s <= middle < s.end_s]
    apart = [s.score for s in segments if s.end_s <= start or s.start_s >= end]
    assert over and apart and min(over) < min(apart), segments
    lowest = min(segments, key=lambda s: s.score)
    assert lowest.start_s < end and lowest.end_s > start, segments


@pytest.fixture(scope="module")
def lfcc_gmm() -> LFCCGMMScorer:
    """A small LFCC-GMM trained on the demo train split's bona fide files and its espeak TTS (D01)."""
    train = [t for t in read_protocol(CORPUS / "protocols" / "train.txt", CORPUS / "flac")
             if t.key == "bonafide" or t.attack == "D01"]
    return LFCCGMMScorer(n_components=8, max_iter=3, init_samples=4000, jobs=2).fit(train)


@pytest.fixture(scope="module")
def aasist(reference_dir):
    from rawnet.scorers import AASISTScorer

    return AASISTScorer.load(reference_dir / "aasist" / "AASIST.pth", device="cpu")


def audios(signals) -> list[Audio]:
    return [Audio(np.asarray(x, dtype=np.float64), RATE, RATE, 1) for x in signals]


# -- no speech, whatever the score -----------------------------------------------------------------------------

@pytest.mark.slow
def test_non_speech_is_never_bona_fide_lfcc_gmm(lfcc_gmm):
    recordings = non_speech()
    for name, assessment in zip(recordings, assess_audio(lfcc_gmm, audios(recordings.values()), None), strict=True):
        result = assessment.result(name, "lfcc-gmm", lfcc_gmm.threshold())
        assert result.verdict == "no speech" and np.isfinite(result.score), result
        assert any(w.startswith("no speech: ") for w in result.warnings)


@pytest.mark.slow
def test_non_speech_is_never_bona_fide_aasist(aasist):
    recordings = non_speech()
    assessments = assess_audio(aasist, audios(recordings.values()), aasist.default_grid())
    scores = {name: a.score for name, a in zip(recordings, assessments, strict=True)}
    # Without the checks, AASIST would call silence bona fide: its score is above the threshold ...
    assert scores["silence"] > aasist.threshold().value
    # ... and the checks make every one of them "no speech".
    assert [a.result(n, "aasist", aasist.threshold()).verdict for n, a in zip(recordings, assessments,
                                                                              strict=True)] == ["no speech"] * 4


@pytest.mark.slow
def test_demo_speech_is_never_no_speech_end_to_end(lfcc_gmm, tmp_path):
    from lfcc_gmm.batch import score_trials

    dev = read_protocol(CORPUS / "protocols" / "dev.txt", CORPUS / "flac")
    result = score_trials(lfcc_gmm, dev, tmp_path / "dev.txt")
    assert result.n_scored == len(dev) and result.no_speech == []


# -- the timeline -----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_spliced_tts_insert_shows_as_a_dip_lfcc_gmm(lfcc_gmm):
    signal, start, end = spliced("DEMO_E_0004")  # espeak (D01), a seen attack
    (assessment,) = assess_audio(lfcc_gmm, audios([signal]), lfcc_gmm.default_grid())
    assert len(assessment.segments) >= 6
    assert_dip_at(assessment.segments, start, end)


@pytest.mark.slow
def test_a_spliced_vocoder_insert_shows_as_a_dip_aasist(aasist):
    insert = next(t.file_id for t in read_protocol(CORPUS / "protocols" / "eval.txt", CORPUS / "flac")
                  if t.attack == "D04")  # Griffin-Lim, which AASIST catches best on this corpus
    signal, start, end = spliced(insert)
    (assessment,) = assess_audio(aasist, audios([signal]), aasist.default_grid())
    assert_dip_at(assessment.segments, start, end)


@pytest.mark.slow
def test_a_tts_sentence_after_a_pause_is_spoof_over_the_whole_file(aasist, reference_dir):
    from rawnet.scorers import AASISTScorer

    sentence = clip("DEMO_E_0004")  # 2 s of espeak TTS
    late = np.concatenate([near_silence(5), sentence])
    alone, whole = assess_audio(aasist, audios([sentence, late]), aasist.default_grid())
    threshold = aasist.threshold()
    assert alone.score < threshold.value
    result = whole.result("late.wav", "aasist", threshold)
    assert result.verdict == "spoof" and result.mode == "whole file"
    assert any(w.startswith("a long stretch without speech") for w in result.warnings)
    # The official crop reads the first 4.04 s: near-silence, which AASIST calls bona fide.
    cropped = AASISTScorer.load(reference_dir / "aasist" / "AASIST.pth", device="cpu", crop="official")
    (official,) = assess_audio(cropped, audios([late]), None)
    assert official.result("late.wav", "aasist", threshold).verdict == "bona fide"
    assert official.mode == "official crop"


@pytest.mark.slow
def test_lfcc_gmm_timeline_is_its_definition(lfcc_gmm, tmp_path):
    signal = np.concatenate([clip(i) for i in BONA_FIDE_EVAL[:3]])
    path = tmp_path / "three.wav"
    sf.write(path, signal, RATE, subtype="FLOAT")  # float32 holds the 16-bit samples exactly
    (assessment,) = lfcc_gmm.assess_files([path], SegmentGrid(1.5, 0.5))
    # The file score is score_files' own: the same samples through the same blocks and sums (kind 1).
    assert assessment.score == lfcc_gmm.score_files([path])[0]
    # Each segment is the mean log-likelihood ratio of the frames centred in it, recomputed here frame by frame
    # from the rows the scorer reads (the streamed LFCC, one block for a file under 30 s).
    rows = np.concatenate(list(iter_lfcc([load_audio(path).signal], RATE, lfcc_gmm.preset, np.float32)))
    ratios = (log_likelihood(rows, lfcc_gmm.bonafide_gmm_.params_)
              - log_likelihood(rows, lfcc_gmm.spoof_gmm_.params_))
    length, hop = get_config(lfcc_gmm.preset).frame_lengths(RATE)
    centres = (np.arange(ratios.size) * hop + length / 2) / RATE
    expected = [ratios[(centres >= s.start_s) & (centres < s.end_s)].mean() for s in assessment.segments]
    # Running sums against direct means of the same frame values (kind 2): 2 gamma(N) sum|r| + gamma(n) sum|r_span|.
    counts = [np.count_nonzero((centres >= s.start_s) & (centres < s.end_s)) for s in assessment.segments]
    bound = [(2 * gamma(ratios.size, 2**-53) * np.abs(ratios).sum() + gamma(n, 2**-53) * np.abs(ratios).max() * n) / n
             for n in counts]
    assert np.all(np.abs(np.array([s.score for s in assessment.segments]) - expected) <= bound)
    assert [(s.start_s, s.end_s) for s in assessment.segments[:2]] == [(0.0, 1.5), (0.5, 2.0)]


def test_the_short_check_fires_for_the_official_crop_and_for_files_under_half_the_window():
    assert padding_window(3.0, 4.0375, "official crop") == 4.0375
    assert padding_window(3.0, 4.0375, "whole file") is None  # padded less than twice: the training condition
    assert padding_window(1.5, 4.0375, "whole file") == 4.0375
    assert padding_window(1.5, None, "whole file") is None  # LFCC-GMM: no window


# -- thresholds -------------------------------------------------------------------------------------------------

def test_lfcc_gmm_threshold_is_the_dev_eer_point_stored_in_the_model(tiny_corpus, tmp_path):
    train, dev = tiny_corpus[::2] + tiny_corpus[1::4], tiny_corpus
    plain = LFCCGMMScorer(n_components=2, max_iter=2, init_samples=300).fit(train)
    assert plain.threshold().value == 0.0 and "not calibrated" in plain.threshold().meaning
    scorer = LFCCGMMScorer(n_components=2, max_iter=2, init_samples=300).fit(train, dev_trials=dev)
    scores = scorer.score_files([t.path for t in dev])
    bona = np.array([t.key == "bonafide" for t in dev])
    eer, threshold = compute_eer(scores[bona], scores[~bona])
    assert scorer.threshold().value == threshold
    assert f"EER {100 * eer:.2f} %" in scorer.threshold().meaning and f"{len(dev)} files" in scorer.threshold().meaning
    scorer.save(tmp_path / "m.npz")
    again = LFCCGMMScorer.load(tmp_path / "m.npz")
    assert again.threshold() == scorer.threshold()


# -- the picture ------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_timeline_figure_draws_what_it_says(lfcc_gmm, tmp_path):
    signal = np.concatenate([near_silence(3), clip(BONA_FIDE_EVAL[0]), near_silence(1), clip(BONA_FIDE_EVAL[1])])
    path = tmp_path / "gappy.wav"
    sf.write(path, signal, RATE, subtype="FLOAT")
    (result,) = analyse_files(lfcc_gmm, [path], plot_paths=[tmp_path / "plots" / "gappy.png"])
    figure = timeline_figure(signal, RATE, detect_speech(signal, RATE), result)
    artists = {}
    for axes in figure.axes:
        for artist in [*axes.lines, *axes.patches, *axes.collections]:
            artists.setdefault(artist.get_gid(), []).append(artist)
    (line,) = artists["segments"]
    np.testing.assert_array_equal(line.get_ydata(), [s.score for s in result.segments])
    np.testing.assert_array_equal(line.get_xdata(), [(s.start_s + s.end_s) / 2 for s in result.segments])
    (threshold,) = artists["threshold"]
    assert threshold.get_ydata()[0] == result.threshold
    speech = detect_speech(signal, RATE)
    gaps = [(a, b) for a, b in zip([0.0] + [e for _, e in speech.regions],
                                   [s for s, _ in speech.regions] + [speech.duration_s], strict=True) if b > a]
    assert len(artists["non-speech"]) == 2 * len(gaps)  # shaded in both panels
    assert (tmp_path / "plots" / "gappy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the command line -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_file(lfcc_gmm, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "small.npz"
    lfcc_gmm.save(path)
    return path


def run(*args, stdin: bytes | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin)


@pytest.mark.slow
def test_cli_scores_a_folder_recursively_and_sorted(model_file, tmp_path):
    folder = tmp_path / "recordings"
    (folder / "b" / "deeper").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    sf.write(folder / "b" / "deeper" / "one.flac", clip(BONA_FIDE_EVAL[0]), RATE)
    sf.write(folder / "a.wav", clip(BONA_FIDE_EVAL[1]), RATE)
    sf.write(folder / "no_extension", clip(BONA_FIDE_EVAL[2]), RATE, format="WAV")  # found by its header
    sf.write(folder / ".hidden" / "x.wav", clip(BONA_FIDE_EVAL[2]), RATE)
    (folder / "notes.txt").write_text("not audio")
    result = run("score", "--model", model_file, folder, "--format", "json")
    assert result.exit_code == 0, result.output
    objects = json.loads(result.stdout)
    assert [o["file"] for o in objects] == [str(folder / "a.wav"), str(folder / "b" / "deeper" / "one.flac"),
                                            str(folder / "no_extension")]
    assert all(o["verdict"] in ("bona fide", "spoof") and o["mode"] == "whole file" for o in objects)
    table = list(csv.DictReader(io.StringIO(run("score", "--model", model_file, folder, "--format", "csv").stdout)))
    assert [row["file"] for row in table] == [o["file"] for o in objects]
    assert [float(row["score"]) for row in table] == [o["score"] for o in objects]


@pytest.mark.slow
def test_cli_reads_standard_input(model_file, tmp_path):
    sf.write(tmp_path / "x.flac", clip(BONA_FIDE_EVAL[0]), RATE)
    data = (tmp_path / "x.flac").read_bytes()
    result = run("score", "--model", model_file, "-", "--format", "json", "--plot", tmp_path / "plots", stdin=data)
    assert result.exit_code == 0, result.output
    (obj,) = json.loads(result.stdout)
    from_file = json.loads(run("score", "--model", model_file, tmp_path / "x.flac", "--format", "json").stdout)[0]
    assert obj["file"] == "-" and {**obj, "file": from_file["file"]} == from_file
    assert (tmp_path / "plots" / "stdin.png").is_file()
    empty = run("score", "--model", model_file, "-", stdin=b"")
    assert empty.exit_code == 1 and "-: FAILED (is empty (0 bytes))" in empty.stdout


@pytest.mark.slow
def test_cli_segments_plots_and_checks(model_file, tmp_path):
    files = []
    for name, signal in (("speech", np.concatenate([clip(i) for i in BONA_FIDE_EVAL[:3]])),
                         ("silent", near_silence(3))):
        files.append(tmp_path / f"{name}.wav")
        sf.write(files[-1], signal, RATE, subtype="FLOAT")
    default = json.loads(run("score", "--model", model_file, *files, "--format", "json").stdout)
    finer = json.loads(run("score", "--model", model_file, *files, "--format", "json", "--segment-s", "2",
                           "--hop-s", "1", "--plot", tmp_path / "plots").stdout)
    duration = default[0]["duration_s"]
    assert [(s["start_s"], s["end_s"]) for s in default[0]["segments"][:2]] == [(0.0, 64600 / RATE),
                                                                                (32300 / RATE, 96900 / RATE)]
    assert len(finer[0]["segments"]) == int(np.ceil(duration - 2)) + 1 and finer[0]["score"] == default[0]["score"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["silent.png", "speech.png"]
    assert [o["verdict"] for o in default][1] == "no speech"
    out = tmp_path / "scores.txt"
    batch = run("score", "--model", model_file, *files, "-o", out)
    assert batch.exit_code == 0 and "1 file(s) have check findings (1 without speech)" in batch.output
    with open(f"{out}.checks.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert {(r["file_id"], r["check"]) for r in rows} >= {("silent", "no-speech"), ("silent", "low-level")}
    assert all(r["file_id"] == "silent" for r in rows)
    # Checks never change a score: the score file holds the printed scores.
    assert [float(line.split()[-1]) for line in out.read_text().splitlines()] == [o["score"] for o in default]


@pytest.mark.slow
def test_analyse_audio_reports_a_failure_as_a_result(lfcc_gmm):
    result = analyse_audio(lfcc_gmm, audios([np.zeros(50)])[0], "tiny")
    assert result.error is not None and "too short for LFCC" in result.error and result.verdict is None
