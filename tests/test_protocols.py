"""Protocol and list readers: every layout, audio resolution, and errors with line numbers."""

from __future__ import annotations

import pytest

from lfcc_gmm.protocols import (
    MissingAudioError,
    ProtocolError,
    Trial,
    parse_label,
    read_protocol,
    resolve_audio,
    trials_from_paths,
    write_protocol,
)


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_2019_la_five_columns(tmp_path):
    path = write(tmp_path, "p.txt", "LA_0079 LA_T_1 - - bonafide\nLA_0080 LA_T_2 - A01 spoof\n")
    trials = read_protocol(path)
    assert trials == [Trial("LA_T_1", "bonafide", "-", "LA_0079"), Trial("LA_T_2", "spoof", "A01", "LA_0080")]
    assert trials[0].is_bonafide and not trials[1].is_bonafide


def test_four_column_variant(tmp_path):
    path = write(tmp_path, "p.txt", "flac LA_T_1 - bonafide\nflac LA_T_2 A05 spoof\n")
    assert read_protocol(path) == [Trial("LA_T_1", "bonafide", "-"), Trial("LA_T_2", "spoof", "A05")]


def test_2021_trial_metadata_eight_and_more_columns(tmp_path):
    la = write(tmp_path, "la.txt", "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval\n")
    (trial,) = read_protocol(la)
    assert (trial.file_id, trial.key, trial.attack, trial.speaker) == ("LA_E_9332881", "spoof", "A07", "LA_0009")
    assert trial.metadata == {"codec": "alaw", "transmission": "ita_tx", "trim": "notrim", "subset": "eval"}
    df = write(tmp_path, "df.txt",
               "LA_0043 DF_E_2000026 mp3m4a asvspoof - bonafide notrim eval vcc2018 - - - -\n")
    (trial,) = read_protocol(df)
    assert trial.key == "bonafide" and trial.metadata["column9"] == "vcc2018"


def test_unlabelled_id_list(tmp_path):
    trials = read_protocol(write(tmp_path, "ids.txt", "LA_E_1\nLA_E_2\n"))
    assert [t.key for t in trials] == [None, None]


def test_real_2019_protocols(reference_dir):
    expected = {"train": (25380, 2580), "dev": (24844, 2548), "eval": (71237, 7355)}
    for split, name in [("train", "train.trn"), ("dev", "dev.trl"), ("eval", "eval.trl")]:
        trials = read_protocol(reference_dir / "metrics" / f"ASVspoof2019.LA.cm.{name}.txt")
        n_bonafide = sum(t.is_bonafide for t in trials)
        assert (len(trials), n_bonafide) == expected[split]
        assert all((t.attack == "-") == t.is_bonafide for t in trials)


def test_csv_and_tsv_lists_resolve_relative_to_the_list(tmp_path):
    (tmp_path / "audio").mkdir()
    for name in ("a.wav", "b.flac"):
        (tmp_path / "audio" / name).write_bytes(b"x")
    csv_path = write(tmp_path, "list.csv", "path,label,attack\naudio/a.wav,bonafide,\naudio/b.flac,fake,TTS1\n")
    trials = read_protocol(csv_path)
    assert [(t.file_id, t.key, t.attack) for t in trials] == [("a", "bonafide", "-"), ("b", "spoof", "TTS1")]
    assert trials[0].path == tmp_path / "audio" / "a.wav"
    tsv_path = write(tmp_path, "list.tsv", "audio/a.wav\tgenuine\n")
    assert read_protocol(tsv_path)[0].key == "bonafide"


def test_audio_dir_resolution_with_several_extensions(tmp_path):
    (tmp_path / "flac").mkdir()
    (tmp_path / "flac" / "X1.flac").write_bytes(b"x")
    (tmp_path / "flac" / "X2.wav").write_bytes(b"x")
    path = write(tmp_path, "p.txt", "S X1 - - bonafide\nS X2 - A01 spoof\n")
    trials = read_protocol(path, tmp_path / "flac", extensions=(".flac", ".wav"))
    assert [t.path.name for t in trials] == ["X1.flac", "X2.wav"]


