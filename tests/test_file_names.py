"""File names with spaces, parentheses, percent signs and other characters: IDs survive every file that holds them.

Score files and protocols are whitespace-separated, so an ID is written percent-encoded (``%20`` for a space,
``%25`` for ``%``; see :mod:`lfcc_gmm.scorefiles`) and decoded on reading. Ordinary IDs are written unchanged.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.batch import partial_path, read_partial, score_trials
from lfcc_gmm.protocols import Trial, decode_id, encode_id, read_protocol, trials_from_paths, write_protocol
from lfcc_gmm.scorefiles import read_scores, write_scores

ODD_IDS = [
    "my clip (1)",
    "tab\there",
    "50% off",
    "a%20b",  # a literal "%20" must not come back as a space
    "naïve café",
    "new\nline",
    "nbsp\u00a0and\u2028separator",
    "plain_ID-1.x",
]


@pytest.mark.parametrize("file_id", ODD_IDS)
def test_encoding_round_trips_and_keeps_one_column(file_id):
    encoded = encode_id(file_id)
    assert decode_id(encoded) == file_id
    assert encoded.split() == [encoded] and encoded.isprintable()


def test_encoding_is_injective_and_leaves_ordinary_ids_alone():
    assert len({encode_id(i) for i in ODD_IDS}) == len(ODD_IDS)
    assert encode_id("a b") != encode_id("a%20b")
    for ordinary in ("LA_E_1000147", "DEMO_T_0001", "x/a.wav", "(1)", "A-b_c.d+e"):
        assert encode_id(ordinary) == ordinary


def test_score_files_round_trip_odd_ids(tmp_path):
    scores = np.arange(len(ODD_IDS)) / 7
    write_scores(tmp_path / "two.txt", ODD_IDS, scores)
    table = read_scores(tmp_path / "two.txt")
    assert table.ids == ODD_IDS and not table.labelled
    np.testing.assert_array_equal(table.scores, scores)
    keys = ["bonafide", "spoof"] * (len(ODD_IDS) // 2)
    attacks = ["-", "A01"] * (len(ODD_IDS) // 2)
    write_scores(tmp_path / "four.txt", ODD_IDS, scores, attacks, keys)
    table = read_scores(tmp_path / "four.txt")
    assert (table.ids, table.keys, table.attacks) == (ODD_IDS, keys, attacks)
    # Every line still splits into its columns, as awk or the official scripts split it.
    for name, width in (("two.txt", 2), ("four.txt", 4)):
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(ODD_IDS) and all(len(line.split()) == width for line in lines)


def test_official_layouts_are_unchanged_for_ordinary_ids(tmp_path):
    write_scores(tmp_path / "two.txt", ["LA_E_1", "LA_E_2"], [0.5, -1.25])
    assert (tmp_path / "two.txt").read_bytes() == b"LA_E_1 0.5\nLA_E_2 -1.25\n"
    write_scores(tmp_path / "four.txt", ["LA_E_1", "LA_E_2"], [0.5, -1.25], ["-", "A07"], ["bonafide", "spoof"])
    assert (tmp_path / "four.txt").read_bytes() == b"LA_E_1 - bonafide 0.5\nLA_E_2 A07 spoof -1.25\n"


def test_protocols_round_trip_odd_ids(tmp_path):
    trials = [Trial(i, "bonafide" if n % 2 else "spoof", "-" if n % 2 else "A01", "SPK") for n, i in enumerate(ODD_IDS)]
    write_protocol(tmp_path / "p.txt", trials)
    assert read_protocol(tmp_path / "p.txt") == trials


def test_protocol_ids_resolve_to_audio_with_spaces(tmp_path):
    (tmp_path / "my clip (1).flac").write_bytes(b"")
    (tmp_path / "p.txt").write_text("SPK my%20clip%20(1) - - bonafide\n")
    (trial,) = read_protocol(tmp_path / "p.txt", tmp_path)
    assert trial.file_id == "my clip (1)" and trial.path == tmp_path / "my clip (1).flac"


def test_loose_files_get_unambiguous_ids():
    assert [t.file_id for t in trials_from_paths(["x/my clip (1).wav", "x/other.wav"])] == ["my clip (1)", "other"]
    # The same stem in two folders, or with two extensions: the paths themselves are the IDs.
    assert [t.file_id for t in trials_from_paths(["a/x.wav", "b/x.wav"])] == ["a/x.wav", "b/x.wav"]
    assert [t.file_id for t in trials_from_paths(["tts.mp3", "tts.ogg"])] == ["tts.mp3", "tts.ogg"]
    # One file named twice would give two scores under one ID: refused, naming the file.
    with pytest.raises(ValueError, match=r"x/a\.wav is given 2 times"):
        trials_from_paths(["x/a.wav", "y/b.wav", "x/a.wav"])


class Interrupting:
    """Raises KeyboardInterrupt on the second chunk, as Ctrl-C would."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def assess_files(self, paths, grid):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.inner.assess_files(paths, grid)


