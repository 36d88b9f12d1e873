"""Score files: the 2- and 4-column layouts and the ASVspoof 5 package's CM and SASV files, exact round trips,
atomic writes, joins with protocols and keys, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.protocols import Trial, read_protocol
from lfcc_gmm.scorefiles import (
    ASVSPOOF5_CM,
    ASVSPOOF5_SASV,
    LABELLED,
    PLAIN,
    ScoreFileError,
    ScoreTable,
    label_sasv_scores,
    label_scores,
    read_asv_scores,
    read_sasv_scores,
    read_scores,
    score_file_layout,
    write_asvspoof5_scores,
    write_sasv_scores,
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


# ----------------------------------------------------------------------------- the ASVspoof 5 package's formats


def read_tsv(path):
    """The file as the package's loader sees it: a header line, then tab-separated fields."""
    header, *rows = (line.rstrip("\n").split("\t") for line in path.read_text().splitlines(keepends=True))
    return header, rows


def test_package_cm_file_reads_as_the_package_reads_it_and_writes_back_byte_for_byte(reference_dir, tmp_path):
    path = reference_dir / "asvspoof5" / "dev_half.cm.scores.tsv"
    header, rows = read_tsv(path)
    assert header == ["filename", "cm-score"] and score_file_layout(path) == ASVSPOOF5_CM
    table = read_scores(path)
    assert table.ids == [r[0] for r in rows] and not table.labelled
    np.testing.assert_array_equal(table.scores, [float(r[1]) for r in rows])
    write_asvspoof5_scores(tmp_path / "cm.tsv", table.ids, table.scores)
    assert (tmp_path / "cm.tsv").read_bytes() == path.read_bytes()


def test_package_sasv_file_reads_as_the_package_reads_it_and_writes_back_byte_for_byte(reference_dir, tmp_path):
    path = reference_dir / "asvspoof5" / "dev_half.sasv.scores.tsv"
    header, rows = read_tsv(path)
    assert header == ["spk", "filename", "cm-score", "asv-score", "sasv-score"]
    assert score_file_layout(path) == ASVSPOOF5_SASV
    table = read_sasv_scores(path)
    assert (table.speakers, table.ids) == ([r[0] for r in rows], [r[1] for r in rows])
    for column, values in zip((2, 3, 4), (table.cm_scores, table.asv_scores, table.sasv_scores), strict=True):
        np.testing.assert_array_equal(values, [float(r[column]) for r in rows])
    write_sasv_scores(tmp_path / "sasv.tsv", table.speakers, table.ids, table.cm_scores, table.asv_scores,
                      table.sasv_scores)
    assert (tmp_path / "sasv.tsv").read_bytes() == path.read_bytes()


def test_sasv_scores_align_with_the_key_on_speaker_and_file(reference_dir):
    folder = reference_dir / "asvspoof5"
    table = read_sasv_scores(folder / "dev_half.sasv.scores.tsv")
    _, key_rows = read_tsv(folder / "dev_half.sasv.keys.tsv")
    expected = {(r[0], r[1]): r[3] for r in key_rows}
    labelled = label_sasv_scores(table, read_protocol(folder / "dev_half.sasv.keys.tsv"))
    assert list(labelled.labels) == [expected[pair] for pair in zip(table.speakers, table.ids, strict=True)]
    assert sorted(set(labelled.labels)) == ["nontarget", "spoof", "target"]


