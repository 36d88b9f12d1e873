"""Exit codes and messages of every command (issue 16, item 5): a missing or contradictory option is a usage error
(exit code 2, click's "Usage:" line), a problem with the data exit code 1 with one line naming the file; each
converted file and each failure is told once, with its path once."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from scipy.signal import resample_poly

from cli.main import main
from lfcc_gmm.baseline import LFCCGMMScorer

TINY = {"n_components": 2, "max_iter": 2, "init_samples": 300}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Labelled WAVs, a model trained on them, a protocol, a list, an unlabelled list, a converted and a bad file."""
    from conftest import synthetic_corpus

    folder = tmp_path_factory.mktemp("exit")
    trials = synthetic_corpus(folder / "audio")
    LFCCGMMScorer(**TINY).fit(trials).save(folder / "model.npz")
    (folder / "protocol.txt").write_text("".join(f"S {t.file_id} - {t.attack} {t.key}\n" for t in trials))
    (folder / "list.csv").write_text("".join(f"{t.path},{t.key},{t.attack}\n" for t in trials))
    (folder / "ids.txt").write_text("".join(f"{t.file_id}\n" for t in trials))  # an ID list: no keys
    x, _ = sf.read(trials[0].path)
    sf.write(folder / "at8k.wav", resample_poly(x, 1, 2), 8000)
    sf.write(folder / "stereo.wav", np.stack([x, x], axis=1), 16000)
    (folder / "broken.wav").write_bytes(b"RIFF but not a wave file" * 8)
    return folder, trials


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_usage_error(result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output or "Error:" in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


def test_score_without_a_model_is_a_usage_error(corpus):
    folder, trials = corpus
    assert_usage_error(run("score", "--scorer", "lfcc-gmm", trials[0].path), "needs a model file (--model)")
    assert_usage_error(run("robustness", "--list", folder / "list.csv", "--conditions", "clean", "-o", folder / "rob"),
                       "needs a model file (--model)")


def test_stdin_and_contradictory_modes_are_usage_errors(corpus):
    folder, trials = corpus
    model = ["--model", folder / "model.npz"]
    assert_usage_error(run("score", *model, "-", trials[0].path), "- (standard input) is one file")
    assert_usage_error(run("score", *model, "-", "-o", folder / "s.txt"), "without -o")
    assert_usage_error(run("score", *model, "--crop", "official", trials[0].path),
                       "scorer 'lfcc-gmm' does not take --crop")
    assert_usage_error(run("score", "--scorer", "aasist", "--crop", "official", "--full-length", trials[0].path),
                       "contradict")
    assert_usage_error(run("score", *model, "--segment-s", "0", trials[0].path), "--segment-s")
    assert_usage_error(run("score", *model, "--format", "xml", trials[0].path), "--format")


@pytest.mark.parametrize("args", [
    ["score", "--protocol", "{p}", "--list", "{l}", "-o", "{o}"],  # two inputs
    ["score", "--list", "{l}", "--audio-dir", "{a}", "-o", "{o}"],  # a folder for no protocol
    ["score", "--protocol", "{p}", "-o", "{o}"],  # a protocol without its folder
    ["score", "-o", "{o}"],  # no input at all
    ["lfcc", "{f}"],  # no -o
    ["robustness", "--list", "{l}", "--model", "{m}", "--conditions", "nonsense", "-o", "{o}"],
    ["train", "lfcc-gmm", "--list", "{l}", "-o", "{o}", "--augment", "nonsense"],
    ["train", "lfcc-gmm", "--list", "{l}", "-o", "{o}", "--scheduler", "tcp://127.0.0.1:1"],
    ["evaluate", "{f}", "--asv-scores", "{o}"],  # a file that does not exist
    ["compare", "{f}", "--seen-attacks", "A01", "--train-protocol", "{p}", "-o", "{o}"],
])
def test_missing_or_contradictory_options_exit_2(corpus, tmp_path, args):
    folder, trials = corpus
    fill = {"p": folder / "protocol.txt", "l": folder / "list.csv", "a": folder / "audio", "o": tmp_path / "out",
            "m": folder / "model.npz", "f": trials[0].path}
    assert_usage_error(run(*[a.format(**fill) for a in args]))


def test_unlabelled_training_data_is_a_data_error_naming_the_file(corpus, tmp_path):
    folder, _ = corpus
    result = run("train", "lfcc-gmm", "--protocol", folder / "ids.txt", "--audio-dir", folder / "audio", "--ext",
                 ".wav", "-o", tmp_path / "m.npz")
    assert result.exit_code == 1, result.output
    assert f"{folder / 'ids.txt'}: 8 of 8 trials have no bonafide/spoof key" in result.output


@pytest.mark.slow
def test_each_converted_file_is_named_once(corpus, tmp_path):
    folder, trials = corpus
    converted = {folder / "at8k.wav": "resampled 8000 Hz -> 16000 Hz", folder / "stereo.wav": "averaged 2 channels"}
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{t.path},{t.key}\n" for t in trials) + "".join(f"{p},spoof\n" for p in converted))
    batches = {
        "list": run("score", "--model", folder / "model.npz", "--list", listing, "-o", tmp_path / "a.txt"),
        "files": run("score", "--model", folder / "model.npz", *converted, "-o", tmp_path / "b.txt"),
        "verdicts": run("score", "--model", folder / "model.npz", *converted),
    }
    outputs = {name: result.output for name, result in batches.items() if result.exit_code == 0}
    # Worker processes write to the real stderr, which only a separate process captures.
    two_jobs = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "score", "--model",
                               str(folder / "model.npz"), "--jobs", "2", "--list", str(listing),
                               "-o", str(tmp_path / "c.txt")], capture_output=True, text=True)
    if two_jobs.returncode == 0:
        outputs["two jobs"] = two_jobs.stdout + two_jobs.stderr
    assert outputs.keys() == {*batches, "two jobs"}, {n: r.output for n, r in batches.items()} | {"2": two_jobs}
    for name, output in outputs.items():
        for path, note in converted.items():
            assert output.count(f"{path}") == 1, (name, output)
            assert output.count(note) == 1, (name, output)


