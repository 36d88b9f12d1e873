"""Model cards: one source (lfcc_gmm/cards.py and its measurements) for docs/models/*.md, `scorers --info` and any
program; torch-free; the AASIST threshold a verdict uses is the card's measured one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.card_measurements import MEASUREMENTS
from lfcc_gmm.cards import CARD_NAMES, OFFICIAL_AASIST_FINGERPRINTS, dev_threshold, eer, model_card

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models"


@pytest.mark.parametrize("name", CARD_NAMES)
def test_docs_agree_with_the_cards(name):
    path = DOCS / f"{name}.md"
    assert path.is_file(), f"{path} is missing: run `make model-cards`"
    assert path.read_text(encoding="utf-8") == model_card(name).to_markdown(), (
        f"{path} differs from lfcc_gmm/cards.py: run `make model-cards`")


def test_cards_cover_the_built_in_scorers_and_quote_measured_numbers():
    assert set(CARD_NAMES) == {"lfcc-gmm", "rawnet2", "aasist"}
    for name in ("lfcc-gmm", "aasist"):
        markdown = model_card(name).to_markdown()
        # The measured EERs of the demo eval split appear as the card's tables print them.
        assert f"{eer(name, 'eval'):.2f}" in markdown and f"{dev_threshold(name):.4f}" in markdown
        for heading in ("## At a glance", "## Known failures, measured here", "## Published numbers"):
            assert heading in markdown
    # The whole-file and official-crop EERs of the deep models are both measured, and both shown.
    aasist = model_card("aasist").to_markdown()
    assert "EER, official crop" in aasist and f"{eer('aasist', 'eval', 'official crop'):.2f}" in aasist


def test_measured_thresholds_are_dev_eer_points():
    # The measurement module is data: every EER is a percentage, every threshold a finite number, and the dev EER
    # of each scorer is the one its threshold was taken at.
    for name, data in MEASUREMENTS["scorers"].items():
        for set_name, entry in data["sets"].items():
            for way, value in entry.get("eer", {}).items():
                assert 0 <= value <= 100, (name, set_name, way)
        assert all(isinstance(v, float) for v in data["dev_thresholds"].values()), name
    assert set(OFFICIAL_AASIST_FINGERPRINTS.values()) <= set(MEASUREMENTS["scorers"])


def test_scorers_info_prints_the_card():
    result = CliRunner().invoke(main, ["scorers", "--info", "aasist"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("aasist: ") and "Known failures (measured here):" in result.output
    assert "docs/models/aasist.md" in result.output
    as_json = json.loads(CliRunner().invoke(main, ["scorers", "--info", "lfcc-gmm", "--json"]).output)
    assert as_json["name"] == "lfcc-gmm" and as_json["failures"]
    unknown = CliRunner().invoke(main, ["scorers", "--info", "nope"])
    assert unknown.exit_code == 2


def test_cards_and_results_never_import_torch():
    code = ("import sys, lfcc_gmm.cards, lfcc_gmm.analysis, lfcc_gmm.verdicts, lfcc_gmm.segments, rawnet.windows;"
            "lfcc_gmm.cards.model_card('aasist').to_text();"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_official_aasist_threshold_is_the_cards(reference_dir):
    from rawnet.scorers import AASISTScorer

    for file, name in (("AASIST.pth", "aasist"), ("AASIST-L.pth", "aasist-l")):
        scorer = AASISTScorer.load(reference_dir / "aasist" / file, device="cpu")
        assert OFFICIAL_AASIST_FINGERPRINTS[scorer.info_["fingerprint"]] == name
        assert scorer.threshold().value == round(dev_threshold(name), 4)
