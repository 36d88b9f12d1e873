"""Batch scoring: bad files are isolated and recorded, partial results survive interruption and resume."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from lfcc_gmm.batch import (
    PartialRunExistsError,
    checks_partial_path,
    checks_path,
    errors_path,
    partial_path,
    read_partial,
    score_trials,
)
from lfcc_gmm.scorefiles import read_scores
from lfcc_gmm.scorers import get_scorer


@pytest.fixture
def scorer(highband_plugin, tiny_corpus):
    return get_scorer("highband")().fit(tiny_corpus)


class Interrupting:
    """Wraps a scorer and raises KeyboardInterrupt on the n-th chunk it is given, as Ctrl-C would."""

    def __init__(self, inner, fail_on_call: int):
        self.inner, self.calls, self.fail_on_call = inner, 0, fail_on_call

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt

    def score_files(self, paths):
        self._count()
        return self.inner.score_files(paths)

    def assess_files(self, paths, grid):
        self._count()
        return self.inner.assess_files(paths, grid)


def test_scores_in_protocol_order_with_labels(scorer, tiny_corpus, tmp_path):
    out = tmp_path / "scores.txt"
    result = score_trials(scorer, tiny_corpus, out, chunk_size=3)
    assert result.ok and result.n_scored == len(tiny_corpus)
    table = read_scores(out)
    assert table.ids == [t.file_id for t in tiny_corpus]
    assert table.keys == [t.key for t in tiny_corpus] and table.attacks == [t.attack for t in tiny_corpus]
    np.testing.assert_array_equal(table.scores, scorer.score_files([t.path for t in tiny_corpus]))
    assert not partial_path(out).exists() and not errors_path(out).exists()


def test_unlabelled_trials_give_two_columns(scorer, tiny_corpus, tmp_path):
    trials = [dataclasses.replace(t, key=None) for t in tiny_corpus]
    score_trials(scorer, trials, tmp_path / "s.txt")
    assert not read_scores(tmp_path / "s.txt").labelled


def test_bad_files_are_recorded_and_the_rest_scored(scorer, tiny_corpus, tmp_path):
    bad = tmp_path / "audio" / "broken.wav"
    bad.write_bytes(b"not audio at all" * 10)
    trials = list(tiny_corpus)
    trials.insert(2, dataclasses.replace(trials[0], file_id="broken", path=bad))
    trials.insert(5, dataclasses.replace(trials[0], file_id="gone", path=tmp_path / "missing.wav"))
    out = tmp_path / "s.txt"
    result = score_trials(scorer, trials, out, chunk_size=4)
    assert [f[0] for f in result.failures] == ["broken", "gone"]
    assert read_scores(out).ids == [t.file_id for t in tiny_corpus]
    lines = errors_path(out).read_text().splitlines()
    assert lines[0] == "file_id\tpath\treason"
    # The path has its column; the reason says only what is wrong (issue 16: failure lines repeated the path).
    assert lines[1].startswith(f"broken\t{bad}\tnot a readable audio file")
    assert "file not found" in lines[2]


def test_interrupted_run_resumes_to_the_uninterrupted_result(scorer, tiny_corpus, tmp_path):
    reference = tmp_path / "ref.txt"
    score_trials(scorer, tiny_corpus, reference, chunk_size=2)
    out = tmp_path / "s.txt"
    with pytest.raises(KeyboardInterrupt):
        score_trials(Interrupting(scorer, fail_on_call=3), tiny_corpus, out, chunk_size=2)
    assert not out.exists()
    assert len(read_partial(partial_path(out))) == 4  # two chunks were flushed before the interrupt
    with pytest.raises(PartialRunExistsError, match="--resume"):
        score_trials(scorer, tiny_corpus, out, chunk_size=2)
    result = score_trials(scorer, tiny_corpus, out, chunk_size=2, resume=True)
    assert (result.n_resumed, result.n_scored) == (4, 4)
    assert out.read_bytes() == reference.read_bytes()
    # The checks of the files scored before the interrupt were kept too: the same findings, in the same order.
    assert checks_path(out).read_bytes() == checks_path(reference).read_bytes()
    assert not checks_partial_path(out).exists()


def test_resume_ignores_a_torn_last_line(scorer, tiny_corpus, tmp_path):
    out = tmp_path / "s.txt"
    first = tiny_corpus[0]
    partial_path(out).write_text(f"{first.file_id} 0.25\n{tiny_corpus[1].file_id} 0.1")  # killed mid-line
    assert read_partial(partial_path(out)) == {first.file_id: 0.25}
    result = score_trials(scorer, tiny_corpus, out, resume=True)
    assert result.n_resumed == 1
    assert read_scores(out).scores[0] == 0.25  # resumed scores are kept, not recomputed


def test_progress_is_reported(scorer, tiny_corpus, tmp_path):
    seen = []
    score_trials(scorer, tiny_corpus, tmp_path / "s.txt", chunk_size=3, progress=lambda d, n: seen.append((d, n)))
    assert seen == [(0, 8), (3, 8), (6, 8), (8, 8)]


def test_every_file_is_checked_and_listed_without_changing_its_score(scorer, tiny_corpus, tmp_path, monkeypatch):
    out = tmp_path / "s.txt"
    result = score_trials(scorer, tiny_corpus, out)
    plain = score_trials(scorer, tiny_corpus, tmp_path / "plain.txt", checks=False)
    # The synthetic corpus is harmonic tones in noise, never speech: every file is listed, and still scored as
    # score_files scores it (the same function on the same files).
    np.testing.assert_array_equal(read_scores(out).scores, read_scores(tmp_path / "plain.txt").scores)
    assert result.no_speech == [t.file_id for t in tiny_corpus]
    rows = [line.split("\t") for line in checks_path(out).read_text().splitlines()]
    assert rows[0] == ["file_id", "path", "check", "value", "message"]
    assert [(r[0], r[2]) for r in rows[1:] if r[2] == "no-speech"] == [(t.file_id, "no-speech") for t in tiny_corpus]
    assert all(r[1] == str(t.path) for r, t in zip([r for r in rows[1:] if r[2] == "no-speech"], tiny_corpus,
                                                     strict=True))
    assert not plain.findings and not checks_path(tmp_path / "plain.txt").exists()


def test_check_rows_survive_any_file_name(scorer, tiny_corpus, tmp_path):
    # A tab or a newline in a path must not break the TSV, and the ID reads back through the partial file.
    odd = tmp_path / "odd\tname\n.wav"
    odd.write_bytes(tiny_corpus[0].path.read_bytes())
    trials = [dataclasses.replace(tiny_corpus[0], file_id="odd\tname", path=odd)]
    out = tmp_path / "s.txt"
    with pytest.raises(KeyboardInterrupt):
        score_trials(Interrupting(scorer, fail_on_call=2), trials + tiny_corpus[1:2], out, chunk_size=1)
    result = score_trials(scorer, trials + tiny_corpus[1:2], out, chunk_size=1, resume=True)
    assert result.n_resumed == 1 and result.no_speech == ["odd\tname", tiny_corpus[1].file_id]
    with open(checks_path(out), newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    # As OUTPUT.errors.tsv: a TSV any csv reader reads back, the ID whole, whitespace in the rest flattened.
    assert rows[1][:3] == ["odd\tname", f"{tmp_path}/odd name .wav", "no-speech"]