def test_sasv_trials_recur_per_speaker_and_are_matched_on_both(tmp_path):
    # The file F1 is tested against two target speakers: two trials with their own labels and scores.
    scores = tmp_path / "sasv.tsv"
    scores.write_text("spk\tfilename\tsasv-score\nS2\tF1\t0.5\nS1\tF1\t2.0\nS1\tF2\t-1.0\n")
    keys = tmp_path / "keys.tsv"
    keys.write_text("spk\tfilename\tcm-label\tasv-label\nS1\tF1\tbonafide\ttarget\nS1\tF2\tspoof\tspoof\n"
                    "S2\tF1\tbonafide\tnontarget\n")
    table = read_sasv_scores(scores)
    assert table.cm_scores is None and table.asv_scores is None
    np.testing.assert_array_equal(table.sasv_scores, [0.5, 2.0, -1.0])
    labelled = label_sasv_scores(table, read_protocol(keys))
    assert list(labelled.labels) == ["nontarget", "target", "spoof"]

    keys.write_text("spk\tfilename\tcm-label\tasv-label\nS1\tF1\tbonafide\ttarget\nS1\tF3\tspoof\tspoof\n")
    with pytest.raises(ScoreFileError, match=r"2 of 3 scored trials \(spk filename\) are not in the key: S2 F1, "
                                             r"S1 F2; 1 of 2 key trials \(spk filename\) have no score: S1 F3"):
        label_sasv_scores(table, read_protocol(keys))
    keys.write_text("filename\tcm-label\nF1\tbonafide\nF2\tspoof\n")
    with pytest.raises(ScoreFileError, match="no speaker or ASV label .* SASV key file"):
        label_sasv_scores(table, read_protocol(keys))


def test_a_column_of_dashes_is_a_score_the_submission_leaves_out(tmp_path):
    # The challenge's submission format for an end-to-end SASV system: "-" for its missing CM and ASV scores.
    path = tmp_path / "score.tsv"
    path.write_text("spk\tfilename\tcm-score\tasv-score\tsasv-score\nE_2040\tE_1\t-\t-\t0.001\n"
                    "E_2040\tE_2\t-\t-\t0.002\n")
    table = read_sasv_scores(path)
    assert table.cm_scores is None and table.asv_scores is None
    np.testing.assert_array_equal(table.sasv_scores, [0.001, 0.002])
    path.write_text("spk\tfilename\tcm-score\tsasv-score\nE\tE_1\t0.5\t0.001\nE\tE_2\t-\t0.002\n")
    with pytest.raises(ScoreFileError, match=r"score.tsv:3: no score \('-'\) in a column that other lines fill"):
        read_sasv_scores(path)


def test_header_files_are_read_by_column_name(tmp_path):
    # Columns in another order, an extra column, the loader's other names, spaces instead of tabs.
    path = tmp_path / "s.tsv"
    path.write_text("sasv-score tar_spk_anon  note trial_anon cm-score\n1.5 S1 x F1 -2\n0.25 S2 y F1 3e-3\n")
    table = read_sasv_scores(path)
    assert (table.speakers, table.ids, table.asv_scores) == (["S1", "S2"], ["F1", "F1"], None)
    np.testing.assert_array_equal(table.sasv_scores, [1.5, 0.25])
    np.testing.assert_array_equal(table.cm_scores, [-2.0, 0.003])
    path.write_text("cm-score\tfilename\n1.5\ta\n-0.5\tb\n")
    assert read_scores(path).ids == ["a", "b"]


def test_package_formats_round_trip_any_id(tmp_path):
    ids, speakers = ["my clip (1)", "tab\there", "100%"], ["spk 1", "s", "s"]
    write_asvspoof5_scores(tmp_path / "cm.tsv", ids, [0.1, -2.5, 1 / 3])
    table = read_scores(tmp_path / "cm.tsv")
    assert table.ids == ids
    np.testing.assert_array_equal(table.scores, [0.1, -2.5, 1 / 3])
    assert (tmp_path / "cm.tsv").read_text().splitlines()[1] == "my%20clip%20(1)\t0.1"
    write_sasv_scores(tmp_path / "sasv.tsv", speakers, ids, sasv_scores=[1.0, 2.0, 3.0])
    assert (tmp_path / "sasv.tsv").read_text().splitlines()[:2] == ["spk\tfilename\tsasv-score",
                                                                    "spk%201\tmy%20clip%20(1)\t1.0"]
    assert read_sasv_scores(tmp_path / "sasv.tsv").speakers == speakers


