"""ONNX export: ONNX Runtime reproduces the scorer's network at any batch size; the export blockers stay fixed."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from click.testing import CliRunner

from cli.deep import export_command
from cli.main import AntispoofGroup
from lfcc_gmm.audio import load_audio
from rawnet.aasist import AASIST, CONFIGS
from rawnet.export import ExportCheckError, export_onnx
from rawnet.onnx_format import INPUT_NAME, METADATA_KEY, decode_metadata
from rawnet.precision import order_tolerance
from rawnet.rawnet2 import RawNet2
from rawnet.scorers import AASISTScorer, RawNet2Scorer

# Same structure as the official AASIST config, a fraction of its channels: cheap to export and run.
SMALL_AASIST = {**CONFIGS["AASIST"], "filts": [20, [1, 4], [4, 4], [4, 8], [8, 8]], "gat_dims": [8, 4]}
# A RawNet2 with the official 1,025-tap sinc layer (the FFT path in torch) and a 2-layer GRU, on 0.5 s inputs.
SMALL_RAWNET2 = {"nb_samp": 8000, "first_conv": 1024, "in_channels": 1, "filts": [8, [8, 8], [8, 12], [12, 12]],
                 "blocks": [2, 4], "nb_fc_node": 8, "gru_node": 8, "nb_gru_layer": 2, "nb_classes": 2}
CLIPS = ("LA_T_1272637.flac", "espeak_en.wav", "chirp_noise.wav", "short_1377.wav", "silence_burst.wav")


@pytest.fixture(scope="module")
def audio_dir(reference_dir):
    return reference_dir / "lfcc" / "audio"


def model_inputs(scorer, audio_dir) -> np.ndarray:
    """One padded or truncated row per reference clip: 5 rows."""
    return np.concatenate([scorer.model_inputs(load_audio(audio_dir / name).signal) for name in CLIPS])


def onnx_outputs(path, inputs: np.ndarray) -> tuple[dict, dict[int, np.ndarray]]:
    """(metadata, outputs at batch 1 and at batch len(inputs)) with onnxruntime alone, as the docstring shows."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert decode_metadata(session.get_modelmeta().custom_metadata_map, str(path)) == meta
    batch_1 = np.concatenate([session.run(None, {INPUT_NAME: row[None]})[0] for row in inputs])
    return meta, {1: batch_1, len(inputs): session.run(None, {INPUT_NAME: inputs})[0]}


def run_export(*args):
    return CliRunner().invoke(AntispoofGroup("antispoof", commands=[export_command]), ["export", *map(str, args)])


def test_rawnet2_asvspoof5_export_reproduces_the_softmax_scores(reference_dir, audio_dir, tmp_path):
    folder = reference_dir / "rawnet2" / "asvspoof5"
    official = json.loads((folder / "official_outputs.json").read_text())
    config = tmp_path / "asvspoof5_small.json"
    config.write_text(json.dumps({**official["config"], "nb_samp": 64000}))
    result = run_export("--scorer", "rawnet2", "--model", folder / "rawnet2_asvspoof5_small.pth", "--config", config,
                        "--variant", "asvspoof5", "--format", "onnx", "-o", tmp_path / "rawnet2.onnx")
    assert result.exit_code == 0, result.output
    assert "rawnet2 asvspoof5, input (batch, 64000), output softmax (index 1 = bona fide)" in result.output
    # Checked on the default clips, two of the demo corpus.
    assert "ONNX Runtime vs torch on 2 clip(s), batch 1 and 2: max difference" in result.output

    scorer = RawNet2Scorer.load(folder / "rawnet2_asvspoof5_small.pth", config=config, variant="asvspoof5",
                                device="cpu", batch_size=5)
    inputs = model_inputs(scorer, audio_dir)
    meta, outputs = onnx_outputs(tmp_path / "rawnet2.onnx", inputs)
    assert (meta["format"], meta["architecture"], meta["variant"], meta["nb_samp"], meta["output_kind"]) == (
        "antispoof-onnx", "rawnet2", "asvspoof5", 64000, "softmax")
    assert meta["default_threshold"] == 0.5 and meta["bonafide_index"] == 1
    assert meta["check"]["max_abs_difference"] <= meta["check"]["tolerance"]
    # ONNX Runtime's kernels and the scorer's measured path: the same function summed in another order. So are the
    # official code's float32 operations (the same filters, the same layers): its probabilities of this random
    # model differ between clips by less than the accuracy the README promises, which would tell nothing here.
    tolerance = order_tolerance(scorer.cpu_network(), torch.from_numpy(inputs))
    for out in outputs.values():
        np.testing.assert_allclose(out, scorer.outputs(inputs), rtol=0, atol=tolerance)
        np.testing.assert_allclose(out[:4, 1], [official["outputs"][name]["score"] for name in CLIPS[:4]],
                                   rtol=0, atol=tolerance)


