"""The antispoof command line: evaluate reproduces the official numbers; exit codes mean something."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main


@pytest.fixture
def metrics_dir(reference_dir):
    return reference_dir / "metrics"


def official(metrics_dir: Path, name: str) -> dict:
    return json.loads((metrics_dir / f"official.{name}.json").read_text())


def assert_matches_official(result: dict, expected: dict) -> None:
    # Relative 1e-9: the accuracy against the official scripts the README promises (see test_metrics.REL).
    assert result["eer_percent"] == pytest.approx(expected["eer_cm_percent"], rel=1e-9)
    assert result["min_tdcf"] == pytest.approx(expected["min_tdcf"], rel=1e-9)
    assert (result["n_bonafide"], result["n_spoof"]) == (expected["n_bonafide"], expected["n_spoof"])
    assert result["per_attack_eer_percent"].keys() == expected["eer_per_attack_percent"].keys()
    for attack, eer in expected["eer_per_attack_percent"].items():
        assert result["per_attack_eer_percent"][attack] == pytest.approx(eer, rel=1e-9)


def test_evaluate_json_reproduces_official_rawgat(metrics_dir):
    asv = metrics_dir / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
    runner = CliRunner()
    four = runner.invoke(main, ["evaluate", str(metrics_dir / "rawgat_st_add.eval.scores.txt"),
                                "--asv-scores", str(asv), "--json"])
    assert four.exit_code == 0, four.output
    assert_matches_official(json.loads(four.output), official(metrics_dir, "rawgat_st_add.eval"))
    two = runner.invoke(main, ["evaluate", str(metrics_dir / "rawgat_st_add.eval.scores.2col.txt"),
                               "--protocol", str(metrics_dir / "ASVspoof2019.LA.cm.eval.trl.txt"),
                               "--asv-scores", str(asv), "--json"])
    assert two.exit_code == 0, two.output
    assert json.loads(two.output) == json.loads(four.output)


def test_evaluate_ties_reproduce_official(metrics_dir):
    result = CliRunner().invoke(main, [
        "evaluate", str(metrics_dir / "synthetic_ties.dev.scores.txt"),
        "--asv-scores", str(metrics_dir / "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt"), "--json"])
    assert result.exit_code == 0, result.output
    assert_matches_official(json.loads(result.output), official(metrics_dir, "synthetic_ties.dev"))


def test_evaluate_text_report(metrics_dir):
    result = CliRunner().invoke(main, ["evaluate", str(metrics_dir / "rawgat_st_add.eval.scores.txt")])
    assert result.exit_code == 0
    assert "EER          1.1586 %" in result.output
    assert "min t-DCF" not in result.output  # no ASV scores given
    assert "A18        3.2120 %" in result.output


def test_evaluate_without_asv_gives_null_tdcf(tmp_path):
    scores = tmp_path / "s.txt"
    scores.write_text("a - bonafide 2.0\nb - bonafide 0.5\nc A01 spoof 1.0\nd A02 spoof -1.0\n")
    result = CliRunner().invoke(main, ["evaluate", str(scores), "--json"])
    data = json.loads(result.output)
    assert data["min_tdcf"] is None
    # By hand, as the official code walks the sorted scores [-1 s, 0.5 b, 1 s, 2 b]: FRR = 0, 0, 1/2, 1/2, 1 and
    # FAR = 1, 1/2, 1/2, 0, 0; |FRR - FAR| is smallest (0) at the third point -> EER 50 %.
    assert data["eer_percent"] == pytest.approx(50.0)
    # A01 alone, [0.5 b, 1 s, 2 b]: FRR = 0, 1/2, 1/2, 1 and FAR = 1, 1, 0, 0; the first of the two minima
    # (|FRR - FAR| = 1/2) wins, as np.argmin does in the official code -> (1/2 + 1) / 2 = 75 %.
    assert data["per_attack_eer_percent"] == {"A01": pytest.approx(75.0), "A02": pytest.approx(0.0)}


def test_id_mismatch_is_a_data_error_with_examples(tmp_path):
    protocol = tmp_path / "p.txt"
    protocol.write_text("S a - - bonafide\nS b - A01 spoof\nS c - A01 spoof\n")
    scores = tmp_path / "s.txt"
    scores.write_text("a 1.0\nb 0.0\nz 3.0\n")
    result = CliRunner().invoke(main, ["evaluate", str(scores), "--protocol", str(protocol)])
    assert result.exit_code == 1
    assert "1 of 3 scored IDs are not in the protocol: z" in result.output
    assert "1 of 3 protocol IDs have no score: c" in result.output


def test_two_column_file_without_protocol_is_a_data_error(tmp_path):
    scores = tmp_path / "s.txt"
    scores.write_text("a 1.0\n")
    result = CliRunner().invoke(main, ["evaluate", str(scores)])
    assert result.exit_code == 1 and "needs a protocol" in result.output


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["evaluate", str(tmp_path / "missing.txt")]).exit_code == 2
    assert runner.invoke(main, ["evaluate"]).exit_code == 2
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2


def test_scorers_lists_builtins_and_plugins(highband_plugin):
    result = CliRunner().invoke(main, ["scorers", "--json"])
    names = {row["name"]: row for row in json.loads(result.output)}
    assert {"lfcc-gmm", "highband"} <= names.keys()
    assert names["highband"]["available"]


def test_score_with_plugin_interactive_verdicts_and_batch(highband_plugin, tiny_corpus, tmp_path):
    from lfcc_gmm.scorers import get_scorer

    get_scorer("highband")().fit(tiny_corpus).save(tmp_path / "hb.json")
    runner = CliRunner()
    files = [str(t.path) for t in tiny_corpus[:2]]
    result = runner.invoke(main, ["score", "--scorer", "highband", "--model", str(tmp_path / "hb.json"), *files])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if not line.startswith("  ")]
    # The synthetic corpus is harmonics in noise, not speech: whatever the plug-in says, the verdict is "no speech".
    assert lines[0].startswith(f"{files[0]}: no speech (score ") and lines[1].startswith(f"{files[1]}: no speech")
    # A plug-in that scores files only (no score_signals) still gets results: its file scores, no segments.
    result = runner.invoke(main, ["score", "--scorer", "highband", "--model", str(tmp_path / "hb.json"),
                                  "--format", "json", *files])
    objects = json.loads(result.stdout)
    scores = get_scorer("highband").load(tmp_path / "hb.json").score_files(files)
    assert [o["score"] for o in objects] == list(scores) and [o["segments"] for o in objects] == [[], []]

    listing = tmp_path / "list.csv"
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF but not really a wave file" * 4)
    listing.write_text("".join(f"{t.path},{t.key},{t.attack}\n" for t in tiny_corpus) + f"{corrupt},spoof,S01\n")
    out = tmp_path / "scores.txt"
    args = ["score", "--scorer", "highband", "--model", str(tmp_path / "hb.json"),
            "--list", str(listing), "-o", str(out)]
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and "1 of 9 files failed" in result.output
    assert len(out.read_text().splitlines()) == 8
    assert runner.invoke(main, [*args, "--allow-failures"]).exit_code == 0
    # The score file feeds straight back into evaluate (4 columns, self-labelled).
    evaluated = runner.invoke(main, ["evaluate", str(out), "--json"])
    assert json.loads(evaluated.output)["eer_percent"] == 0.0


def test_score_rejects_options_the_scorer_does_not_take(highband_plugin, tiny_corpus, tmp_path):
    from lfcc_gmm.scorers import get_scorer

    get_scorer("highband")().fit(tiny_corpus).save(tmp_path / "hb.json")
    result = CliRunner().invoke(main, ["score", "--scorer", "highband", "--model", str(tmp_path / "hb.json"),
                                       "--device", "cpu", str(tiny_corpus[0].path)])
    assert result.exit_code == 2 and "does not take --device" in result.output


def test_installed_executable(metrics_dir):
    exe = shutil.which("antispoof", path=os.path.dirname(sys.executable)) or shutil.which("antispoof")
    assert exe, "the antispoof console script is not installed"
    done = subprocess.run([exe, "evaluate", str(metrics_dir / "rawgat_st_add.eval.scores.txt"), "--json"],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["eer_percent"] == pytest.approx(1.1585964783684808, rel=1e-9)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("antispoof, version ")


def test_core_never_imports_torch():
    code = ("import sys, lfcc_gmm, lfcc_gmm.features, lfcc_gmm.gmm, lfcc_gmm.metrics, lfcc_gmm.scorers, cli.main;"
            "from lfcc_gmm.scorers import get_scorer; get_scorer('lfcc-gmm');"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
