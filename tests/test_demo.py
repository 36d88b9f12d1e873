"""The main job end to end on a reduced copy of the demo corpus: table, score files, figures, report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.demo import DEFAULT_CORPUS, CorpusNotFoundError, load_corpus, run_demo
from lfcc_gmm.protocols import write_protocol

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """Every attack and both classes of each split, a few files each, pointing at the real demo audio."""
    if not (DEFAULT_CORPUS / "protocols").is_dir():
        pytest.skip(f"demo corpus not found at {DEFAULT_CORPUS}")
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "protocols").mkdir()
    (folder / "flac").symlink_to(DEFAULT_CORPUS / "flac")
    for split, trials in load_corpus(DEFAULT_CORPUS).items():
        keep, per_attack = [], {}
        for trial in trials:
            if per_attack.get(trial.attack, 0) < (6 if trial.is_bonafide else 3):
                per_attack[trial.attack] = per_attack.get(trial.attack, 0) + 1
                keep.append(trial)
        write_protocol(folder / "protocols" / f"{split}.txt", keep)
    return folder


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