def test_aasist_export_has_a_dynamic_batch_axis(audio_dir, tmp_path):
    torch.manual_seed(0)
    torch.save(AASIST(SMALL_AASIST).state_dict(), tmp_path / "small.pth")
    scorer = AASISTScorer.load(tmp_path / "small.pth", config=SMALL_AASIST, device="cpu", batch_size=5)
    check = [audio_dir / CLIPS[1]]  # one clip: exported from a batch of 2, checked at batch 1
    meta = export_onnx(scorer, tmp_path / "aasist.onnx", check)
    assert meta["check"]["batch_sizes"] == [1] and meta["check"]["audio"] == [str(check[0])]
    graph_input = onnx.load(tmp_path / "aasist.onnx").graph.input[0]
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["batch", 64600]
    inputs = model_inputs(scorer, audio_dir)
    loaded_meta, outputs = onnx_outputs(tmp_path / "aasist.onnx", inputs)
    assert loaded_meta == meta
    assert (meta["architecture"], meta["config"], meta["output_kind"], meta["nb_samp"]) == (
        "aasist", SMALL_AASIST, "logits", 64600)
    # ONNX Runtime's kernels against the scorer's measured path: the same function summed in another order.
    tolerance = order_tolerance(scorer.cpu_network(), torch.from_numpy(inputs))
    for out in outputs.values():
        np.testing.assert_allclose(out, scorer.outputs(inputs), rtol=0, atol=tolerance)


def _first_two_samples(network, example) -> onnx.ModelProto:
    """A graph with the exported one's input and output, but wrong: it returns the first two samples."""
    constants = [onnx.numpy_helper.from_array(np.array([v]), name) for name, v in (("s", 0), ("e", 2), ("a", 1))]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Slice", [INPUT_NAME, "s", "e", "a"], ["output"])], "wrong",
        [onnx.helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, ["batch", example.shape[1]])],
        [onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, ["batch", 2])], constants)
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8)


def test_a_failed_check_writes_nothing(audio_dir, tmp_path, monkeypatch):
    torch.manual_seed(0)
    torch.save(AASIST(SMALL_AASIST).state_dict(), tmp_path / "small.pth")
    scorer = AASISTScorer.load(tmp_path / "small.pth", config=SMALL_AASIST, device="cpu")
    monkeypatch.setattr("rawnet.export.onnx_program", _first_two_samples)
    with pytest.raises(ExportCheckError, match=r"aasist\.onnx: the ONNX graph's outputs differ .* nothing was written"):
        export_onnx(scorer, tmp_path / "aasist.onnx", [audio_dir / CLIPS[0]])
    assert not (tmp_path / "aasist.onnx").exists()