def test_missing_audio_is_reported_all_at_once(tmp_path):
    (tmp_path / "flac").mkdir()
    (tmp_path / "flac" / "X0.flac").write_bytes(b"x")
    path = write(tmp_path, "p.txt", "".join(f"S X{i} - - bonafide\n" for i in range(9)))
    with pytest.raises(MissingAudioError, match=r"8 of 9 audio files are missing .*X1\.flac.*\(\+3 more\)") as info:
        read_protocol(path, tmp_path / "flac")
    assert len(info.value.missing) == 8


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("S A - - bonafide\nS B - - bonafide\nS A - A01 spoof\n", "duplicate ID 'A'", 3),
        ("S A - - bonafide\nS B - A01\n", "4 columns where earlier lines have 5", 2),
        ("S A - - bonafide\nS B - A01 maybe\n", "unknown label 'maybe'", 2),
        ("A B C\n", "3 columns", 1),
    ],
)
def test_malformed_protocols_name_the_line(tmp_path, text, message, line):
    path = write(tmp_path, "p.txt", text)
    with pytest.raises(ProtocolError, match=message) as info:
        read_protocol(path)
    assert info.value.line == line
    assert f"{path}:{line}:" in str(info.value)


def test_csv_errors(tmp_path):
    with pytest.raises(ProtocolError, match=r"list.csv:2: 1 fields"):
        read_protocol(write(tmp_path, "list.csv", "a.wav,spoof\nb.wav\n"), check_audio=False)
    with pytest.raises(ProtocolError, match="bona fide file has attack"):
        read_protocol(write(tmp_path, "list.csv", "a.wav,bonafide,A01\n"), check_audio=False)


def test_empty_and_missing_protocol(tmp_path):
    with pytest.raises(ProtocolError, match="contains no trials"):
        read_protocol(write(tmp_path, "p.txt", "\n\n"))
    with pytest.raises(ProtocolError, match="protocol file not found"):
        read_protocol(tmp_path / "nope.txt")


def test_parse_label_aliases():
    assert parse_label(" Bona-Fide ") == "bonafide"
    assert parse_label("FAKE") == "spoof"
    with pytest.raises(ValueError, match="expected one of"):
        parse_label("human")


def test_trials_from_paths_keeps_ids_unique(tmp_path):
    assert [t.file_id for t in trials_from_paths(["x/a.wav", "x/b.wav"])] == ["a", "b"]
    clash = trials_from_paths(["x/a.wav", "y/a.flac"])
    assert [t.file_id for t in clash] == ["x/a.wav", "y/a.flac"]


def test_write_protocol_round_trip(tmp_path):
    trials = [Trial("F1", "bonafide", "-", "SPK1"), Trial("F2", "spoof", "D03", "SPK2")]
    write_protocol(tmp_path / "out.txt", trials)
    assert read_protocol(tmp_path / "out.txt") == trials


def test_resolve_audio_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio folder not found"):
        resolve_audio([Trial("A", None)], tmp_path / "none")


def test_audio_paths_need_resolved_trials(tmp_path):
    from lfcc_gmm.protocols import audio_paths

    assert audio_paths([Trial("A", None, path=tmp_path / "a.wav")]) == [tmp_path / "a.wav"]
    with pytest.raises(ValueError, match=r"2 trial\(s\) have no audio path \(e.g. 'B'\)"):
        audio_paths([Trial("A", None, path=tmp_path / "a.wav"), Trial("B", None), Trial("C", None)])


def test_id_list_without_audio_folder_is_a_clear_cli_error(tmp_path):
    from click.testing import CliRunner

    from cli.main import main

    ids = write(tmp_path, "ids.txt", "LA_E_1\nLA_E_2\n")
    result = CliRunner().invoke(main, ["lfcc", "--list", str(ids), "-o", str(tmp_path / "feats")])
    assert result.exit_code == 1 and "have no audio path" in result.output
