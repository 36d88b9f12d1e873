"""Build the weights bundled in ``rawnet/pretrained/`` from the official files, byte for byte reproducibly.

Reads the official ``.pth`` state_dicts (clovaai/aasist ``AASIST.pth`` and ``AASIST-L.pth``; the ASVspoof 5
organisers' ``Baseline-AASIST/models/weights/AASIST/best.pth``), checks each against the SHA-256 recorded in
:data:`rawnet.weights.KNOWN_WEIGHTS`, and writes every tensor unchanged (same names, dtypes, shapes and bits)
into a safetensors file whose header also holds a JSON description (source URL and SHA-256, licence, training
data, model config). The licence texts that must travel with the weights are copied beside them unchanged.

Run from the repository root::

    .venv/bin/python data/bundle_weights.py                       # reference files in ../shared/reference
    .venv/bin/python data/bundle_weights.py --reference DIR --out /tmp/check

The output is deterministic (a rerun writes identical bytes). The script prints each file's SHA-256 and exits 1
if one differs from the registry, which then needs updating (a new official file, or a new safetensors layout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lfcc_gmm.atomic import atomic_write  # noqa: E402
from rawnet.weights import KNOWN_WEIGHTS, METADATA_KEY, PRETRAINED_DIR, file_sha256  # noqa: E402

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
    import torch
    from safetensors.numpy import save

    expected = KNOWN_WEIGHTS[name].sha256
    got = file_sha256(source)
    if got != expected:
        raise SystemExit(f"{source}: SHA-256 {got} is not the official {expected}")
    state = torch.load(source, map_location="cpu", weights_only=True)
    # .contiguous() rather than np.ascontiguousarray, which would turn the 0-d num_batches_tracked into 1-d
    tensors = {key: value.detach().contiguous().numpy() for key, value in state.items()}
    # One header entry holding canonical JSON: safetensors writes several entries in a random order.
    text = json.dumps(description(name), sort_keys=True, separators=(",", ":"))
    return save(tensors, metadata={METADATA_KEY: text})


def build(reference: Path, out: Path) -> dict[str, str]:
    """Write every bundled file into ``out``; returns {file name: SHA-256}."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, relative in SOURCES.items():
        data = convert(name, reference / relative)
        target = out / KNOWN_WEIGHTS[name].bundled
        with atomic_write(target, "wb") as handle:
            handle.write(data)
        written[target.name] = file_sha256(target)
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
    args = parser.parse_args(argv)
    recorded = {entry.bundled: entry.bundled_sha256 for entry in KNOWN_WEIGHTS.values() if entry.bundled}
    status = 0
    for filename, digest in build(args.reference, args.out).items():
        expected = recorded.get(filename)
        note = "" if expected in (None, digest) else f"  (the registry says {expected}: update it)"
        status |= bool(note)
        print(f"{digest}  {args.out / filename}{note}")
    return status


if __name__ == "__main__":
    sys.exit(main())