def test_cli_errors(reference_dir, tmp_path, monkeypatch):
    weights = reference_dir / "rawnet2" / "rawnet2_asvspoof2021_small.pth"
    clip = reference_dir / "lfcc" / "audio" / CLIPS[0]
    result = run_export("--scorer", "rawnet2", "--model", weights, "-o", tmp_path / "x.onnx", "--check-audio", clip)
    assert result.exit_code == 1 and "give the config and the variant" in result.output
    monkeypatch.setattr("cli.deep.DEMO_CORPUS", tmp_path / "nowhere")
    result = run_export("--scorer", "rawnet2", "--model", weights, "-o", tmp_path / "x.onnx")
    assert result.exit_code == 2 and "give --check-audio FILE" in result.output
    result = run_export("--scorer", "rawnet2", "--model", weights, "--format", "torchscript", "-o", tmp_path / "x.pt")
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ export blockers of issue 22, one test each

def _legacy_export(model: torch.nn.Module, example: torch.Tensor, path) -> None:
    """torch's TorchScript-based ONNX exporter (deprecated, still what many users call), batch axis dynamic."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        torch.onnx.export(model, (example,), str(path), input_names=["x"], output_names=["y"], dynamo=False,
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})


def _assert_runs_like_torch(path, model: torch.nn.Module, length: int) -> None:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        x = 0.1 * torch.randn(batch, length, generator=torch.Generator().manual_seed(batch))
        with torch.inference_mode():
            expected = model(x)
        got = session.run(None, {"x": x.numpy()})[0]
        np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=order_tolerance(model, x))


def test_aasist_under_no_grad_exports_with_the_legacy_exporter(tmp_path):
    # Was: "type Tensor doesn't define __round__" from the segment arithmetic of the CPU inference path.
    torch.manual_seed(0)
    model = AASIST(SMALL_AASIST).eval()
    with torch.no_grad():
        _legacy_export(model, torch.randn(2, 64600), tmp_path / "aasist.onnx")
    _assert_runs_like_torch(tmp_path / "aasist.onnx", model, 64600)


def test_rawnet2_with_the_fft_sinc_layer_exports(tmp_path):
    # Was: complex tensors ("ComplexFloat is an unexpected tensor scalar type"); with torch's default exporter
    # "Cannot access data pointer" at the filter-spectra cache and at the packed GRU weights, which
    # test_rawnet2_asvspoof5_export_reproduces_the_softmax_scores exports (1,025 taps, FFT in torch).
    torch.manual_seed(0)
    model = RawNet2(SMALL_RAWNET2, sinc_method="fft").eval()
    path = tmp_path / "rawnet2.onnx"
    with torch.no_grad():
        _legacy_export(model, torch.randn(2, 8000), path)
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "Conv" in ops and "GRU" in ops and not ops & {"DFT", "STFT"}
    _assert_runs_like_torch(path, model, 8000)


@pytest.mark.slow  # the official AASIST exported and checked, a minute on 2 cores
def test_official_aasist_export_reproduces_the_official_logits(reference_dir, audio_dir, tmp_path):
    result = run_export("--scorer", "aasist", "--weights", reference_dir / "aasist" / "AASIST.pth",
                        "-o", tmp_path / "aasist.onnx", "--check-audio", audio_dir / CLIPS[0])
    assert result.exit_code == 0, result.output
    scorer = AASISTScorer.load(reference_dir / "aasist" / "AASIST.pth", device="cpu")
    inputs = model_inputs(scorer, audio_dir)
    meta, outputs = onnx_outputs(tmp_path / "aasist.onnx", inputs)
    assert (meta["variant"], meta["config"]) == ("aasist", CONFIGS["AASIST"])
    # ONNX Runtime against the scorer: another order of the same function ...
    tolerance = order_tolerance(scorer.cpu_network(), torch.from_numpy(inputs))
    official = json.loads((reference_dir / "aasist" / "official_outputs.json").read_text())["AASIST.pth"]
    for out in outputs.values():
        np.testing.assert_allclose(out, scorer.outputs(inputs), rtol=0, atol=tolerance)
        # ... and parity with the official logits (computed elsewhere): the accuracy the README promises.
        np.testing.assert_allclose(out[:4], [official[name]["logits"] for name in CLIPS[:4]], rtol=0, atol=1e-4)
