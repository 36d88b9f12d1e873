"""Build the weights bundled in ``rawnet/pretrained/`` from the official files, and their ONNX graphs.

Reads the official ``.pth`` state_dicts (clovaai/aasist ``AASIST.pth`` and ``AASIST-L.pth``; the ASVspoof 5
organisers' ``Baseline-AASIST/models/weights/AASIST/best.pth``), checks each against the SHA-256 recorded in
:data:`rawnet.weights.KNOWN_WEIGHTS`, and writes every tensor unchanged (same names, dtypes, shapes and bits)
into a safetensors file whose header also holds a JSON description (source URL and SHA-256, licence, training
data, model config). The licence texts that must travel with the weights are copied beside them unchanged.

Each safetensors file written is then exported to ONNX (``NAME.onnx``, what the torch-free ``aasist-onnx`` scorer
runs) by :func:`rawnet.export.export_onnx`, which checks ONNX Runtime against the torch model on two demo clips at
batch 1 and 2 before writing (the largest difference and its float32 bound are printed and stored in the graph's
metadata with the weights' fingerprint).

Run from the repository root::

    .venv/bin/python data/bundle_weights.py                       # reference files in ../shared/reference
    .venv/bin/python data/bundle_weights.py --reference DIR --out /tmp/check
    .venv/bin/python data/bundle_weights.py --no-onnx             # the safetensors files only (seconds)

The safetensors files are deterministic (a rerun writes identical bytes; a test rebuilds them). The ONNX graphs'
bytes also hold the torch and antispoof versions and the check's measured difference, which depend on the
installation and the CPU: a rebuild elsewhere may differ in those bytes (a byte-for-byte rerun of the graphs has not
been tested; the tests check what they compute instead). The script prints each file's SHA-256 and
exits 1 if one differs from the registry, which then needs updating (a new official file, a new safetensors
layout, a new exporter).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cli.deep import EXPORT_CHECK_CLIPS  # noqa: E402
from lfcc_gmm.atomic import atomic_write  # noqa: E402
from rawnet.checkpoint import read_torch_file  # noqa: E402
from rawnet.weights import KNOWN_WEIGHTS, METADATA_KEY, PRETRAINED_DIR, file_sha256  # noqa: E402

#: The clips each ONNX graph is checked on against torch (those of `antispoof export`: a bona fide and a spoof of
#: the demo corpus), relative to the repository root, as the graph's metadata records them.
ONNX_CHECK_AUDIO = tuple(f"data/demo/flac/{name}" for name in EXPORT_CHECK_CLIPS)

#: Official file of each bundled name, relative to the reference folder.
SOURCES = {
    "aasist": "aasist/AASIST.pth",
    "aasist-l": "aasist/AASIST-L.pth",
    "aasist-asvspoof5": "asvspoof5/aasist/AASIST-ASVspoof5.pth",
}
#: Licence texts shipped beside the weights ← where they come from (clovaai/aasist's LICENSE; the ASVspoof 5
#: Baseline-AASIST LICENSE and NOTICE), relative to the reference folder.
LICENCES = {
    "LICENSE-AASIST.txt": "aasist/LICENSE.AASIST-weights.txt",
    "LICENSE-AASIST-ASVspoof5.txt": "asvspoof5/aasist/LICENSE",
    "NOTICE-AASIST-ASVspoof5.txt": "asvspoof5/aasist/NOTICE",
}


def description(name: str) -> dict:
    """The JSON description stored in the safetensors header of ``name``."""
    entry = KNOWN_WEIGHTS[name]
    return {
        "format": "antispoof-weights/1",
        "name": name,
        "architecture": entry.architecture,
        "config": dict(entry.config),
        "source": entry.source,
        "source_file": entry.filename,
        "source_url": entry.url,
        "source_sha256": entry.sha256,
        "licence": entry.licence,
        "licence_files": list(entry.licence_files),
        "trained_on": entry.trained_on,
    }


def convert(name: str, source: Path) -> bytes:
    """The safetensors bytes of the official state_dict ``source`` (its SHA-256 checked first)."""
    from safetensors.numpy import save

    expected = KNOWN_WEIGHTS[name].sha256
    got = file_sha256(source)
    if got != expected:
        raise SystemExit(f"{source}: SHA-256 {got} is not the official {expected}")
    state = read_torch_file(source)
    # .contiguous() rather than np.ascontiguousarray, which would turn the 0-d num_batches_tracked into 1-d
    tensors = {key: value.detach().contiguous().numpy() for key, value in state.items()}
    # One header entry holding canonical JSON: safetensors writes several entries in a random order.
    text = json.dumps(description(name), sort_keys=True, separators=(",", ":"))
    return save(tensors, metadata={METADATA_KEY: text})


def export_graph(name: str, weights: Path, target: Path) -> dict:
    """Export the bundled weights ``name`` (the safetensors file ``weights``) to the ONNX graph ``target``, checked
    against torch first; returns the metadata written."""
    from rawnet.export import export_onnx
    from rawnet.scorers import AASISTScorer

    scorer = AASISTScorer.load(weights, device="cpu")
    # Recorded in the graph: the name, not this machine's path, so that the bytes do not depend on where it ran.
    scorer.info_["source"] = f"{name} (bundled {KNOWN_WEIGHTS[name].bundled})"
    previous = Path.cwd()
    os.chdir(REPO_ROOT)  # the check clips are recorded as given, relative to the repository
    try:
        return export_onnx(scorer, target, ONNX_CHECK_AUDIO)
    finally:
        os.chdir(previous)


def build(reference: Path, out: Path, onnx: bool = True) -> dict[str, str]:
    """Write every bundled file into ``out`` (with ``onnx``, the ONNX graphs too); returns {file name: SHA-256}."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, relative in SOURCES.items():
        data = convert(name, reference / relative)
        target = out / KNOWN_WEIGHTS[name].bundled
        with atomic_write(target, "wb") as handle:
            handle.write(data)
        written[target.name] = file_sha256(target)
        if onnx:
            graph = out / KNOWN_WEIGHTS[name].bundled_onnx
            check = export_graph(name, target, graph)["check"]
            print(f"{graph.name}: ONNX Runtime vs torch, max difference {check['max_abs_difference']:.2e} "
                  f"(float32 bound {check['tolerance']:.2e})", file=sys.stderr)
            written[graph.name] = file_sha256(graph)
    for filename, relative in LICENCES.items():
        with atomic_write(out / filename, "wb") as handle:
            handle.write((reference / relative).read_bytes())
        written[filename] = file_sha256(out / filename)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=REPO_ROOT.parent / "shared" / "reference",
                        help="folder holding aasist/ and asvspoof5/aasist/ (default: ../shared/reference)")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--no-onnx", action="store_true", help="write the safetensors files only, not the ONNX graphs")
    args = parser.parse_args(argv)
    recorded = {entry.bundled: entry.bundled_sha256 for entry in KNOWN_WEIGHTS.values() if entry.bundled}
    recorded.update({e.bundled_onnx: e.bundled_onnx_sha256 for e in KNOWN_WEIGHTS.values() if e.bundled_onnx})
    status = 0
    for filename, digest in build(args.reference, args.out, onnx=not args.no_onnx).items():
        expected = recorded.get(filename)
        note = "" if expected in (None, digest) else f"  (the registry says {expected}: update it)"
        status |= bool(note)
        print(f"{digest}  {args.out / filename}{note}")
    return status


if __name__ == "__main__":
    sys.exit(main())
