"""ASVspoof 5 protocols and the evaluation package's key files: layouts, detection, metadata, errors."""

from __future__ import annotations

from collections import Counter

import pytest

from lfcc_gmm.protocols import ASVSPOOF5_LAYOUTS, ProtocolError, Trial, protocol_layout, read_protocol, trial_column

# The released protocols' layout: SPEAKER FILE GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK KEY TMP.
TRAIN = ("T_4850 T_0000000001 F - - - AC3 A05 spoof -\n"
         "T_1127 T_0000000002 M - - - bonafide - bonafide -\n")
EVAL = ("E_0101 E_0000000001 F C05 4 1204 AC1 A17 spoof -\n"
        "E_0101 E_0000000002 F C11 0 87 bonafide - bonafide -\n")


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_train_and_dev_protocols_keep_gender_and_no_codec(tmp_path):
    spoof, bona = read_protocol(write(tmp_path, "ASVspoof5.train.tsv", TRAIN))
    assert spoof == Trial("T_0000000001", "spoof", "A05", "T_4850")
    assert spoof.metadata == {"gender": "F", "codec": "-", "codec_quality": "-", "codec_seed": "-",
                              "attack_tag": "AC3"}
    assert bona == Trial("T_0000000002", "bonafide", "-", "T_1127") and bona.metadata["gender"] == "M"


def test_eval_protocol_keeps_codec_conditions(tmp_path):
    spoof, bona = read_protocol(write(tmp_path, "ASVspoof5.eval.track_1.tsv", EVAL))
    assert (spoof.file_id, spoof.key, spoof.attack, spoof.speaker) == ("E_0000000001", "spoof", "A17", "E_0101")
    assert spoof.metadata == {"gender": "F", "codec": "C05", "codec_quality": "4", "codec_seed": "1204",
                              "attack_tag": "AC1"}
    assert (bona.key, bona.metadata["codec"], bona.metadata["codec_quality"]) == ("bonafide", "C11", "0")


def test_ten_columns_with_a_key_sixth_is_still_a_2021_key(tmp_path):
    (trial,) = read_protocol(write(tmp_path, "p.txt", "LA_0043 DF_E_2 mp3m4a asvspoof A09 spoof notrim eval x y\n"))
    assert (trial.key, trial.attack, trial.metadata["codec"], trial.metadata["column9"]) == ("spoof", "A09",
                                                                                               "mp3m4a", "x")


def test_asvspoof5_protocol_errors_name_the_line_and_the_problem(tmp_path):
    with pytest.raises(ProtocolError, match=r"p.tsv:2: unknown label 'spof'"):
        read_protocol(write(tmp_path, "p.tsv", EVAL.replace("bonafide -\n", "spof -\n")))
    with pytest.raises(ProtocolError, match=r"p.tsv:1: unknown label 'spof'"):
        read_protocol(write(tmp_path, "p.tsv", EVAL.replace("spoof -\n", "spof -\n")))
    with pytest.raises(ProtocolError, match=r"p.tsv:2: 9 columns where earlier lines have 10"):
        read_protocol(write(tmp_path, "p.tsv", EVAL.replace(" 87 ", " ")))
    with pytest.raises(ProtocolError, match=r"p.tsv:3: duplicate ID 'E_0000000001' \(first on line 1\)"):
        read_protocol(write(tmp_path, "p.tsv", EVAL + EVAL.splitlines()[0]))


def test_package_cm_key_file(tmp_path):
    # Also with a .tsv extension, which otherwise means a path,label list.
    path = write(tmp_path, "keys.tsv", "filename\tcm-label\nE_000001\tbonafide\nE_000002\tspoof\n")
    assert read_protocol(path) == [Trial("E_000001", "bonafide"), Trial("E_000002", "spoof")]


def test_package_sasv_key_file_pairs_files_with_target_speakers(tmp_path):
    path = write(tmp_path, "sasv.keys.tsv", "spk\tfilename\tcm-label\tasv-label\n"
                 "E_0101\tE_000001\tbonafide\ttarget\n"
                 "E_0203\tE_000001\tbonafide\tnontarget\n"  # the same file against another speaker
                 "E_0202\tE_000002\tspoof\tspoof\n")
    trials = read_protocol(path)
    assert [(t.speaker, t.file_id, t.key, t.metadata["asv_label"]) for t in trials] == [
        ("E_0101", "E_000001", "bonafide", "target"),
        ("E_0203", "E_000001", "bonafide", "nontarget"),
        ("E_0202", "E_000002", "spoof", "spoof"),
    ]


