"""The torch-free ONNX Runtime scorers: no torch on their path, the official outputs, the torch scorers' results."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.analysis import analyse_files
from lfcc_gmm.audio import load_audio
from lfcc_gmm.scorers import ScorerOptionError, load_scorer
from rawnet import weights
from rawnet.checkpoint import state_fingerprint
from rawnet.export import export_onnx
from rawnet.onnx_format import ONNXFormatError
from rawnet.onnx_scorers import AASISTONNXScorer, RawNet2ONNXScorer, available_cores
from rawnet.precision import order_tolerance
from rawnet.scorers import AASISTScorer, RawNet2Scorer
from rawnet.tuning import fast_paths_off
from rawnet.weights import KNOWN_WEIGHTS, WeightsError, read_bundled
from tests.error_bounds import U64, gamma

REPO_ROOT = Path(__file__).resolve().parents[1]
GRAPHS = sorted(name for name, entry in KNOWN_WEIGHTS.items() if entry.bundled_onnx)
#: name → (official outputs file, its key), as in test_bundled_weights.py.
OFFICIAL = {
    "aasist": ("aasist/official_outputs.json", "AASIST.pth"),
    "aasist-l": ("aasist/official_outputs.json", "AASIST-L.pth"),
    "aasist-asvspoof5": ("asvspoof5/aasist/official_outputs.json", "AASIST-ASVspoof5.pth"),
}
CLIPS = ("LA_T_1272637.flac", "espeak_en.wav", "chirp_noise.wav", "short_1377.wav")
# Parity with the official logits, computed elsewhere by the official float32 code: the accuracy the README promises
# (issue 20), far above the float32 rounding of either evaluation (a few 1e-6 on logits of magnitude <= 50).
LOGIT_TOLERANCE = 1e-4
#: Demo clips (bona fide, spoof, ...), each one or two model windows long.
DEMO_CLIPS = ("DEMO_E_0001.flac", "DEMO_E_0002.flac", "DEMO_E_0101.flac")

# Run first in a subprocess: any import of torch, or of a torch submodule, fails and is recorded.
BLOCK_TORCH = """
import atexit, sys
tried = []
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "torch":
            tried.append(name)
            raise ImportError(f"torch is blocked in this test (import {name})")
        return None
sys.meta_path.insert(0, BlockTorch())
atexit.register(lambda: print("TORCH-IMPORTS", json.dumps(tried), "torch" in sys.modules, file=sys.stderr))
import json
"""


def _official_logits(reference_dir: Path, name: str) -> np.ndarray:
    relative, key = OFFICIAL[name]
    outputs = json.loads((reference_dir / relative).read_text())[key]
    return np.array([outputs[clip]["logits"] for clip in CLIPS])


def _torch_free(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``code`` with torch blocked from import; asserts that nothing tried to import it."""
    done = subprocess.run([sys.executable, "-c", BLOCK_TORCH + code, *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, "ANTISPOOF_DEBUG": "1"})
    assert "TORCH-IMPORTS [] False" in done.stderr, done.stderr
    return done


@pytest.mark.slow  # three subprocesses that load ONNX Runtime and score
def test_cli_and_api_score_with_torch_blocked_and_reproduce_the_official_logits(reference_dir, tmp_path):
    clips = [str(reference_dir / "lfcc" / "audio" / clip) for clip in CLIPS[:2]]
    cli = "from cli.main import main; main()"
    done = _torch_free(cli, "score", "--scorer", "aasist-onnx", "--crop", "official", "--format", "json", *clips)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    np.testing.assert_allclose([r["score"] for r in results], _official_logits(reference_dir, "aasist")[:2, 1],
                               rtol=0, atol=LOGIT_TOLERANCE)
    assert [r["verdict"] for r in results] == ["bona fide", "spoof"]
    assert [r["scorer"] for r in results] == ["aasist-onnx"] * 2
    assert {r["mode"] for r in results} == {"official crop"}

    done = _torch_free(cli, "score", "--scorer", "aasist-onnx", "--weights", "aasist-asvspoof5", "--crop", "official",
                       "--format", "json", "--threads", "1", clips[1])
    assert done.returncode == 0, done.stderr
    (espeak,) = json.loads(done.stdout)
    np.testing.assert_allclose(espeak["score"], _official_logits(reference_dir, "aasist-asvspoof5")[1, 1], rtol=0,
                               atol=LOGIT_TOLERANCE)

    api = ("from lfcc_gmm.analysis import analyse_files\nfrom lfcc_gmm.scorers import load_scorer\n"
           "scorer = load_scorer('aasist-onnx', batch_size=4)\n"
           "print(json.dumps([r.to_dict() for r in analyse_files(scorer, sys.argv[1:])]))")
    demo = [str(REPO_ROOT / "data" / "demo" / "flac" / name) for name in DEMO_CLIPS]
    done = _torch_free(api, *demo)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [r["mode"] for r in results] == ["whole file"] * 3 and all(r["segments"] for r in results)


