"""The official weights bundled as safetensors: equal to the official files, verified, reproducible, offline."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from rawnet import weights
from rawnet.aasist import CONFIGS
from rawnet.scorers import AASISTScorer
from rawnet.weights import KNOWN_WEIGHTS, WeightsError, bundled_file, read_bundled, resolve_weights

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted(name for name, entry in KNOWN_WEIGHTS.items() if entry.bundled)
#: name → (official file, its official outputs, their key, official model config file) in the reference folder.
OFFICIAL = {
    "aasist": ("aasist/AASIST.pth", "aasist/official_outputs.json", "AASIST.pth", "aasist/AASIST.json"),
    "aasist-l": ("aasist/AASIST-L.pth", "aasist/official_outputs.json", "AASIST-L.pth", "aasist/AASIST-L.json"),
    "aasist-asvspoof5": ("asvspoof5/aasist/AASIST-ASVspoof5.pth", "asvspoof5/aasist/official_outputs.json",
                         "AASIST-ASVspoof5.pth", "asvspoof5/aasist/AASIST-ASVspoof5.conf"),
}
#: Licence texts shipped with the weights ← the official ones.
LICENCES = {
    "LICENSE-AASIST.txt": "aasist/LICENSE.AASIST-weights.txt",
    "LICENSE-AASIST-ASVspoof5.txt": "asvspoof5/aasist/LICENSE",
    "NOTICE-AASIST-ASVspoof5.txt": "asvspoof5/aasist/NOTICE",
}
CLIPS = ("LA_T_1272637.flac", "espeak_en.wav", "chirp_noise.wav", "short_1377.wav")
# The official outputs are float32 logits printed by the official code; AASIST's CPU inference path sums in another
# order (folded batch norms, chunked encoder), which moves logits of magnitude <= 50 by a few 1e-6. Issue 20 asks
# for <= 1e-4, the bound the other official-parity tests use.
LOGIT_TOLERANCE = 1e-4


@pytest.fixture
def damaged(damage_bundled):
    """A copy of the bundled folder whose aasist file has one flipped byte, installed in its place."""
    return damage_bundled("aasist.safetensors")


def test_every_bundled_file_is_there_with_its_recorded_hash():
    assert BUNDLED == ["aasist", "aasist-asvspoof5", "aasist-l"]
    for name in BUNDLED:
        entry = KNOWN_WEIGHTS[name]
        path = weights.PRETRAINED_DIR / entry.bundled
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.bundled_sha256
        assert bundled_file(name) == path == resolve_weights(name)
        assert all((weights.PRETRAINED_DIR / f).is_file() for f in entry.licence_files)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_tensors_equal_the_official_file_bit_for_bit(name, reference_dir):
    official = torch.load(reference_dir / OFFICIAL[name][0], map_location="cpu", weights_only=True)
    tensors, description = read_bundled(name)
    assert set(tensors) == set(official)
    for key, value in official.items():
        expected = value.numpy()
        got = tensors[key]
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), key
        assert got.tobytes() == expected.tobytes(), key  # every bit, NaN payloads and signed zeros included
    entry = KNOWN_WEIGHTS[name]
    assert description["source_sha256"] == entry.sha256 == hashlib.sha256(
        (reference_dir / OFFICIAL[name][0]).read_bytes()).hexdigest()
    assert (description["source_url"], description["licence"], description["name"]) == (entry.url, "MIT", name)
    assert description["config"] == entry.config


@pytest.mark.parametrize("name", BUNDLED)
def test_registry_configs_are_the_official_ones(name, reference_dir):
    raw = json.loads((reference_dir / OFFICIAL[name][3]).read_text())
    official = raw.get("model_config", raw)
    assert KNOWN_WEIGHTS[name].config == official
    assert KNOWN_WEIGHTS[name].config in list(CONFIGS.values())


def test_licence_texts_are_the_official_ones(reference_dir):
    for shipped, source in LICENCES.items():
        assert (weights.PRETRAINED_DIR / shipped).read_bytes() == (reference_dir / source).read_bytes()
    text = (weights.PRETRAINED_DIR / "LICENSE-AASIST.txt").read_text()
    assert "Copyright (c) 2021-present NAVER Corp." in text and "Permission is hereby granted" in text


@pytest.mark.slow  # two runs of the script, each importing torch
def test_bundle_script_rebuilds_the_package_data_byte_for_byte(reference_dir, tmp_path):
    # The safetensors files and licences (the ONNX graphs, minutes to export, are tested in test_onnx_scorers.py).
    outputs = []
    for run in ("first", "second"):
        out = tmp_path / run
        # Separate processes: what varies between runs (hash seeds, map orders) varies here too.
        done = subprocess.run([sys.executable, str(REPO_ROOT / "data" / "bundle_weights.py"),
                               "--reference", str(reference_dir), "--out", str(out), "--no-onnx"],
                              capture_output=True, text=True, cwd=REPO_ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "update it" not in done.stdout
        outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    installed = {p.name: p.read_bytes() for p in sorted(weights.PRETRAINED_DIR.iterdir()) if p.suffix != ".onnx"}
    assert outputs[0] == installed


@pytest.mark.slow  # imports torch in a subprocess
def test_bundle_script_refuses_a_source_that_is_not_the_official_file(reference_dir, tmp_path):
    fake = tmp_path / "reference"
    shutil.copytree(reference_dir / "aasist", fake / "aasist")
    (fake / "aasist" / "AASIST.pth").chmod(0o644)
    (fake / "aasist" / "AASIST.pth").write_bytes(b"not the weights")
    done = subprocess.run([sys.executable, str(REPO_ROOT / "data" / "bundle_weights.py"), "--reference", str(fake),
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode != 0
    assert f"{fake / 'aasist' / 'AASIST.pth'}: SHA-256" in done.stderr
    assert KNOWN_WEIGHTS["aasist"].sha256 in done.stderr


def test_a_damaged_bundled_file_is_refused_with_a_clear_error(damaged):
    with pytest.raises(WeightsError) as info:
        bundled_file("aasist")
    message = str(info.value)
    assert message.startswith(f"{damaged}: SHA-256 ")
    assert KNOWN_WEIGHTS["aasist"].bundled_sha256 in message and "damaged" in message
    with pytest.raises(WeightsError, match="damaged"):
        AASISTScorer.load("aasist")
    with pytest.raises(WeightsError, match="damaged"):
        AASISTScorer.load()  # the default weights go through the same check
    rows = {row["name"]: row for row in json.loads(CliRunner().invoke(main, ["weights", "list", "--json"]).stdout)}
    assert (rows["aasist"]["bundled"], rows["aasist"]["loads_from"]) == ("damaged", None)
    assert rows["aasist-l"]["bundled"] == "verified"
    # The ONNX graphs are checked on their own: the damaged safetensors file leaves aasist's graph usable.
    assert (rows["aasist"]["onnx"], rows["aasist-l"]["onnx"]) == ("verified", "verified")
    assert rows["aasist"]["onnx_path"] == str(damaged.with_suffix(".onnx"))


def test_weights_list_reports_a_damaged_onnx_graph(damage_bundled):
    damaged = damage_bundled("aasist-l.onnx")
    listing = CliRunner().invoke(main, ["weights", "list"])
    assert listing.exit_code == 0
    assert f"ONNX graph (damaged) {damaged}" in listing.output
    rows = {row["name"]: row for row in json.loads(CliRunner().invoke(main, ["weights", "list", "--json"]).stdout)}
    assert (rows["aasist-l"]["onnx"], rows["aasist-l"]["bundled"], rows["aasist"]["onnx"]) == (
        "damaged", "verified", "verified")


def test_cli_reports_a_damaged_bundled_file_as_a_data_error(damaged, tmp_path):
    clip = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(clip, np.zeros(1600), 16000)
    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", str(clip)])
    assert result.exit_code == 1
    assert f"{damaged}: SHA-256" in result.output and "Traceback" not in result.output


def test_registry_and_bundled_tensors_need_no_torch():
    code = ("import sys\nfrom rawnet.weights import KNOWN_WEIGHTS, read_bundled\n"
            "tensors, description = read_bundled('aasist-l')\n"
            "assert description['config'] == KNOWN_WEIGHTS['aasist-l'].config and len(tensors) > 100\n"
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT).returncode == 0


def test_names_and_the_environment_choose_the_weights(monkeypatch, tmp_path, reference_dir):
    monkeypatch.delenv(weights.AASIST_ENV, raising=False)
    assert AASISTScorer.load().info_["source"] == str(weights.PRETRAINED_DIR / "aasist.safetensors")
    scorer = AASISTScorer.load("aasist-l")
    assert (scorer.spec_.variant, scorer.spec_.config) == ("aasist-l", CONFIGS["AASIST-L"])
    assert AASISTScorer.load(variant="aasist-l").info_["source"] == scorer.info_["source"]

    monkeypatch.setenv(weights.AASIST_ENV, "aasist-asvspoof5")
    assert AASISTScorer.load().info_["source"] == str(weights.PRETRAINED_DIR / "aasist-asvspoof5.safetensors")
    monkeypatch.setenv(weights.AASIST_ENV, str(reference_dir / "aasist" / "AASIST-L.pth"))
    assert AASISTScorer.load().info_["source"] == str(reference_dir / "aasist" / "AASIST-L.pth")
    missing = tmp_path / "no-such.pth"
    monkeypatch.setenv(weights.AASIST_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match=f"ANTISPOOF_AASIST_WEIGHTS={missing}: .*not a weights name"):
        AASISTScorer.load()
    with pytest.raises(FileNotFoundError, match="known: aasist, aasist-l, aasist-asvspoof5"):
        AASISTScorer.load("aasist-xl")


def test_published_weights_are_recognised_by_content(reference_dir, tmp_path):
    # A loaded scorer says which published weights it holds and what they were trained on (the demo's report
    # quotes it); the official .pth and its bundled copy are the same weights, any other file is none of them.
    assert weights.identify(reference_dir / "aasist" / "AASIST.pth") == "aasist"
    for name in BUNDLED:
        assert weights.identify(bundled_file(name)) == name
    scorer = AASISTScorer.load("aasist-asvspoof5")
    assert scorer.training_summary_ == {"weights": "aasist-asvspoof5",
                                        "trained_on": KNOWN_WEIGHTS["aasist-asvspoof5"].trained_on,
                                        "source": KNOWN_WEIGHTS["aasist-asvspoof5"].source}
    assert "ASVspoof 5 train" in scorer.training_summary_["trained_on"]
    scorer.save(tmp_path / "model.pth")  # the same tensors in a model file: not a published file
    assert weights.identify(tmp_path / "model.pth") is None
    assert not hasattr(AASISTScorer.load(tmp_path / "model.pth"), "training_summary_")


def _official_logits(reference_dir, name) -> np.ndarray:
    outputs = json.loads((reference_dir / OFFICIAL[name][1]).read_text())[OFFICIAL[name][2]]
    return np.array([outputs[clip]["logits"] for clip in CLIPS])


@pytest.mark.slow  # four clips through each of the three networks
@pytest.mark.parametrize("name", BUNDLED)
def test_each_bundled_name_reproduces_the_official_outputs(name, reference_dir):
    scorer = AASISTScorer.load(name, device="cpu", batch_size=4, crop="official")
    from lfcc_gmm.audio import load_audio

    inputs = np.concatenate([scorer.model_inputs(load_audio(reference_dir / "lfcc" / "audio" / clip).signal)
                             for clip in CLIPS])
    np.testing.assert_allclose(scorer.outputs(inputs), _official_logits(reference_dir, name), rtol=0,
                               atol=LOGIT_TOLERANCE)


@pytest.mark.slow
def test_cli_scores_offline_with_an_empty_cache(reference_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path / "empty-home"))
    monkeypatch.delenv(weights.AASIST_ENV, raising=False)
    monkeypatch.setenv("ANTISPOOF_WEIGHTS_URL", "http://127.0.0.1:9/")  # a download, were one tried, fails

    def no_network(*args, **kwargs):
        raise OSError("this test has no network")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    clips = [reference_dir / "lfcc" / "audio" / clip for clip in ("LA_T_1272637.flac", "espeak_en.wav")]
    official = ["--crop", "official", "--format", "json"]
    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", *official, *map(str, clips)])
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    np.testing.assert_allclose([r["score"] for r in results], _official_logits(reference_dir, "aasist")[:2, 1],
                               rtol=0, atol=LOGIT_TOLERANCE)
    assert [r["verdict"] for r in results] == ["bona fide", "spoof"]
    assert {r["mode"] for r in results} == {"official crop"}

    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", "--weights", "aasist-asvspoof5", *official,
                                       str(clips[1])])
    assert result.exit_code == 0, result.output
    (espeak,) = json.loads(result.stdout)
    np.testing.assert_allclose(espeak["score"], _official_logits(reference_dir, "aasist-asvspoof5")[1, 1], rtol=0,
                               atol=LOGIT_TOLERANCE)
    # The ASVspoof 5 model calls the espeak clip bona fide (it generalises poorly outside its training data).
    assert espeak["verdict"] == "bona fide"
    assert not (tmp_path / "empty-home").exists()  # nothing was cached or downloaded


def test_cli_weights_option_takes_names_or_files_only(tmp_path):
    clip = tmp_path / "clip.wav"
    import soundfile as sf

    sf.write(clip, np.zeros(1600), 16000)
    result = CliRunner().invoke(main, ["score", "--scorer", "aasist", "--weights", "aasist-xl", str(clip)])
    assert result.exit_code == 2  # a usage error: neither a file nor a name
    assert "'aasist-xl' does not exist" in result.output
    assert "--model, --weights FILE|NAME" in CliRunner().invoke(main, ["score", "--help"]).output