def test_full_key_table_keeps_attack_and_other_columns(tmp_path):
    # The package's loader renames tar_spk_anon/trial_anon to spk/filename; other columns are metadata.
    path = write(tmp_path, "full.tsv", "tar_spk_anon trial_anon cm-label asv-label attack_anon codec track_2_tag\n"
                 "E_0101 E_000001 spoof spoof A17 C05 -\n")
    (trial,) = read_protocol(path)
    assert (trial.speaker, trial.file_id, trial.key, trial.attack) == ("E_0101", "E_000001", "spoof", "A17")
    assert trial.metadata == {"codec": "C05", "track_2_tag": "-", "asv_label": "spoof"}


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("spk\tfilename\tcm-label\tasv-label\nS1\tF1\tbonafide\ttarget\nS1\tF1\tbonafide\ttarget\n",
         r"duplicate trial S1 F1 \(first on line 2\)", 3),
        ("spk\tfilename\tcm-label\tasv-label\nS1\tF1\tbonafide\timpostor\n",
         "ASV label 'impostor' is not one of target, nontarget, spoof", 2),
        ("spk\tfilename\tcm-label\tasv-label\nS1\tF1\tspoof\ttarget\n",
         "ASV label 'target' contradicts CM label 'spoof'", 2),
        ("filename\tcm-label\nF1\tbonafide\nF2\n", "1 fields where the header names 2", 3),
        ("filename\tcm-label\nF1\thuman\n", "unknown label 'human'", 2),
        ("filename\tcm-label\nF1\tspoof\nF1\tspoof\n", r"duplicate ID 'F1' \(first on line 2\)", 3),
        ("spk\tcm-label\nS1\tspoof\n", "names a cm-label column but no filename column", 1),
        ("filename\tcm-label\tcm_label\nF1\tspoof\tspoof\n", "names the key column twice", 1),
    ],
)
def test_key_file_errors_name_the_line(tmp_path, text, message, line):
    path = write(tmp_path, "keys.tsv", text)
    with pytest.raises(ProtocolError, match=message) as info:
        read_protocol(path)
    assert info.value.line == line and f"{path}:{line}:" in str(info.value)


def test_shared_key_files(reference_dir):
    folder = reference_dir / "asvspoof5"
    cm = read_protocol(folder / "dev_half.cm.keys.tsv")
    sasv = read_protocol(folder / "dev_half.sasv.keys.tsv")
    assert (len(cm), sum(t.is_bonafide for t in cm)) == (14_774, 3_650)
    # Independent count: the label columns of the raw files.
    rows = [line.split("\t") for line in (folder / "dev_half.sasv.keys.tsv").read_text().splitlines()[1:]]
    assert Counter(t.metadata["asv_label"] for t in sasv) == Counter(row[3] for row in rows)
    assert {t.file_id: t.key for t in sasv} == {t.file_id: t.key for t in cm}


@pytest.mark.parametrize(
    ("name", "text", "layout"),
    [
        ("ASVspoof5.eval.track_1.tsv", EVAL, "asvspoof5"),
        ("keys.tsv", "filename\tcm-label\nE_1\tspoof\n", "asvspoof5-cm-keys"),
        ("keys.txt", "spk filename cm-label asv-label\nS E_1 spoof spoof\n", "asvspoof5-sasv-keys"),
        ("p.txt", "LA_0079 LA_T_1 - - bonafide\n", "asvspoof2019"),
        ("p.txt", "LA_0009 LA_E_1 alaw ita_tx A07 spoof notrim eval\n", "asvspoof2021"),
        ("p.txt", "flac LA_T_1 - bonafide\n", "rawnet2"),
        ("ids.txt", "LA_E_1\n", "ids"),
        ("list.csv", "a.wav,spoof\n", "list"),
        ("p.txt", "A B C\n", "unknown"),
    ],
)
def test_protocol_layout_names_what_read_protocol_reads(tmp_path, name, text, layout):
    path = write(tmp_path, name, text)
    assert protocol_layout(path) == layout
    assert (layout in ASVSPOOF5_LAYOUTS) == layout.startswith("asvspoof5")


def test_trial_column_follows_the_score_ids(tmp_path):
    trials = read_protocol(write(tmp_path, "ASVspoof5.eval.track_1.tsv", EVAL))
    ids = ["E_0000000002", "E_0000000001"]
    assert trial_column(trials, "codec", ids) == ["C11", "C05"]
    assert trial_column(trials, "codec_quality") == ["4", "0"]
    assert trial_column(trials, "speaker", ids) == ["E_0101", "E_0101"]
    assert trial_column(trials, "attack", ids) == ["-", "A17"]
    assert trial_column(read_protocol(write(tmp_path, "keys.tsv", "filename\tcm-label\nE_1\tspoof\n")),
                        "codec") is None
    with pytest.raises(ValueError, match="1 ID\\(s\\) are not among the trials, e.g. 'E_9'"):
        trial_column(trials, "codec", ["E_9"])
    mixed = [Trial("A", "spoof", metadata={"codec": "C01"}), Trial("B", "spoof")]
    with pytest.raises(ValueError, match="1 of 2 trials have no codec, e.g. 'B'"):
        trial_column(mixed, "codec")
