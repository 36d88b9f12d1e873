"""TorchScript export: the archive reproduces the scorer's network outputs and records what it needs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from error_bounds import order_tolerance

from cli.deep import export_command
from cli.main import AntispoofGroup
from lfcc_gmm.audio import load_audio
from rawnet.aasist import AASIST, CONFIGS
from rawnet.export import EXTRA_FILE, export_torchscript, load_exported
from rawnet.scorers import AASISTScorer, RawNet2Scorer

# Same structure as the official AASIST config, a fraction of its channels: cheap to trace and run.
SMALL_AASIST = {**CONFIGS["AASIST"], "filts": [20, [1, 4], [4, 4], [4, 8], [8, 8]], "gat_dims": [8, 4]}


@pytest.fixture(scope="module")
def audio_dir(reference_dir):
    return reference_dir / "lfcc" / "audio"


def padded_inputs(scorer, audio_dir) -> np.ndarray:
    names = ("LA_T_1272637.flac", "espeak_en.wav", "short_1377.wav")
    return np.concatenate([scorer.model_inputs(load_audio(audio_dir / n).signal) for n in names])


def run_export(*args):
    return CliRunner().invoke(AntispoofGroup("antispoof", commands=[export_command]), ["export", *map(str, args)])


def test_rawnet2_export_matches_the_scorer(reference_dir, audio_dir, tmp_path):
    folder = reference_dir / "rawnet2"
    weights, config = folder / "rawnet2_asvspoof2021_small.pth", folder / "rawnet2_asvspoof2021_small.json"
    result = run_export("--scorer", "rawnet2", "--model", weights, "--config", config, "--variant", "asvspoof2021",
                        "-o", tmp_path / "rawnet2.pt")
    assert result.exit_code == 0, result.output
    assert "rawnet2 asvspoof2021, input (batch, 64600), output log-softmax" in result.output

    # The recipe of the module docstring, with torch alone.
    extra = {EXTRA_FILE: ""}
    module = torch.jit.load(str(tmp_path / "rawnet2.pt"), _extra_files=extra)
    meta = json.loads(extra[EXTRA_FILE])
    assert (meta["architecture"], meta["variant"], meta["nb_samp"], meta["output"], meta["bonafide_index"]) == (
        "rawnet2", "asvspoof2021", 64600, "log-softmax", 1)
    assert meta["config"] == json.loads(config.read_text())
    assert meta["default_threshold"] == pytest.approx(np.log(0.5))

    scorer = RawNet2Scorer.load(weights, config=config, variant="asvspoof2021", device="cpu", batch_size=3)
    inputs = padded_inputs(scorer, audio_dir)  # 3 rows: the trace used 2
    with torch.no_grad():
        exported = module(torch.from_numpy(inputs)).numpy()
    # The traced training-order graph against the scorer's inference path: the same function in another order.
    tolerance = order_tolerance(scorer.model_, torch.from_numpy(inputs))
    np.testing.assert_allclose(exported, scorer.outputs(inputs), rtol=0, atol=tolerance)
    # Parity with the official outputs (computed elsewhere): the accuracy the README promises.
    expected = json.loads((folder / "official_outputs.json").read_text())["cases"]["asvspoof2021"]
    np.testing.assert_allclose(exported[:2], [expected["LA_T_1272637.flac"]["output"],
                                              expected["espeak_en.wav"]["output"]], rtol=0, atol=1e-5)


def test_aasist_export_matches_the_scorer(audio_dir, tmp_path):
    torch.manual_seed(0)
    torch.save(AASIST(SMALL_AASIST).state_dict(), tmp_path / "small.pth")
    scorer = AASISTScorer.load(tmp_path / "small.pth", config=SMALL_AASIST, device="cpu", batch_size=3)
    meta = export_torchscript(scorer, tmp_path / "aasist.pt")
    module, loaded_meta = load_exported(tmp_path / "aasist.pt")
    assert loaded_meta == meta
    assert (meta["architecture"], meta["config"], meta["output"], meta["nb_samp"]) == (
        "aasist", SMALL_AASIST, "logits", 64600)
    inputs = padded_inputs(scorer, audio_dir)
    with torch.no_grad():
        exported = module(torch.from_numpy(inputs)).numpy()
    # The scorer runs AASIST's fused no-grad inference path, the archive the training-order one: same function.
    tolerance = order_tolerance(scorer.model_, torch.from_numpy(inputs))
    np.testing.assert_allclose(exported, scorer.outputs(inputs), rtol=0, atol=tolerance)


def test_not_an_export(tmp_path, reference_dir):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"junk\.pt: not a TorchScript archive"):
        load_exported(tmp_path / "junk.pt")
    plain = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(plain, str(tmp_path / "plain.pt"))
    with pytest.raises(ValueError, match="without antispoof metadata"):
        load_exported(tmp_path / "plain.pt")
    result = run_export("--scorer", "rawnet2", "--model", reference_dir / "rawnet2" / "rawnet2_asvspoof2021_small.pth",
                        "-o", tmp_path / "x.pt")
    assert result.exit_code == 1 and "give the config and the variant" in result.output
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.slow
def test_official_aasist_export_reproduces_the_official_logits(reference_dir, audio_dir, tmp_path):
    result = run_export("--scorer", "aasist", "--weights", reference_dir / "aasist" / "AASIST.pth",
                        "-o", tmp_path / "aasist.pt")
    assert result.exit_code == 0, result.output
    module, meta = load_exported(tmp_path / "aasist.pt")
    assert (meta["variant"], meta["config"]) == ("aasist", CONFIGS["AASIST"])
    scorer = AASISTScorer.load(reference_dir / "aasist" / "AASIST.pth", device="cpu")
    inputs = scorer.model_inputs(load_audio(audio_dir / "LA_T_1272637.flac").signal)
    with torch.no_grad():
        exported = module(torch.from_numpy(inputs)).numpy()
    tolerance = order_tolerance(scorer.model_, torch.from_numpy(inputs))
    np.testing.assert_allclose(exported, scorer.outputs(inputs), rtol=0, atol=tolerance)
    # Parity with the official logits (computed elsewhere): the accuracy the README promises.
    official = json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())
    np.testing.assert_allclose(exported[0], official["AASIST.pth"]["LA_T_1272637.flac"]["logits"], rtol=0, atol=1e-4)
