"""The ONNX files ``antispoof export`` writes: their input and output names and their metadata, without torch.

:func:`rawnet.export.export_onnx` writes them; anything that only runs them (ONNX Runtime alone) reads them with
this module, which imports neither torch nor onnx. A file maps :data:`INPUT_NAME`, float32 (batch, nb_samp) 16 kHz
waveforms, repeat-padded or truncated to nb_samp, to :data:`OUTPUT_NAME`, float32 (batch, 2) with class
:data:`BONAFIDE_INDEX` bona fide: the score.

The metadata is one entry of the model's ``metadata_props``, key :data:`METADATA_KEY`, whose value is a JSON object
(ONNX Runtime shows it in ``InferenceSession(...).get_modelmeta().custom_metadata_map``):

======================  =====================================================================================
``format``              :data:`FORMAT`
``format_version``      :data:`FORMAT_VERSION`; a reader refuses a newer one
``architecture``        ``"rawnet2"`` or ``"aasist"``
``variant``, ``config`` as in a model file (:mod:`rawnet.checkpoint`); RawNet2 also ``sinc_scale``
``nb_samp``             the input length in samples; ``sample_rate`` 16000
``output_kind``         ``"logits"``, ``"log-softmax"`` or ``"softmax"``: what the outputs are
``bonafide_index``      :data:`BONAFIDE_INDEX`
``default_threshold``   the scorer's decision threshold on the score
``input``, ``output``   the same in words
``epoch``, ``source``   where the weights came from
``weights_fingerprint`` :func:`rawnet.checkpoint.state_fingerprint` of the weights: how a scorer knows the
                        official AASIST weights, whose measured threshold it then uses
``torch_version``       and ``antispoof_version`` of the export
``check``               ``max_abs_difference`` of ONNX Runtime against torch on ``audio`` at ``batch_sizes``,
                        within ``tolerance``
======================  =====================================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

FORMAT = "antispoof-onnx"
FORMAT_VERSION = 1
METADATA_KEY = "antispoof"
INPUT_NAME = "waveform"
OUTPUT_NAME = "output"
BONAFIDE_INDEX = 1


class ONNXFormatError(ValueError):
    """An ONNX file that is not an export of this toolkit, or of a newer format; the message names the file."""


def encode_metadata(metadata: Mapping[str, Any]) -> tuple[str, str]:
    """The ``metadata_props`` entry (key, value) that stores ``metadata`` (JSON-compatible) in an exported file."""
    return METADATA_KEY, json.dumps(dict(metadata))


def decode_metadata(properties: Mapping[str, str], source: str = "ONNX model") -> dict[str, Any]:
    """The metadata of an exported file from its metadata properties (``custom_metadata_map`` in ONNX Runtime).

    Raises
    ------
    ONNXFormatError
        naming ``source``: no antispoof metadata, invalid JSON, another format or a newer format version.
    """
    raw = properties.get(METADATA_KEY)
    if raw is None:
        raise ONNXFormatError(f"{source}: not an antispoof export (no {METADATA_KEY!r} metadata entry)")
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ONNXFormatError(f"{source}: the {METADATA_KEY!r} metadata is not valid JSON: {err.msg}") from err
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ONNXFormatError(f"{source}: metadata format {found!r}, expected {FORMAT!r}")
    version = metadata.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ONNXFormatError(f"{source}: format version {version!r}; this antispoof reads versions 1 to "
                              f"{FORMAT_VERSION} (a newer export needs a newer antispoof)")
    return metadata
