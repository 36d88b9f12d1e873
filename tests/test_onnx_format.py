"""The exported ONNX files' names and metadata, read without torch (rawnet.onnx_format)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rawnet.onnx_format import FORMAT, FORMAT_VERSION, METADATA_KEY, ONNXFormatError, decode_metadata, encode_metadata

METADATA = {"format": FORMAT, "format_version": FORMAT_VERSION, "architecture": "rawnet2", "variant": "asvspoof5",
            "nb_samp": 64000, "output_kind": "softmax", "bonafide_index": 1, "default_threshold": 0.5}


def test_metadata_round_trips_through_the_property_map():
    key, value = encode_metadata(METADATA)
    assert key == METADATA_KEY == "antispoof"
    assert json.loads(value) == METADATA  # plain JSON: readable with onnxruntime and json alone
    assert decode_metadata({"other": "x", key: value}) == METADATA


@pytest.mark.parametrize(("properties", "message"), [
    ({}, "model.onnx: not an antispoof export (no 'antispoof' metadata entry)"),
    ({METADATA_KEY: "{not json"}, "model.onnx: the 'antispoof' metadata is not valid JSON"),
    ({METADATA_KEY: "[1, 2]"}, "model.onnx: metadata format 'list', expected 'antispoof-onnx'"),
    ({METADATA_KEY: json.dumps({**METADATA, "format": "antispoof-rawnet2"})},
     "model.onnx: metadata format 'antispoof-rawnet2', expected 'antispoof-onnx'"),
    ({METADATA_KEY: json.dumps({**METADATA, "format_version": FORMAT_VERSION + 1})},
     f"model.onnx: format version {FORMAT_VERSION + 1}; this antispoof reads versions 1 to {FORMAT_VERSION}"),
    ({METADATA_KEY: json.dumps({k: v for k, v in METADATA.items() if k != "format_version"})},
     "model.onnx: format version None"),
])
def test_unusable_metadata_is_refused_naming_the_file(properties, message):
    with pytest.raises(ONNXFormatError) as caught:
        decode_metadata(properties, "model.onnx")
    assert str(caught.value).startswith(message)


def test_importable_without_torch():
    # The torch-free ONNX Runtime scorer reads these files with this module alone.
    code = "import sys, rawnet.onnx_format; sys.exit('torch' in sys.modules or 'onnx' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
