"""Batch scoring: bad files are isolated and recorded, partial results survive interruption and resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lfcc_gmm.batch import PartialRunExistsError, errors_path, partial_path, read_partial, score_trials
from lfcc_gmm.scorefiles import read_scores
from lfcc_gmm.scorers import get_scorer


@pytest.fixture
def scorer(highband_plugin, tiny_corpus):
    return get_scorer("highband")().fit(tiny_corpus)


class Interrupting:
    """Wraps a scorer and raises KeyboardInterrupt on the n-th call, as Ctrl-C would."""

    def __init__(self, inner, fail_on_call: int):
        self.inner, self.calls, self.fail_on_call = inner, 0, fail_on_call

    def score_files(self, paths):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt
        return self.inner.score_files(paths)


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
