"""``antispoof evaluate`` with the ASVspoof 5 metrics (the official package's results on the shared set, per codec
breakdowns, the ASV rates of a given ASV system), the choice of metric set, bootstrap intervals, and errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from cli.demo import DEMO_CORPUS
from cli.main import main
from lfcc_gmm.asvspoof5 import ORGANISERS_ASV_RATES, AsvRates, min_tdcf_revised, track1_min_dcf
from lfcc_gmm.bootstrap import bootstrap_ci, sasv_bootstrap_ci
from lfcc_gmm.demo import run_demo
from lfcc_gmm.evaluation import choose_metrics, evaluate_score_file
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.protocols import read_protocol
from lfcc_gmm.scorefiles import label_sasv_scores, read_sasv_scores, read_scores

REL = 1e-9  # the bound against the official results


def run(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["evaluate", *map(str, args)])
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def shared(reference_dir):
    folder = reference_dir / "asvspoof5"
    return {"folder": folder, "official": json.loads((folder / "dev_half.official.json").read_text())}


def official_run(shared, track: str, kind: str) -> dict:
    """``evaluate --metrics M --json`` of the shared set's files of one kind (cm or sasv), checked against the
    package's results of that track."""
    folder = shared["folder"]
    given = json.loads(run(folder / f"dev_half.{kind}.scores.tsv", "--protocol", folder / f"dev_half.{kind}.keys.tsv",
                           "--metrics", "asvspoof5" if kind == "cm" else "sasv", "--json"))
    for name, value in shared["official"][track].items():
        assert given[name] == pytest.approx(value, rel=REL), name
    return given


def test_track1_equals_the_official_package(shared):
    folder = shared["folder"]
    given = official_run(shared, "track1", "cm")
    assert (given["metrics"], given["metrics_chosen_because"]) == ("asvspoof5", None)
    assert (given["n_bonafide"], given["n_spoof"]) == (3650, 11124)
    # The key file has no attack or codec column: nothing to break down.
    assert given["per_attack"] == given["per_codec"] == given["per_codec_quality"] == {}

    chosen = json.loads(run(folder / "dev_half.cm.scores.tsv", "--protocol", folder / "dev_half.cm.keys.tsv",
                            "--json"))
    assert chosen["metrics_chosen_because"] == "the protocol is an ASVspoof 5 CM key file"
    assert {k: v for k, v in chosen.items() if k != "metrics_chosen_because"} == {
        k: v for k, v in given.items() if k != "metrics_chosen_because"}
    text = run(folder / "dev_half.cm.scores.tsv", "--protocol", folder / "dev_half.cm.keys.tsv")
    assert text.splitlines()[0] == ("ASVspoof 5 Track 1 metrics (chosen automatically: the protocol is an ASVspoof 5 "
                                    "CM key file; --metrics overrides)")
    assert f"  min DCF    {given['min_dcf']:8.5f}     (primary;" in text


def test_track2_equals_the_official_package(shared):
    folder = shared["folder"]
    given = official_run(shared, "track2", "sasv")
    assert AsvRates(**given["asv_rates"]) == ORGANISERS_ASV_RATES
    assert (given["n_target"], given["n_nontarget"], given["n_spoof"]) == (758, 2892, 11124)
    chosen = json.loads(run(folder / "dev_half.sasv.scores.tsv", "--protocol", folder / "dev_half.sasv.keys.tsv",
                            "--json"))
    assert chosen["metrics_chosen_because"] == "the score file is an ASVspoof 5 SASV score file"
    assert chosen["a_dcf"] == given["a_dcf"] and chosen["t_eer_percent"] == given["t_eer_percent"]


def asv_rates_by_hand(target, nontarget, spoof):
    """The definition: accept at or above the ASV's EER threshold (the official 2019 compute_eer's, tested against
    the official scripts), and count."""
    threshold = compute_eer(target, nontarget)[1]
    return AsvRates(np.mean(nontarget >= threshold), np.mean(target < threshold), np.mean(spoof >= threshold))


