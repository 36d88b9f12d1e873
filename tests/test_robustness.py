"""Robustness evaluation: conditions applied in memory, seeded, tabulated per attack; the CLI writes its report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from error_bounds import lfcc_order_bound, mean_llr_order_bound

from cli.main import main
from lfcc_gmm.audio import load_audio
from lfcc_gmm.baseline import LFCCGMMScorer
from lfcc_gmm.degrade import parse_conditions
from lfcc_gmm.features import lfcc
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.robustness import evaluate_robustness, plot_heatmap


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from conftest import synthetic_corpus

    folder = tmp_path_factory.mktemp("rob")
    trials = synthetic_corpus(folder / "audio", n_per_class=5, seconds=1.0, seed=4)
    scorer = LFCCGMMScorer(n_components=4, max_iter=4, init_samples=800).fit(trials)
    scorer.save(folder / "model.npz")
    return folder, trials, scorer


def test_clean_condition_equals_plain_scoring(setup):
    _, trials, scorer = setup
    result = evaluate_robustness(scorer, trials, parse_conditions("clean"))
    # In memory the LFCC of a signal is one batch of products; from its file, the stream batches it otherwise.
    for trial, score in zip(trials, result.scores["clean"], strict=True):
        x = load_audio(trial.path).signal
        tolerance = mean_llr_order_bound(lfcc(x, dtype=np.float32), scorer.bonafide_gmm_.params_,
                                         scorer.spoof_gmm_.params_, lfcc_order_bound(x, dtype=np.float32))
        assert score == pytest.approx(scorer.score_files([trial.path])[0], rel=0, abs=tolerance)
    keys = np.array([t.key for t in trials])
    eer, _ = compute_eer(result.scores["clean"][keys == "bonafide"], result.scores["clean"][keys == "spoof"])
    assert result.eer[0, 0] == eer
    assert result.columns == ["pooled", "S01"]


def test_band_limiting_removes_the_cue_the_model_relies_on(setup):
    # The synthetic spoofs are the bona fide recipe low-passed at 4 kHz: after an 8 kHz round trip both
    # classes lose that band, so the detector must do much worse than on clean audio.
    _, trials, scorer = setup
    result = evaluate_robustness(scorer, trials, parse_conditions("clean,tel8k"))
    assert result.eer[0, 0] == 0.0
    assert result.eer[1, 0] >= 0.2


def test_degradations_are_seeded_per_file(setup):
    _, trials, scorer = setup
    conditions = parse_conditions("noise:10")
    first = evaluate_robustness(scorer, trials, conditions, seed=1, chunk_size=3)
    again = evaluate_robustness(scorer, trials, conditions, seed=1, chunk_size=7)
    other = evaluate_robustness(scorer, trials, conditions, seed=2)
    np.testing.assert_array_equal(first.scores["noise:10"], again.scores["noise:10"])
    assert not np.array_equal(first.scores["noise:10"], other.scores["noise:10"])


def test_a_condition_gives_the_same_result_in_any_list_of_conditions(setup):
    # Seeds come from (seed, file ID, condition name), never from positions in the lists.
    _, trials, scorer = setup
    first = evaluate_robustness(scorer, trials, parse_conditions("noise:10,clean"), seed=3)
    second = evaluate_robustness(scorer, trials, parse_conditions("clean,reverb:0.3,noise:10"), seed=3)
    np.testing.assert_array_equal(first.scores["noise:10"], second.scores["noise:10"])
    np.testing.assert_array_equal(first.eer[0], second.eer[2])
    # Nor from the file's position: the trials reversed, or one of them alone, see the same noise.
    backwards = evaluate_robustness(scorer, trials[::-1], parse_conditions("noise:10"), seed=3)
    np.testing.assert_array_equal(backwards.scores["noise:10"], first.scores["noise:10"][::-1])
    alone = evaluate_robustness(scorer, trials[2:3] + trials[7:8], parse_conditions("noise:10"), seed=3)
    np.testing.assert_array_equal(alone.scores["noise:10"], first.scores["noise:10"][[2, 7]])


def test_babble_does_not_depend_on_the_order_of_the_trials(setup):
    _, trials, scorer = setup
    forwards = evaluate_robustness(scorer, trials, parse_conditions("babble:5"), seed=2)
    backwards = evaluate_robustness(scorer, trials[::-1], parse_conditions("babble:5"), seed=2)
    np.testing.assert_array_equal(backwards.scores["babble:5"], forwards.scores["babble:5"][::-1])


def test_unreadable_files_are_left_out_and_reported(setup, tmp_path):
    import dataclasses

    _, trials, scorer = setup
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope" * 10)
    result = evaluate_robustness(scorer, [*trials, dataclasses.replace(trials[0], file_id="bad", path=bad)],
                                 parse_conditions("clean"))
    assert [f[0] for f in result.failures] == ["bad"]
    assert len(result.file_ids) == len(trials)


def test_errors(setup):
    _, trials, scorer = setup
    import dataclasses

    with pytest.raises(ValueError, match="needs labelled trials"):
        evaluate_robustness(scorer, [dataclasses.replace(trials[0], key=None)], parse_conditions("clean"))
    with pytest.raises(ValueError, match="conditions repeat"):
        evaluate_robustness(scorer, trials, parse_conditions("clean,clean"))


def test_cli_writes_tables_figure_and_scores(setup, tmp_path):
    folder, trials, _ = setup
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{t.path},{t.key},{t.attack}\n" for t in trials))
    out = tmp_path / "rob"
    result = CliRunner().invoke(main, ["robustness", "--model", str(folder / "model.npz"), "--list", str(listing),
                                       "--conditions", "clean,babble:10,mulaw", "-o", str(out), "--save-audio"])
    assert result.exit_code == 0, result.output
    assert "EER (%) by condition and attack" in result.output
    table = json.loads((out / "robustness.json").read_text())["eer_percent"]
    assert set(table) == {"clean", "babble:10", "mulaw"} and set(table["clean"]) == {"pooled", "S01"}
    assert (out / "robustness.csv").read_text().splitlines()[0] == "condition,eer_percent_pooled,eer_percent_S01"
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((out / "audio" / "mulaw").glob("*.flac"))) == len(trials)
    assert (out / "scores_babble_10.txt").exists()


def test_cli_rows_do_not_depend_on_the_order_of_conditions(setup, tmp_path):
    folder, trials, _ = setup
    listing = tmp_path / "list.csv"
    listing.write_text("".join(f"{t.path},{t.key},{t.attack}\n" for t in trials))
    tables = []
    for conditions in ("noise:10,clean", "clean,noise:10"):
        out = tmp_path / conditions.replace(",", "_").replace(":", "")
        result = CliRunner().invoke(main, ["robustness", "--model", str(folder / "model.npz"), "--list",
                                           str(listing), "--conditions", conditions, "-o", str(out), "--json"])
        assert result.exit_code == 0, result.output
        tables.append(json.loads((out / "robustness.json").read_text())["eer_percent"])
        assert (out / "scores_noise_10.txt").read_text() == (tmp_path / "noise10_clean" / "scores_noise_10.txt"
                                                              ).read_text()
    assert tables[0]["noise:10"] == tables[1]["noise:10"] and tables[0]["clean"] == tables[1]["clean"]
    assert "never by positions" in CliRunner().invoke(main, ["robustness", "--help"]).output


def test_heatmap_is_a_png(setup, tmp_path):
    _, trials, scorer = setup
    result = evaluate_robustness(scorer, trials, parse_conditions("clean,gain:-6"))
    plot_heatmap(result, tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 5000


def test_deep_scorers_run_under_conditions_too(setup, reference_dir):
    from lfcc_gmm.scorers import get_scorer
    from rawnet.tuning import fast_paths_off

    _, trials, _ = setup
    aasist = get_scorer("aasist").load(reference_dir / "aasist" / "AASIST-L.pth")
    # "clean" scores the same samples in the same batches as score_files: the same bits, once the measured CPU fast
    # paths, which two calls may choose differently, are off.
    with fast_paths_off():
        result = evaluate_robustness(aasist, trials[:6], parse_conditions("clean,mulaw"))
        np.testing.assert_array_equal(result.scores["clean"], aasist.score_files([t.path for t in trials[:6]]))
    assert not np.allclose(result.scores["mulaw"], result.scores["clean"])
