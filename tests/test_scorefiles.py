"""Score files: both layouts, exact round trips, atomic writes, protocol joins and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.protocols import Trial, read_protocol
from lfcc_gmm.scorefiles import (
    ScoreFileError,
    ScoreTable,
    label_scores,
    read_asv_scores,
    read_scores,
    write_scores,
)


def test_round_trip_keeps_every_digit(tmp_path):
    scores = np.array([0.1, -1e-300, 5.236644268035889, 1 / 3])
    ids = ["a", "b", "c", "d"]
    write_scores(tmp_path / "two.txt", ids, scores)
    table = read_scores(tmp_path / "two.txt")
    assert table.ids == ids and not table.labelled
    np.testing.assert_array_equal(table.scores, scores)
    write_scores(tmp_path / "four.txt", ids, scores, ["-", "A01", "A02", "-"],
                 ["bonafide", "spoof", "spoof", "bonafide"])
    table = read_scores(tmp_path / "four.txt")
    assert table.attacks == ["-", "A01", "A02", "-"] and table.keys[1] == "spoof"
    np.testing.assert_array_equal(table.scores, scores)


def test_two_columns_when_any_key_is_unknown(tmp_path):
    write_scores(tmp_path / "s.txt", ["a", "b"], [1.0, 2.0], ["-", "-"], ["bonafide", None])
    assert (tmp_path / "s.txt").read_text() == "a 1.0\nb 2.0\n"


def test_write_refuses_non_finite_and_leaves_old_file(tmp_path):
    path = tmp_path / "s.txt"
    write_scores(path, ["a"], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        write_scores(path, ["a", "b"], [1.0, np.nan])
    assert path.read_text() == "a 1.0\n"


def test_atomic_write_leaves_nothing_behind_on_error(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write("partial")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a 1.0\nb nan\n", r":2: score is nan"),
        ("a 1.0\nb inf\n", r":2: score is inf"),
        ("a one\n", r":1: score 'one' is not a number"),
        ("a 1.0\na 2.0\n", r":2: duplicate ID 'a' \(first on line 1\)"),
        ("a 1 2\n", r":1: 3 columns"),
        ("a 1.0\nb - spoof 2.0\n", r":2: 4 columns where earlier lines have 2"),
        ("a - maybe 2.0\n", r":1: unknown label"),
        ("\n", "contains no scores"),
    ],
)
def test_malformed_score_files(tmp_path, text, message):
    path = tmp_path / "s.txt"
    path.write_text(text)
    with pytest.raises(ScoreFileError, match=message):
        read_scores(path)


def test_label_scores_from_protocol_and_mismatches():
    trials = [Trial("a", "bonafide"), Trial("b", "spoof", "A01"), Trial("c", "spoof", "A02")]
    table = ScoreTable(["c", "a", "b"], np.array([3.0, 1.0, 2.0]))
    labelled = label_scores(table, trials)
    assert list(labelled.keys) == ["spoof", "bonafide", "spoof"] and list(labelled.attacks) == ["A02", "-", "A01"]
    np.testing.assert_array_equal(labelled.bonafide, [1.0])
    np.testing.assert_array_equal(labelled.spoof, [3.0, 2.0])
    with pytest.raises(ScoreFileError, match="1 of 3 protocol IDs have no score: c"):
        label_scores(ScoreTable(["a", "b"], np.zeros(2)), trials[:2] + [Trial("c", "spoof")])
    with pytest.raises(ScoreFileError, match="1 of 4 scored IDs are not in the protocol: z"):
        label_scores(ScoreTable(["a", "b", "c", "z"], np.zeros(4)), trials)
    with pytest.raises(ScoreFileError, match="needs a protocol"):
        label_scores(ScoreTable(["a"], np.zeros(1)))


def test_real_files_agree_between_layouts(reference_dir):
    metrics = reference_dir / "metrics"
    four = label_scores(read_scores(metrics / "rawgat_st_add.eval.scores.txt"))
    two = label_scores(read_scores(metrics / "rawgat_st_add.eval.scores.2col.txt"),
                       read_protocol(metrics / "ASVspoof2019.LA.cm.eval.trl.txt"))
    assert four.ids == two.ids
    np.testing.assert_array_equal(four.scores, two.scores)
    np.testing.assert_array_equal(four.keys, two.keys)
    np.testing.assert_array_equal(four.attacks, two.attacks)
    assert (len(four.bonafide), len(four.spoof)) == (7355, 63882)


def test_asv_scores(reference_dir, tmp_path):
    asv = read_asv_scores(reference_dir / "metrics" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt")
    assert (asv.target.size, asv.nontarget.size, asv.spoof.size) == (5370, 33327, 63882)
    bad = tmp_path / "asv.txt"
    bad.write_text("bonafide target 1.0\nA01 impostor 2.0\n")
    with pytest.raises(ScoreFileError, match=r":2: key 'impostor'"):
        read_asv_scores(bad)
    bad.write_text("bonafide target 1.0\n")
    with pytest.raises(ScoreFileError, match="no nontarget, spoof trials"):
        read_asv_scores(bad)


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt") as handle:
            handle.write("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
