"""ONNX export of a ``rawnet2`` or ``aasist`` scorer's network, for scoring without torch (ONNX Runtime).

The graph maps float32 waveforms ``waveform`` (batch, nb_samp), 16 kHz mono, repeat-padded or truncated as
:meth:`rawnet.scorers.RawWaveformScorer.model_inputs` does, to ``output`` (batch, 2), class 1 bona fide: the
scorer's outputs, so for RawNet2 ``asvspoof5`` the softmax (its official score). The batch axis is dynamic; the
input length is fixed at nb_samp, which the sinc layer and the pooling sizes depend on.

The graph comes from torch's ``torch.export``-based ONNX exporter, which sees the models' plain operations (the
measured CPU fast paths, FFT convolution and custom GRU among them, are never traced: :mod:`rawnet.tuning`). Before
it is written it is checked: ONNX Runtime runs it on real audio at batch 1 and at the batch of all check clips, and
its largest difference to the torch network, as the scorer runs it, must stay within
:func:`rawnet.precision.order_tolerance`.
TorchScript, the earlier export, is gone: ``torch.jit.trace`` is deprecated in torch 2.13.

The names, and the metadata stored in the file (nb_samp, the architecture, variant and config, what the outputs
are, the default threshold and the export check), are those of :mod:`rawnet.onnx_format`, which reads them without
torch. With onnxruntime alone::

    import json, onnxruntime
    session = onnxruntime.InferenceSession("model.onnx")
    meta = json.loads(session.get_modelmeta().custom_metadata_map["antispoof"])
    scores = session.run(None, {"waveform": batch})[0][:, 1]

(:func:`rawnet.onnx_format.decode_metadata` also checks the format and its version.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lfcc_gmm import __version__
from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE, load_audio
from rawnet.onnx_format import BONAFIDE_INDEX, FORMAT, FORMAT_VERSION, INPUT_NAME, OUTPUT_NAME, encode_metadata
from rawnet.precision import order_tolerance
from rawnet.scorers import RawWaveformScorer


class ExportCheckError(ValueError):
    """The exported graph's outputs differ from the torch network's beyond the float32 bound."""


def export_metadata(scorer: RawWaveformScorer) -> dict[str, Any]:
    """What the exported file records about the network (JSON-compatible)."""
    spec = scorer.spec_
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **{k: v for k, v in spec.to_dict().items() if k != "format"},
        "architecture": spec.architecture,
        "nb_samp": spec.nb_samp,
        "sample_rate": DEFAULT_SAMPLE_RATE,
        "input": f"{INPUT_NAME}: float32 (batch, nb_samp) waveform, repeat-padded or truncated to nb_samp",
        "output": f"{OUTPUT_NAME}: float32 (batch, 2), class {BONAFIDE_INDEX} bona fide",
        "output_kind": scorer.output_kind,
        "bonafide_index": BONAFIDE_INDEX,
        "default_threshold": scorer.default_threshold,
        "epoch": scorer.info_.get("epoch"),
        "source": scorer.info_.get("source"),
        "weights_fingerprint": scorer.info_.get("fingerprint"),
        "torch_version": torch.__version__,
        "antispoof_version": __version__,
    }


def check_inputs(scorer: RawWaveformScorer, audio: Sequence[str | os.PathLike]) -> np.ndarray:
    """The float32 model inputs (one row per file, as the scorer pads or truncates) of the check clips."""
    if not audio:
        raise ValueError("the export check needs at least one audio file")
    return np.concatenate([scorer.model_inputs(load_audio(path).signal)[:1] for path in audio])


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence what torch's exporter reports about its own internals (nothing about the exported model)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping torchvision::nms"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*_check_is_size will be removed", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)", category=FutureWarning)
            # nn.GRU re-creates its list of flat weights during tracing; the weights exported are its parameters.
            # (RawNet2 asvspoof5 is exported inside its scoring network, where the GRU is self.0.gru.)
            warnings.filterwarnings("ignore", message=r"The tensor attributes self\.(0\.)?gru\._flat_weights")
            yield
    finally:
        logger.setLevel(level)


def onnx_program(network: nn.Module, example: torch.Tensor) -> Any:
    """``network`` exported by torch's ONNX exporter with a dynamic batch axis (an ``onnx.ModelProto``).

    ``example`` must have at least 2 rows: an example batch of 1 would fix the batch size.
    """
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            network,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    if program is None:  # only the legacy exporter (dynamo=False) returns nothing
        raise RuntimeError("torch.onnx.export returned no program")
    return program.model_proto


def onnx_session(model: Any) -> Any:
    """An ONNX Runtime CPU session (``onnxruntime.InferenceSession``) for an ``onnx.ModelProto``."""
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def export_onnx(
    scorer: RawWaveformScorer, path: str | os.PathLike, check_audio: Sequence[str | os.PathLike]
) -> dict[str, Any]:
    """Write the scorer's network as an ONNX model with its metadata, checked first; returns the metadata.

    Parameters
    ----------
    scorer : a fitted ``rawnet2`` or ``aasist`` scorer.
    path : the ``.onnx`` file to write (atomically: nothing is left on failure).
    check_audio : audio files the check runs on (their first window each); two or more also check a batch.

    Returns
    -------
    dict
        the metadata written; its ``check`` holds ``max_abs_difference`` (ONNX Runtime vs torch), the
        ``tolerance`` it had to meet, the files and the batch sizes.

    Raises
    ------
    ExportCheckError
        when ONNX Runtime's outputs differ from torch's by more than the tolerance (nothing is written).
    """
    network = scorer.cpu_network()
    inputs = check_inputs(scorer, check_audio)
    batch = torch.from_numpy(inputs)
    with torch.inference_mode():
        expected = network(batch).numpy()
    tolerance = order_tolerance(network, batch)
    model = onnx_program(network, batch if len(batch) > 1 else batch.repeat(2, 1))
    session = onnx_session(model)
    got = {n: session.run(None, {INPUT_NAME: inputs[:n]})[0] for n in (1, len(inputs))}
    difference = max(float(np.abs(out - expected[: len(out)]).max()) for out in got.values())
    if not difference <= tolerance:
        raise ExportCheckError(
            f"{path}: the ONNX graph's outputs differ from the torch network's by {difference:.3g}, more than the "
            f"float32 bound {tolerance:.3g}; nothing was written"
        )
    metadata = export_metadata(scorer)
    metadata["check"] = {
        "max_abs_difference": difference,
        "tolerance": tolerance,
        "audio": [str(Path(p)) for p in check_audio],
        "batch_sizes": sorted(got),
    }
    entry = model.metadata_props.add()
    entry.key, entry.value = encode_metadata(metadata)
    with atomic_write(path, "wb") as handle:
        handle.write(model.SerializeToString())
    return metadata