def test_sasv_asv_scores_replace_the_pooled_rates(shared, tmp_path):
    folder = shared["folder"]
    table = read_sasv_scores(folder / "dev_half.sasv.scores.tsv")
    labels = label_sasv_scores(table, read_protocol(folder / "dev_half.sasv.keys.tsv")).labels
    classes = [table.asv_scores[labels == name] for name in ("target", "nontarget", "spoof")]
    expected = asv_rates_by_hand(*classes)
    # Given as a SASV score file (its asv-score column, labelled by the key) or as SOURCE KEY SCORE lines.
    plain = tmp_path / "asv.txt"
    plain.write_text("".join(f"x {name} {value!r}\n" for name, group in zip(("target", "nontarget", "spoof"),
                                                                             classes, strict=True)
                             for value in group.tolist()))
    for asv_file in (folder / "dev_half.sasv.scores.tsv", plain):
        given = json.loads(run(folder / "dev_half.sasv.scores.tsv", "--protocol", folder / "dev_half.sasv.keys.tsv",
                               "--asv-scores", asv_file, "--json"))
        assert AsvRates(**given["asv_rates"]) == pytest.approx(expected, rel=1e-15)
        assert given["min_tdcf"] == min_tdcf_revised(table.cm_scores, labels, AsvRates(**given["asv_rates"]))
        assert given["min_tdcf"] != shared["official"]["track2"]["min_tdcf"]
        # The a-DCF and t-EER do not use the fixed ASV rates.
        assert given["a_dcf"] == pytest.approx(shared["official"]["track2"]["a_dcf"], rel=REL)
        assert given["t_eer_percent"] == pytest.approx(shared["official"]["track2"]["t_eer_percent"], rel=REL)
    assert "computed from the given ASV scores" in run(folder / "dev_half.sasv.scores.tsv", "--protocol",
                                                       folder / "dev_half.sasv.keys.tsv", "--asv-scores", plain)


def released_protocol(shared, tmp_path, codecs=("-", "C01", "C05")):
    """The shared trials in the released protocols' 10-column layout, with invented speakers, attacks and codecs."""
    rng = np.random.default_rng(0)
    trials = read_protocol(shared["folder"] / "dev_half.cm.keys.tsv")
    lines = []
    for trial in trials:
        codec = str(rng.choice(codecs))
        quality = "-" if codec == "-" else str(rng.integers(1, 4))
        attack = "-" if trial.is_bonafide else str(rng.choice(["A09", "A10", "A11"]))
        tag = "bonafide" if trial.is_bonafide else "AC1"
        lines.append(f"D_{rng.integers(0, 40):04d} {trial.file_id} F {codec} {quality} - {tag} {attack} "
                     f"{trial.key} -\n")
    path = tmp_path / "ASVspoof5.dev.track_1.tsv"
    path.write_text("".join(lines))
    return path


def test_released_protocol_gives_attack_codec_and_quality_breakdowns(shared, tmp_path):
    protocol = released_protocol(shared, tmp_path)
    scores = shared["folder"] / "dev_half.cm.scores.tsv"
    given = json.loads(run(scores, "--protocol", protocol, "--json"))
    assert given["metrics_chosen_because"] == "the protocol is an ASVspoof 5 protocol"
    assert given["min_dcf"] == pytest.approx(shared["official"]["track1"]["min_dcf"], rel=REL)
    assert sorted(given["per_attack"]) == ["A09", "A10", "A11"]
    assert sorted(given["per_codec"]) == ["-", "C01", "C05"]
    assert sorted(given["per_codec_quality"]["C05"]) == ["1", "2", "3"]
    # Each entry is the metric of its own trials.
    table, trials = read_scores(scores), {t.file_id: t for t in read_protocol(protocol)}
    bona = np.array([trials[i].is_bonafide for i in table.ids])
    chosen = np.array([trials[i].metadata["codec"] == "C05" and trials[i].metadata["codec_quality"] == "2"
                       for i in table.ids])
    expected = track1_min_dcf(table.scores[chosen & bona], table.scores[chosen & ~bona])
    assert given["per_codec_quality"]["C05"]["2"]["min_dcf"] == expected
    text = run(scores, "--protocol", protocol)
    assert "  per codec quality (within each codec, the trials of each quality):" in text
    assert "    C05 2   " in text and "(chosen automatically: the protocol is an ASVspoof 5 protocol;" in text

    # Train and dev protocols name no codec ("-" everywhere): no codec table.
    uncoded = json.loads(run(scores, "--protocol", released_protocol(shared, tmp_path, codecs=("-",)), "--json"))
    assert uncoded["per_codec"] == {} and sorted(uncoded["per_attack"]) == ["A09", "A10", "A11"]


