"""The scorer registry: entry points are discovered, plug-ins work end to end, errors are clear."""

from __future__ import annotations

import numpy as np
import pytest

from lfcc_gmm.scorers import ENTRY_POINT_GROUP, Scorer, ScorerNotFoundError, available_scorers, get_scorer


def test_builtin_lfcc_gmm_is_registered():
    assert "lfcc-gmm" in available_scorers()
    assert get_scorer("lfcc-gmm").name == "lfcc-gmm"


def test_unknown_scorer_lists_installed_ones():
    with pytest.raises(ScorerNotFoundError, match=r"no scorer named 'nope' is installed \(installed: .*lfcc-gmm"):
        get_scorer("nope")


def test_third_party_plugin_registered_through_entry_point(highband_plugin, tiny_corpus, tmp_path):
    assert available_scorers()["highband"].group == ENTRY_POINT_GROUP
    cls = get_scorer("highband")
    assert issubclass(cls, Scorer)
    scorer = cls().fit(tiny_corpus)
    scores = scorer.score_files([t.path for t in tiny_corpus])
    keys = np.array([t.key for t in tiny_corpus])
    # The synthetic spoofs are low-passed, so the high-band scorer must rank every bona fide file higher.
    assert scores[keys == "bonafide"].min() > scores[keys == "spoof"].max()
    scorer.save(tmp_path / "hb.json")
    np.testing.assert_array_equal(cls.load(tmp_path / "hb.json").score_files([t.path for t in tiny_corpus]), scores)


def test_broken_plugin_is_reported_not_fatal(tmp_path, monkeypatch):
    dist = tmp_path / "broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[antispoof.scorers]\nbroken = no_such_module_xyz:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ScorerNotFoundError, match="cannot be imported: No module named 'no_such_module_xyz'"):
        get_scorer("broken")
    assert "lfcc-gmm" in available_scorers()


def test_base_class_fit_is_optional():
    class Fixed(Scorer):
        name = "fixed"

        def score_files(self, paths):
            return np.zeros(len(paths))

        def save(self, path):
            raise NotImplementedError

        @classmethod
        def load(cls, path, **options):
            return cls()

    with pytest.raises(NotImplementedError, match="'fixed' cannot be trained"):
        Fixed().fit([])
    with pytest.raises(TypeError):
        Scorer()