def test_resume_reads_back_odd_ids(highband_plugin, tmp_path):
    from conftest import synthetic_corpus

    from lfcc_gmm.scorers import get_scorer

    corpus = synthetic_corpus(tmp_path / "audio", n_per_class=2)
    trials = [Trial(i, t.key, t.attack, path=t.path) for i, t in zip(ODD_IDS, corpus, strict=False)]
    scorer = get_scorer("highband")().fit(corpus)
    out = tmp_path / "s.txt"
    with pytest.raises(KeyboardInterrupt):
        score_trials(Interrupting(scorer), trials, out, chunk_size=2)
    assert set(read_partial(partial_path(out))) == set(ODD_IDS[:2])
    result = score_trials(scorer, trials, out, chunk_size=2, resume=True)
    assert (result.n_resumed, result.n_scored) == (2, len(trials) - 2)
    assert read_scores(out).ids == [t.file_id for t in trials]


@pytest.fixture
def odd_named_audio(highband_plugin, tmp_path):
    """Two labelled clips per class under names with spaces and parentheses, and a model trained on others."""
    from conftest import synthetic_corpus

    from lfcc_gmm.scorers import get_scorer

    corpus = synthetic_corpus(tmp_path / "corpus", n_per_class=3)
    get_scorer("highband")().fit(corpus).save(tmp_path / "hb.json")
    names = ["my clip (1)", "my clip (2)", "take 3 [final]", "50% louder"]
    files = []
    for name, trial in zip(names, corpus[:4], strict=True):
        files.append(tmp_path / "clips" / f"{name}.wav")
        files[-1].parent.mkdir(exist_ok=True)
        shutil.copy(trial.path, files[-1])
    keys = [t.key for t in corpus[:4]]
    return tmp_path, files, keys


def _invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_cli_loose_files_with_spaces_score_resume_and_evaluate(odd_named_audio):
    folder, files, keys = odd_named_audio
    model = ["--scorer", "highband", "--model", folder / "hb.json"]
    out = folder / "s.txt"
    result = _invoke("score", *model, *files, "-o", out, "--format", "text")
    assert f"{files[0]}: " in result.stdout
    table = read_scores(out)
    assert table.ids == [f.stem for f in files]
    # An interrupted run leaves a partial file with some of them: --resume completes it.
    lines = out.read_text(encoding="utf-8").splitlines()
    out.unlink()
    partial_path(out).write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    resumed = _invoke("score", *model, *files, "-o", out, "--resume")
    assert "2 from an earlier run" in resumed.output
    assert out.read_text(encoding="utf-8").splitlines() == lines
    # A 2-column file takes its labels from a protocol, whose IDs are encoded the same way.
    protocol = folder / "protocol.txt"
    write_protocol(protocol, [Trial(f.stem, k, "-" if k == "bonafide" else "S01") for f, k in zip(files, keys,
                                                                                                   strict=True)])
    evaluated = json.loads(_invoke("evaluate", out, "--protocol", protocol, "--json").output)
    assert (evaluated["n_bonafide"], evaluated["n_spoof"]) == (2, 2)


def test_cli_list_with_spaces_scores_then_evaluate_compare_fuse(odd_named_audio):
    folder, files, keys = odd_named_audio
    listing = folder / "list.csv"
    listing.write_text("path,label,attack\n" + "".join(
        f"clips/{f.name},{k},{'-' if k == 'bonafide' else 'S01'}\n" for f, k in zip(files, keys, strict=True)),
        encoding="utf-8")
    out = folder / "labelled.txt"
    _invoke("score", "--scorer", "highband", "--model", folder / "hb.json", "--list", listing, "-o", out)
    table = read_scores(out)
    assert table.ids == [f.stem for f in files] and table.keys == keys
    evaluated = json.loads(_invoke("evaluate", out, "--json").output)
    assert (evaluated["n_bonafide"], evaluated["n_spoof"]) == (2, 2)
    # A second system on the same trials, in another order: compare and fuse join them by ID.
    other = folder / "other.txt"
    order = [3, 1, 0, 2]
    write_scores(other, [table.ids[i] for i in order], [float(i) for i in order],
                 [table.attacks[i] for i in order], [table.keys[i] for i in order])
    compared = json.loads(_invoke("compare", out, other, "-o", folder / "report", "--json").output)
    systems = {system["name"]: system for system in compared["systems"]}
    assert [(s["n_bonafide"], s["n_spoof"]) for s in systems.values()] == [(2, 2), (2, 2)]
    assert systems["labelled"]["eer_percent"] == evaluated["eer_percent"]
    fused = folder / "fused.txt"
    _invoke("fuse", "--train", out, "--train", other, "--apply", out, "--apply", other, "-o", fused)
    assert read_scores(fused).ids == table.ids