def test_metric_sets_chosen_from_the_files(tmp_path):
    two, four = tmp_path / "two.txt", tmp_path / "four.txt"
    two.write_text("a 1.0\n")
    four.write_text("a - bonafide 1.0\n")
    cm, sasv = tmp_path / "cm.tsv", tmp_path / "sasv.tsv"
    cm.write_text("filename\tcm-score\na\t1.0\n")
    sasv.write_text("spk\tfilename\tsasv-score\nS\ta\t1.0\n")
    keys, sasv_keys, lla = tmp_path / "keys.tsv", tmp_path / "sasv_keys.tsv", tmp_path / "la.txt"
    keys.write_text("filename\tcm-label\na\tbonafide\n")
    sasv_keys.write_text("spk\tfilename\tcm-label\tasv-label\nS\ta\tbonafide\ttarget\n")
    lla.write_text("S a - - bonafide\n")
    assert choose_metrics(four) == ("asvspoof2019", "no ASVspoof 5 protocol or score file")
    assert choose_metrics(two, lla)[0] == "asvspoof2019"
    assert choose_metrics(two, keys) == ("asvspoof5", "the protocol is an ASVspoof 5 CM key file")
    assert choose_metrics(cm) == ("asvspoof5", "the score file is an ASVspoof 5 CM score file")
    assert choose_metrics(cm, lla)[0] == "asvspoof5"
    assert choose_metrics(sasv, sasv_keys) == ("sasv", "the score file is an ASVspoof 5 SASV score file")
    assert choose_metrics(cm, sasv_keys) == ("sasv", "the protocol is an ASVspoof 5 SASV key file")


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["sasv.tsv", "--metrics", "asvspoof5", "--protocol", "keys.tsv"], 2, "SASV score file: evaluate it with"),
        (["cm.tsv", "--metrics", "asvspoof2019", "--protocol", "sasv_keys.tsv"], 2, "is an ASVspoof 5 SASV key"),
        (["sasv.tsv"], 2, "the sasv metrics need the SASV key file"),
        (["cm.tsv", "--protocol", "keys.tsv", "--prior", "0.3"], 2, "a prior applies to the asvspoof2019 metrics"),
        (["cm.tsv", "--protocol", "keys.tsv", "--asv-scores", "asv.txt"], 2, "not by the ASVspoof 5 Track 1"),
        (["cm.tsv", "--metrics", "trackless"], 2, "'trackless' is not one of"),
        (["cm.tsv", "--protocol", "sasv_keys.tsv"], 1, "cm.tsv: not an ASVspoof 5 SASV score file"),
        (["sasv.tsv", "--protocol", "keys.tsv"], 1, "no speaker or ASV label"),
        (["sasv.tsv", "--protocol", "other_sasv_keys.tsv"], 1,
         r"sasv.tsv against .*other_sasv_keys.tsv: 1 of 3 scored trials \(spk filename\) are not in the key: S2 b"),
        (["cm_only.tsv", "--protocol", "sasv_keys.tsv"], 1, "cm_only.tsv: no sasv-score column"),
        (["cm.tsv"], 1, "needs a protocol"),
    ],
)
def test_errors_name_the_file_and_usage_errors_exit_2(tmp_path, monkeypatch, arguments, code, message):
    files = {
        "cm.tsv": "filename\tcm-score\na\t1.0\nb\t-1.0\nc\t0.5\n",
        "keys.tsv": "filename\tcm-label\na\tbonafide\nb\tspoof\nc\tbonafide\n",
        "sasv.tsv": "spk\tfilename\tcm-score\tsasv-score\nS1\ta\t1.0\t2.0\nS2\tb\t-1.0\t0.0\nS1\tc\t0.5\t0.1\n",
        "cm_only.tsv": "spk\tfilename\tcm-score\nS1\ta\t1.0\nS2\tb\t-1.0\nS1\tc\t0.5\n",
        "sasv_keys.tsv": "spk\tfilename\tcm-label\tasv-label\nS1\ta\tbonafide\ttarget\nS2\tb\tspoof\tspoof\n"
                         "S1\tc\tbonafide\tnontarget\n",
        "other_sasv_keys.tsv": "spk\tfilename\tcm-label\tasv-label\nS1\ta\tbonafide\ttarget\nS1\tb\tspoof\tspoof\n"
                               "S1\tc\tbonafide\tnontarget\n",
        "asv.txt": "x target 1.0\nx nontarget 0.0\nx spoof 0.5\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["evaluate", *arguments])
    assert result.exit_code == code, result.output
    assert result.output.count("\n") <= 4  # one message, no traceback
    assert re.search(message, result.output), result.output


# --------------------------------------------------------------------------------------------- bootstrap


def test_ci_are_those_of_the_library_with_the_same_resamples(tmp_path):
    rng = np.random.default_rng(2)
    keys = np.where(rng.random(300) < 0.4, "bonafide", "spoof")
    scores = np.round(np.where(keys == "bonafide", 1.0, -1.0) + rng.normal(0, 1, 300), 1)
    speakers = [f"S{k}" for k in rng.integers(0, 8, 300)]
    ids = [f"T{i:04d}" for i in range(300)]
    (tmp_path / "scores.txt").write_text("".join(f"{i} {s!r}\n" for i, s in zip(ids, scores.tolist(), strict=True)))
    (tmp_path / "p.txt").write_text("".join(f"{spk} {i} - {'-' if k == 'bonafide' else 'A01'} {k}\n"
                                            for spk, i, k in zip(speakers, ids, keys, strict=True)))
    given = json.loads(run(tmp_path / "scores.txt", "--protocol", tmp_path / "p.txt", "--ci", "0.9",
                           "--resamples", "120", "--seed", "7", "--json"))["bootstrap"]
    expected = bootstrap_ci(scores, keys, speakers, prior=0.5, confidence=0.9, n_resamples=120, seed=7)
    assert given == {**expected.to_dict(), "resampling": "the protocol names 8 speakers"}
    assert given["resampled"] == "speaker"
    # The order of the file's lines changes nothing: trials are resampled in ID order.
    lines = (tmp_path / "scores.txt").read_text().splitlines(keepends=True)
    (tmp_path / "shuffled.txt").write_text("".join(lines[i] for i in rng.permutation(len(lines))))
    assert json.loads(run(tmp_path / "shuffled.txt", "--protocol", tmp_path / "p.txt", "--ci", "0.9",
                          "--resamples", "120", "--seed", "7", "--json"))["bootstrap"] == given
    # ASVspoof 5 metrics: the Track 1 min DCF, the same resamples.
    track1 = evaluate_score_file(tmp_path / "scores.txt", tmp_path / "p.txt", metrics="asvspoof5", confidence=0.9,
                                 n_resamples=120, seed=7)
    assert track1.intervals == bootstrap_ci(scores, keys, speakers, confidence=0.9, n_resamples=120, seed=7)
    assert track1.intervals.intervals["min_dcf"].estimate == track1.result.min_dcf
    text = run(tmp_path / "scores.txt", "--protocol", tmp_path / "p.txt", "--ci", "0.9", "--resamples", "120")
    assert ("  90 % percentile bootstrap intervals, 120 resamples of speakers, seed 0 (the protocol names 8 "
            "speakers):") in text


def test_sasv_ci_bound_the_a_dcf_and_min_tdcf_resampling_target_speakers(shared, tmp_path):
    folder = shared["folder"]
    scores, keys = folder / "dev_half.sasv.scores.tsv", folder / "dev_half.sasv.keys.tsv"
    given = json.loads(run(scores, "--protocol", keys, "--ci", "0.9", "--resamples", "40", "--seed", "2", "--json"))
    bootstrap = given["bootstrap"]
    assert (bootstrap["resampled"], bootstrap["resampling"]) == ("speaker", "the score file names 400 target speakers")
    assert bootstrap["a_dcf"]["estimate"] == given["a_dcf"] and bootstrap["min_tdcf"]["estimate"] == given["min_tdcf"]
    # The library's intervals of the trials in (speaker, file) order.
    table = read_sasv_scores(scores)
    labels = label_sasv_scores(table, read_protocol(keys)).labels
    order = np.lexsort((table.ids, table.speakers))
    expected = sasv_bootstrap_ci(table.sasv_scores[order], labels[order], np.asarray(table.speakers)[order],
                                 cm_scores=table.cm_scores[order], confidence=0.9, n_resamples=40, seed=2)
    assert bootstrap == {**expected.to_dict(), "resampling": "the score file names 400 target speakers"}
    text = run(scores, "--protocol", keys, "--ci", "0.9", "--resamples", "40")
    assert "    a-DCF     " in text and "    min t-DCF " in text


def test_ci_with_asv_scores_bound_the_min_tdcf(reference_dir):
    metrics = reference_dir / "metrics"
    given = json.loads(run(metrics / "synthetic_ties.dev.scores.txt", "--asv-scores",
                           metrics / "ASVspoof2019.LA.asv.dev.gi.trl.scores.txt", "--ci", "0.95", "--resamples", "30",
                           "--json"))
    interval = given["bootstrap"]["min_tdcf"]
    assert interval["estimate"] == given["min_tdcf"]
    assert interval["low"] <= interval["estimate"] <= interval["high"]
    assert given["bootstrap"]["resampling"] == "no protocol names the speakers"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo's LFCC-GMM (64 components, trained on the demo train split) and its dev and eval score files."""
    if not (DEMO_CORPUS / "protocols").is_dir():
        pytest.skip(f"demo corpus not found at {DEMO_CORPUS}")
    folder = tmp_path_factory.mktemp("demo")
    run_demo(folder, corpus_dir=DEMO_CORPUS, use_aasist=False)
    return folder


@pytest.mark.slow
def test_intervals_on_the_demo_eval_split_are_wide(demo_run, tmp_path):
    protocol = DEMO_CORPUS / "protocols" / "eval.txt"
    scores = demo_run / "scores_eval_lfcc_gmm.txt"
    given = json.loads(run(scores, "--protocol", protocol, "--ci", "0.95", "--json"))
    n_bona, n_spoof = given["n_bonafide"], given["n_spoof"]
    assert (n_bona, n_spoof) == (50, 72)
    bootstrap = given["bootstrap"]
    assert (bootstrap["resampled"], bootstrap["resampling"]) == ("trial", "the protocol names one speaker")
    eer = bootstrap["eer_percent"]
    assert eer["estimate"] == given["eer_percent"] and eer["low"] < eer["estimate"] < eer["high"]
    # An independent scale: at a fixed threshold the EER is the mean of two binomial rates, FRR over the bona fide
    # and FAR over the spoof trials; its normal 95 % interval has this width (the threshold moving with the data
    # adds a little).
    p = given["eer_percent"] / 100
    normal_width = 2 * 1.96 * 100 * np.sqrt(p * (1 - p) * (1 / n_bona + 1 / n_spoof)) / 2
    width = eer["high"] - eer["low"]
    assert 0.7 * normal_width < width < 1.6 * normal_width
    assert width > 10  # percentage points: 122 trials cannot tell 18 % from 25 %

    # Calibrating the system (an increasing affine map learnt on dev) changes no ranking: the paired bootstrap finds
    # a difference of exactly zero, and compare's interval of each system is evaluate's.
    calibrated = tmp_path / "calibrated.txt"
    result = CliRunner().invoke(main, ["calibrate", "--train", str(demo_run / "scores_dev_lfcc_gmm.txt"),
                                       "--apply", str(scores), "-o", str(calibrated)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["compare", str(scores), str(calibrated), "--names", "LFCC-GMM,calibrated",
                                       "--protocol", str(protocol), "--ci", "0.95", "-o", str(tmp_path / "r"),
                                       "--json"])
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.output)
    assert comparison["systems"][0]["bootstrap"] == bootstrap
    (pair,) = comparison["differences"]
    assert pair["eer_percent"] == {"estimate": 0.0, "low": 0.0, "high": 0.0, "significant": False}


def test_exported_lazily_and_without_torch():
    import subprocess
    import sys

    import lfcc_gmm
    from lfcc_gmm import evaluation, scorefiles

    assert lfcc_gmm.evaluate_score_file is evaluation.evaluate_score_file
    assert lfcc_gmm.read_sasv_scores is scorefiles.read_sasv_scores
    code = "import sys, lfcc_gmm.evaluation, cli.evaluation; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
