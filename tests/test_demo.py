"""The main job end to end on a reduced copy of the demo corpus: table, score files, figures, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.demo import DEMO_CORPUS
from cli.main import main
from lfcc_gmm.demo import CorpusNotFoundError, load_corpus, run_demo
from lfcc_gmm.protocols import write_protocol

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def reduced_corpus(folder, bonafide: int, per_attack: int):
    """Every attack and both classes of each split, a few files each, pointing at the real demo audio."""
    if not (DEMO_CORPUS / "protocols").is_dir():
        pytest.skip(f"demo corpus not found at {DEMO_CORPUS}")
    (folder / "protocols").mkdir()
    (folder / "flac").symlink_to(DEMO_CORPUS / "flac")
    for split, trials in load_corpus(DEMO_CORPUS).items():
        keep, counts = [], {}
        for trial in trials:
            if counts.get(trial.attack, 0) < (bonafide if trial.is_bonafide else per_attack):
                counts[trial.attack] = counts.get(trial.attack, 0) + 1
                keep.append(trial)
        write_protocol(folder / "protocols" / f"{split}.txt", keep)
    return folder


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    return reduced_corpus(tmp_path_factory.mktemp("corpus"), bonafide=6, per_attack=3)


def check_report(folder, systems):
    report = (folder / "report.md").read_text()
    for figure in ("det.png", "histograms.png"):
        assert f"]({figure})" in report
        data = (folder / figure).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000
    comparison = json.loads((folder / "comparison.json").read_text())
    assert [s["name"] for s in comparison["systems"]] == systems
    return comparison


def test_demo_lfcc_gmm_only(small_corpus, tmp_path):
    result = run_demo(tmp_path, corpus_dir=small_corpus, components=4, use_aasist=False)
    assert list(result.systems) == ["LFCC-GMM"]
    comparison = check_report(tmp_path, ["LFCC-GMM"])
    splits = load_corpus(small_corpus)
    eval_attacks = {t.attack for t in splits["eval"] if not t.is_bonafide}
    seen = {t.attack for split in ("train", "dev") for t in splits[split] if not t.is_bonafide}
    assert {a["name"] for a in comparison["attacks"]} == eval_attacks
    assert {a for a in eval_attacks if result.comparison.status(a) == "unseen"} == eval_attacks - seen
    assert len((tmp_path / "scores_eval_lfcc_gmm.txt").read_text().splitlines()) == len(splits["eval"])
    assert (tmp_path / "lfcc_gmm.npz").exists()


def test_demo_command_prints_the_table(small_corpus, tmp_path):
    result = CliRunner().invoke(main, ["demo", "--corpus", str(small_corpus), "-o", str(tmp_path / "r"),
                                       "--components", "4", "--no-aasist", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "LFCC-GMM" in result.output and "unseen" in result.output
    assert (tmp_path / "r" / "report.md").exists()


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusNotFoundError, match="no demo corpus here"):
        load_corpus(tmp_path)
    result = CliRunner().invoke(main, ["demo", "--corpus", str(tmp_path), "-o", str(tmp_path / "r")])
    assert result.exit_code == 1 and "no demo corpus here" in result.output


def test_report_describes_only_what_ran(small_corpus, tmp_path, monkeypatch):
    # Issue 16: the AASIST hint said twice how to fetch the weights, and the report described AASIST and the fusion
    # when neither ran. AASIST's weights are bundled: they are missing only from an installation without its
    # package data and an empty cache.
    from rawnet import weights

    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("ANTISPOOF_AASIST_WEIGHTS", raising=False)
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path / "no-package-data")
    missing = run_demo(tmp_path / "missing", corpus_dir=small_corpus, components=4)
    assert list(missing.systems) == ["LFCC-GMM"]
    assert missing.skipped["AASIST"].count("antispoof weights fetch aasist") == 1
    report = (tmp_path / "missing" / "report.md").read_text()
    assert report.count("antispoof weights fetch aasist") == 1 and "AASIST was skipped" in report
    assert "official pretrained weights" not in report and "fusion" not in report.lower()
    assert not (tmp_path / "missing" / "scores_eval_fusion.txt").exists()

    run_demo(tmp_path / "without", corpus_dir=small_corpus, components=4, use_aasist=False)
    report = (tmp_path / "without" / "report.md").read_text()
    assert "AASIST" not in report and "fusion" not in report.lower() and "RawNet2" not in report
    assert "LFCC-GMM: official 2019 LFCC (60 dims), 4 components per class" in report


@pytest.mark.slow
def test_demo_with_aasist_fuses_on_dev_and_describes_every_system(tmp_path, reference_dir):
    from lfcc_gmm.fusion import LinearFusion
    from lfcc_gmm.scorefiles import label_scores, read_scores

    (tmp_path / "corpus").mkdir()
    corpus = reduced_corpus(tmp_path / "corpus", bonafide=3, per_attack=1)
    result = run_demo(tmp_path, corpus_dir=corpus, components=4, aasist_weights=reference_dir / "aasist" / "AASIST.pth")
    fusion = "Fusion (LFCC-GMM + AASIST)"
    assert list(result.systems) == ["LFCC-GMM", "AASIST", fusion]
    check_report(tmp_path, ["LFCC-GMM", "AASIST", fusion])
    report = (tmp_path / "report.md").read_text()
    assert "official pretrained weights" in report and "linear logistic regression trained on dev" in report

    # The fusion by hand: logistic regression on the two systems' dev scores, applied to their eval scores.
    def matrix(split):
        tables = [label_scores(read_scores(tmp_path / f"scores_{split}_{name}.txt")) for name in ("lfcc_gmm", "aasist")]
        assert tables[0].ids == tables[1].ids
        return np.column_stack([t.scores for t in tables]), tables[0]

    dev, dev_labels = matrix("dev")
    evaluation, eval_labels = matrix("eval")
    expected = LinearFusion().fit(dev, dev_labels.keys).transform(evaluation)
    fused = result.systems[fusion]
    assert fused.ids == eval_labels.ids
    # The same rows in the same order through the same arithmetic: equal to the last bit.
    np.testing.assert_array_equal(fused.scores, expected)
