"""TorchScript export of a ``rawnet2`` or ``aasist`` scorer's network, for serving without this toolkit.

The network is traced (:func:`torch.jit.trace`), not scripted: ``torch.jit.script`` rejects both models in
torch 2.13 (RawNet2 looks its blocks up by name with ``getattr``, the sinc layer keeps a Python dict of cached filter
spectra, and AASIST's graph pooling uses Python-level shape arithmetic). The trace records the forward pass of a
(2, nb_samp) example: the batch size stays free, the input length is fixed to ``nb_samp`` (the sinc layer's FFT
plan and the pooling sizes depend on it). The traced module is built from a fresh CPU copy of the network, so the
filter spectra are computed inside the graph from the filters buffer (they follow ``.to(device)``), and it is
checked against the eager network, on a batch of another size, before it is written.

The archive maps float32 (batch, nb_samp) waveforms (16 kHz mono, repeat-padded or truncated as
:meth:`rawnet.scorers.RawWaveformScorer.model_inputs` does) to (batch, 2) outputs, index 1 bona fide. Its extra file
``antispoof.json`` records ``nb_samp``, the architecture, variant and config, the output kind and the threshold::

    extra = {"antispoof.json": ""}
    module = torch.jit.load("model.pt", _extra_files=extra)
    meta = json.loads(extra["antispoof.json"])
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lfcc_gmm import __version__
from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.audio import DEFAULT_SAMPLE_RATE
from rawnet.scorers import RawWaveformScorer

EXTRA_FILE = "antispoof.json"
FORMAT = "antispoof-torchscript"
#: Largest difference allowed between the traced and the eager network on the check input.
CHECK_TOLERANCE = 1e-5


def export_metadata(scorer: RawWaveformScorer) -> dict[str, Any]:
    """What the archive records about the network (JSON-compatible)."""
    spec = scorer.spec_
    return {
        "format": FORMAT,
        "format_version": 1,
        **{k: v for k, v in spec.to_dict().items() if k != "format"},
        "architecture": spec.architecture,
        "nb_samp": spec.nb_samp,
        "sample_rate": DEFAULT_SAMPLE_RATE,
        "input": "float32 (batch, nb_samp) waveform, repeat-padded or truncated to nb_samp",
        "output": scorer.output_kind,
        "bonafide_index": 1,
        "default_threshold": scorer.default_threshold,
        "epoch": scorer.info_.get("epoch"),
        "source": scorer.info_.get("source"),
        "torch_version": torch.__version__,
        "antispoof_version": __version__,
    }


def trace_network(scorer: RawWaveformScorer) -> torch.jit.ScriptModule:
    """The scorer's network traced on the CPU in eval mode, checked against the eager network.

    Raises
    ------
    RuntimeError
        when the traced module's outputs differ from the eager ones by more than :data:`CHECK_TOLERANCE`.
    """
    network = scorer.cpu_network()
    rng = np.random.default_rng(0)
    example = torch.from_numpy((0.1 * rng.standard_normal((2, scorer.nb_samp))).astype(np.float32))
    # A batch of another size than the example's shows the trace did not freeze the batch size.
    check = torch.from_numpy((0.1 * rng.standard_normal((1, scorer.nb_samp))).astype(np.float32))
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, and the shape checks in the models' forward become
        # constants of the trace; both are expected here, and the trace is verified numerically below instead.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # Traced with autograd on: AASIST's no-grad inference path loops over the batch items in Python, which a
        # trace would freeze to the example's batch size; its autograd path is the same function, batch-agnostic.
        traced = torch.jit.trace(network, example, check_trace=False)
        with torch.no_grad():
            expected, got = network(check), traced(check)
    difference = float((expected - got).abs().max()) if expected.shape == got.shape else float("inf")
    if not difference <= CHECK_TOLERANCE:
        raise RuntimeError(f"the traced {scorer.name} network differs from the eager one by {difference:g}")
    return traced


def export_torchscript(scorer: RawWaveformScorer, path: str | os.PathLike) -> dict[str, Any]:
    """Write the scorer's network as a TorchScript archive with its metadata, atomically; returns the metadata."""
    traced = trace_network(scorer)
    metadata = export_metadata(scorer)
    with atomic_write(path, "wb") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(traced, handle, _extra_files={EXTRA_FILE: json.dumps(metadata, indent=1)})
    return metadata


def load_exported(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[torch.jit.ScriptModule,
                                                                                     dict[str, Any]]:
    """Read an archive written by :func:`export_torchscript`: (module in eval mode, metadata).

    Raises
    ------
    ValueError
        when the file is not an antispoof TorchScript archive.
    """
    extra = {EXTRA_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(Path(path)), map_location=device, _extra_files=extra)
    except Exception as exc:
        raise ValueError(f"{path}: not a TorchScript archive ({exc})") from exc
    try:
        metadata = json.loads(extra[EXTRA_FILE])
    except json.JSONDecodeError:
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{path}: a TorchScript archive without antispoof metadata ({EXTRA_FILE})")
    return module.eval(), metadata