@pytest.mark.parametrize(
    ("reader", "text", "message"),
    [
        (read_scores, "filename\tcm-score\n", r"contains no scores \(only a header line\)"),
        (read_scores, "filename\tcm-score\na\t1.0\nb\n", r":3: 1 fields where the header names 2"),
        (read_scores, "filename\tcm-score\na\t1.0\na\t2.0\n", r":3: duplicate ID 'a' \(first on line 2\)"),
        (read_scores, "filename\tcm-score\na\tx\n", r":2: score 'x' is not a number"),
        (read_scores, "filename\tcm-score\na\tinf\n", r":2: score is inf"),
        (read_scores, "spk\tcm-score\nS\t1.0\n", r":1: the header names no filename column"),
        (read_scores, "filename\tcm-label\na\tspoof\n", r":1: the header names no score column"),
        (read_scores, "filename\tfilename\tcm-score\n", r":1: the header names the filename column twice"),
        (read_scores, "filename\tasv-score\na\t1.0\n", "the header names no cm-score column"),
        (read_scores, "spk\tfilename\tcm-score\nS\ta\t1.0\n", "an ASVspoof 5 SASV score file .* read_sasv_scores"),
        (read_scores, "a 1 2\n", r":1: 3 columns; expected 2 .*, 4 .* or a header line"),
        (read_sasv_scores, "spk\tfilename\tcm-score\nS\ta\t1.0\nS\ta\t2.0\n",
         r":3: duplicate trial S a \(first on line 2\)"),
        (read_sasv_scores, "spk\tfilename\tcm-score\nS\ta\tnan\n", r":2: score is nan"),
        (read_sasv_scores, "filename\tcm-score\na\t1.0\n", "not an ASVspoof 5 SASV score file"),
        (read_sasv_scores, "a 1.0\n", "not an ASVspoof 5 SASV score file"),
    ],
)
def test_malformed_package_score_files(tmp_path, reader, text, message):
    path = tmp_path / "s.tsv"
    path.write_text(text)
    with pytest.raises(ScoreFileError, match=message):
        reader(path)


def test_package_writers_refuse_what_they_could_not_read_back(tmp_path):
    with pytest.raises(ValueError, match="non-finite scores"):
        write_asvspoof5_scores(tmp_path / "a.tsv", ["a"], [np.inf])
    with pytest.raises(ValueError, match="occurs twice"):
        write_asvspoof5_scores(tmp_path / "a.tsv", ["a", "a"], [1.0, 2.0])
    with pytest.raises(ValueError, match="a \\(speaker, file\\) trial occurs twice"):
        write_sasv_scores(tmp_path / "b.tsv", ["S", "S"], ["a", "a"], sasv_scores=[1.0, 2.0])
    with pytest.raises(ValueError, match="no scores to write"):
        write_sasv_scores(tmp_path / "b.tsv", ["S"], ["a"])
    with pytest.raises(ValueError, match="1 trials but 2 asv-score"):
        write_sasv_scores(tmp_path / "b.tsv", ["S"], ["a"], asv_scores=[1.0, 2.0])
    assert not list(tmp_path.iterdir())


def test_layouts_are_detected_from_the_first_line(tmp_path):
    cases = {"a 1.0\n": PLAIN, "a A01 spoof 1.0\n": LABELLED, "a 1 2\n": "unknown",
             "\nfilename\tcm-score\na\t1\n": ASVSPOOF5_CM, "spk filename sasv-score\n": ASVSPOOF5_SASV}
    for i, (text, layout) in enumerate(cases.items()):
        (tmp_path / f"{i}.txt").write_text(text)
        assert score_file_layout(tmp_path / f"{i}.txt") == layout, text
    with pytest.raises(ScoreFileError, match="score file not found"):
        score_file_layout(tmp_path / "missing.txt")