#: Float32 ulps of 1.0 (2**-23 each) within which two node scores of a graph pooling count as tied.
TIE_ULPS = 16


def _pooling_gaps(network: torch.nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Per row, the smallest gap between the k-th kept and the best dropped node score of every graph pooling."""
    from rawnet.aasist import GraphPool

    gaps: list[np.ndarray] = []

    def record(module, inputs, output) -> None:
        scores = torch.sigmoid(module.proj(inputs[0]))[..., 0].sort(dim=1, descending=True).values
        keep = output.shape[1]
        if keep < scores.shape[1]:
            gaps.append((scores[:, keep - 1] - scores[:, keep]).numpy())

    hooks = [m.register_forward_hook(record) for m in network.modules() if isinstance(m, GraphPool)]
    try:
        with torch.inference_mode():
            network(batch)
    finally:
        for hook in hooks:
            hook.remove()
    return np.min(gaps, axis=0)


@pytest.mark.slow  # four clips through each of the three bundled graphs, and through torch
@pytest.mark.parametrize("name", GRAPHS)
def test_each_bundled_graph_reproduces_the_official_outputs(name, reference_dir):
    scorer = AASISTONNXScorer.load(name, crop="official", batch_size=3)
    inputs = np.concatenate([scorer.model_inputs(load_audio(reference_dir / "lfcc" / "audio" / clip).signal)
                             for clip in CLIPS])
    got = scorer.outputs(inputs)  # batch 3 then 1: both sizes of the dynamic axis
    # AASIST's graph pooling keeps the k best sigmoid scores of the nodes. Where the k-th and the next tie or nearly
    # tie (saturated sigmoids: the ASVspoof 5 model on the synthetic chirp), one rounding difference between
    # runtimes changes which nodes are kept, and the output jumps: no float32 bound holds there. Every other clip
    # must give the official outputs (which torch reproduces on all four).
    network = AASISTScorer.load(name, device="cpu").cpu_network()
    clear = _pooling_gaps(network, torch.from_numpy(inputs)) > TIE_ULPS * 2.0**-23
    assert clear[:2].all()  # the speech clips (bona fide, espeak TTS) are always compared
    np.testing.assert_allclose(got[clear], _official_logits(reference_dir, name)[clear], rtol=0,
                               atol=LOGIT_TOLERANCE)


def test_bundled_graphs_are_recorded_and_describe_their_weights():
    assert GRAPHS == ["aasist", "aasist-asvspoof5", "aasist-l"]
    for name in GRAPHS:
        entry = KNOWN_WEIGHTS[name]
        path = weights.PRETRAINED_DIR / entry.bundled_onnx
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.bundled_onnx_sha256
        scorer = AASISTONNXScorer.load(name)
        meta = scorer.metadata_
        assert (meta["architecture"], meta["config"], meta["nb_samp"]) == ("aasist", entry.config, 64600)
        assert meta["source"] == f"{name} (bundled {entry.bundled})"
        # The graph holds the bundled safetensors' weights: checked against torch when it was built.
        tensors, _ = read_bundled(name)
        assert meta["weights_fingerprint"] == state_fingerprint({k: torch.from_numpy(v) for k, v in tensors.items()})
        assert meta["check"]["max_abs_difference"] <= meta["check"]["tolerance"]
        assert scorer.training_summary_ == {"weights": name, "trained_on": entry.trained_on, "source": entry.source}


def test_a_damaged_bundled_graph_is_refused(damage_bundled, monkeypatch):
    damage_bundled("aasist.onnx")
    monkeypatch.delenv(weights.AASIST_ENV, raising=False)
    with pytest.raises(WeightsError, match=r"aasist\.onnx: SHA-256 [0-9a-f]{64} is not the bundled .* damaged"):
        AASISTONNXScorer.load()


def _test_files(folder: Path) -> list[Path]:
    """Two demo clips, and a 12 s file of several windows: three demo clips between stretches of near-silence."""
    import soundfile as sf

    demo = [REPO_ROOT / "data" / "demo" / "flac" / name for name in DEMO_CLIPS]
    quiet = np.random.default_rng(1).standard_normal(16000) * 1e-4
    parts = [piece for path in demo for piece in (quiet, load_audio(path).signal)]
    sf.write(folder / "long.wav", np.concatenate(parts), 16000, subtype="FLOAT")
    return [*demo[:2], folder / "long.wav"]


def _whole_file_bound(torch_scorer, paths) -> float:
    """How far a whole-file or segment score of the two runtimes may differ.

    Each window score is one output of the same network evaluated by two runtimes: within
    :func:`rawnet.precision.order_tolerance` of the network on those windows. A file or segment score aggregates
    window scores with a rule that moves by at most the largest change of its inputs (a mean, a weighted mean with
    non-negative weights, a quantile, a minimum), computed in float64 in the same order from both: plus twice the
    float64 rounding of a sum of n terms of at most that magnitude.
    """
    windows = np.concatenate([torch_scorer.model_inputs(load_audio(p).signal) for p in paths])
    tolerance = order_tolerance(torch_scorer.cpu_network(), torch.from_numpy(windows))
    with torch.inference_mode():
        largest = float(torch_scorer.cpu_network()(torch.from_numpy(windows))[:, 1].abs().max())
    return tolerance + 2 * gamma(len(windows), U64) * len(windows) * largest


@pytest.mark.slow  # the demo clips through AASIST in torch (float32 and float64) and in ONNX Runtime
def test_whole_file_results_equal_the_torch_scorers(tmp_path):
    paths = _test_files(tmp_path)
    onnx_scorer = load_scorer("aasist-onnx", batch_size=4)
    torch_scorer = load_scorer("aasist", device="cpu", batch_size=4)
    bound = _whole_file_bound(torch_scorer, paths)
    got = [r.to_dict() for r in analyse_files(onnx_scorer, paths)]
    with fast_paths_off():  # torch alone: the aasist scorer may otherwise run some batches on ONNX Runtime
        expected = [r.to_dict() for r in analyse_files(torch_scorer, paths)]
    assert onnx_scorer.threshold() == torch_scorer.threshold()  # the official weights' measured threshold
    for a, b in zip(got, expected, strict=True):
        assert a.pop("scorer") == "aasist-onnx" and b.pop("scorer") == "aasist"
        assert abs(a.pop("score") - b.pop("score")) <= bound
        seg_a, seg_b = a.pop("segments"), b.pop("segments")
        assert len(seg_a) == len(seg_b) > 0
        assert len(seg_a) >= 5 or a["duration_s"] < 5
        for x, y in zip(seg_a, seg_b, strict=True):
            assert (x["start_s"], x["end_s"]) == (y["start_s"], y["end_s"])
            assert abs(x["score"] - y["score"]) <= bound
        assert a == b  # verdict, threshold, mode, duration, speech, warnings


@pytest.mark.slow  # a small RawNet2 exported, then scored by both runtimes
def test_rawnet2_onnx_scores_as_the_torch_scorer(reference_dir, tmp_path):
    folder = reference_dir / "rawnet2" / "asvspoof5"
    official = json.loads((folder / "official_outputs.json").read_text())
    config = tmp_path / "asvspoof5_small.json"
    config.write_text(json.dumps({**official["config"], "nb_samp": 64000}))
    torch_scorer = RawNet2Scorer.load(folder / "rawnet2_asvspoof5_small.pth", config=config, variant="asvspoof5",
                                      device="cpu", batch_size=4)
    paths = _test_files(tmp_path)
    export_onnx(torch_scorer, tmp_path / "rawnet2.onnx", paths[:2])
    onnx_scorer = load_scorer("rawnet2-onnx", tmp_path / "rawnet2.onnx", batch_size=4)
    assert (onnx_scorer.nb_samp, onnx_scorer.output_kind) == (64000, "softmax")
    assert onnx_scorer.threshold() == torch_scorer.threshold()
    assert onnx_scorer.threshold().value == 0.5 and "posterior" in onnx_scorer.threshold().meaning
    bound = _whole_file_bound(torch_scorer, paths)
    np.testing.assert_allclose(onnx_scorer.score_files(paths), torch_scorer.score_files(paths), rtol=0, atol=bound)


def test_threads_set_the_session_and_saving_keeps_the_graph(tmp_path):
    default = AASISTONNXScorer.load("aasist-l")
    assert default.session_.get_session_options().intra_op_num_threads == available_cores()
    one = AASISTONNXScorer.load("aasist-l", threads=1, batch_size=2)
    assert one.session_.get_session_options().intra_op_num_threads == 1
    one.save(tmp_path / "copy.onnx")
    assert (tmp_path / "copy.onnx").read_bytes() == (weights.PRETRAINED_DIR / "aasist-l.onnx").read_bytes()
    again = AASISTONNXScorer.load(tmp_path / "copy.onnx", threads=1, batch_size=2)
    assert again.training_summary_["weights"] == "aasist-l"  # told by its SHA-256 wherever it lies
    rows = np.random.default_rng(0).standard_normal((3, 64600)).astype(np.float32) * 0.1
    # The same graph, session settings and batches: the same computation, to the bit.
    np.testing.assert_array_equal(again.outputs(rows), one.outputs(rows))


def test_wrong_files_and_missing_models_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(ScorerOptionError, match="rawnet2-onnx scorer needs an ONNX model file"):
        load_scorer("rawnet2-onnx")
    with pytest.raises(ONNXFormatError, match=r"aasist\.onnx: an export of 'aasist'; score it with --scorer aasist-"):
        RawNet2ONNXScorer.load(weights.PRETRAINED_DIR / "aasist.onnx")
    with pytest.raises(ONNXFormatError, match=r"aasist\.safetensors: not an ONNX model ONNX Runtime can load"):
        AASISTONNXScorer.load(weights.PRETRAINED_DIR / "aasist.safetensors")
    monkeypatch.setenv(weights.AASIST_ENV, "aasist-l")
    assert AASISTONNXScorer.load().training_summary_["weights"] == "aasist-l"
    monkeypatch.setenv(weights.AASIST_ENV, str(tmp_path / "missing.onnx"))
    with pytest.raises(FileNotFoundError, match="AASIST_WEIGHTS=.*missing.onnx: no such ONNX file, and not a"):
        AASISTONNXScorer.load()

    runner = CliRunner()
    clip = str(REPO_ROOT / "data" / "demo" / "flac" / DEMO_CLIPS[0])
    result = runner.invoke(main, ["score", "--scorer", "rawnet2-onnx", clip])
    assert result.exit_code == 2 and "needs an ONNX model file" in result.output
    result = runner.invoke(main, ["score", "--scorer", "aasist-onnx", "--model",
                                  str(weights.PRETRAINED_DIR / "aasist.safetensors"), clip])
    assert result.exit_code == 1 and "aasist.safetensors: not an ONNX model" in result.output
    result = runner.invoke(main, ["score", "--scorer", "aasist-onnx", "--device", "cpu", clip])
    assert result.exit_code == 2 and "does not take --device" in result.output


def test_scorers_lists_both():
    result = CliRunner().invoke(main, ["scorers", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["aasist-onnx"]["available"] and rows["rawnet2-onnx"]["available"]
    assert "without torch" in rows["aasist-onnx"]["description"]


def test_readme_onnx_snippet_runs_as_written(monkeypatch, capsys):
    from tests.test_readme import python_blocks, run_blocks

    (block,) = [b for b in python_blocks() if 'load_scorer("aasist-onnx"' in b]
    clip = REPO_ROOT / "data" / "demo" / "flac" / DEMO_CLIPS[0]
    namespace = run_blocks([block.replace('"clip.wav"', repr(str(clip)))], monkeypatch)
    assert namespace["scorer"].training_summary_["weights"] == "aasist-l"
    assert namespace["scorer"].session_.get_session_options().intra_op_num_threads == 2
    assert "'verdict': " in capsys.readouterr().out