def test_failure_lines_name_the_path_once(corpus, tmp_path):
    folder, trials = corpus
    bad = folder / "broken.wav"
    verdicts = run("score", "--model", folder / "model.npz", trials[0].path, bad)
    assert verdicts.exit_code == 1
    (line,) = [line for line in verdicts.output.splitlines() if "FAILED" in line]
    assert line.startswith(f"{bad}: FAILED (not a readable audio file") and line.count(str(bad)) == 1, line
    batch = run("score", "--model", folder / "model.npz", trials[0].path, bad, "-o", tmp_path / "s.txt")
    (line,) = [line for line in batch.output.splitlines() if "First:" in line]
    assert line.count(str(bad)) == 1, line
    features = run("lfcc", trials[0].path, bad, "-o", tmp_path / "F")
    (line,) = [line for line in features.output.splitlines() if "First:" in line]
    assert line.count(str(bad)) == 1, line


def test_model_out_default_is_described_as_it_is_named(tmp_path):
    help_text = " ".join(run("fuse", "--help").output.split())
    assert "OUTPUT.fusion.json" not in help_text
    assert "OUTPUT with its suffix replaced by .fusion.json, e.g. fused.txt -> fused.fusion.json" in help_text
    scores = tmp_path / "dev.txt"
    scores.write_text("a - bonafide 2.0\nb - bonafide 0.5\nc A01 spoof 1.0\nd A01 spoof -1.0\n")
    assert run("calibrate", "--train", scores, "--apply", scores, "-o", tmp_path / "cal.txt").exit_code == 0
    assert (tmp_path / "cal.fusion.json").is_file() and not (tmp_path / "cal.txt.fusion.json").exists()


@pytest.mark.slow
def test_export_names_the_network_once(tmp_path):
    torch = pytest.importorskip("torch")
    from rawnet.aasist import AASIST
    from rawnet.checkpoint import write_model_file
    from rawnet.spec import ModelSpec

    config = {"architecture": "AASIST", "nb_samp": 8000, "first_conv": 33,
              "filts": [12, [1, 4], [4, 4], [4, 8], [8, 8]], "gat_dims": [8, 8], "pool_ratios": [0.5, 0.7, 0.5, 0.5],
              "temperatures": [2.0, 2.0, 100.0, 100.0]}
    torch.manual_seed(0)
    spec = ModelSpec("aasist", "aasist", config)
    write_model_file(tmp_path / "tiny.pth", spec.to_dict(), AASIST(config).state_dict())
    result = run("export", "--scorer", "aasist", "--model", tmp_path / "tiny.pth", "-o", tmp_path / "tiny.pt")
    assert result.exit_code == 0, result.output
    assert "aasist aasist" not in result.output
    assert f"Wrote {tmp_path / 'tiny.pt'}: aasist, input (batch, 8000)" in result.output
