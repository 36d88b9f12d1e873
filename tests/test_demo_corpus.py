"""The embedded demo corpus ``data/demo``: layout, format, splits, attacks, and no trivial class cues.

The cue test is the corpus' honesty check: a detector must not be able to tell bona fide from spoof by the
channel, level, length or padding, only by the speech itself.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.protocols import read_protocol

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
SPLITS = {"train": "T", "dev": "D", "eval": "E"}
FS = 16000
# Speech of 1.5-3.6 s plus 0.1-0.35 s of silence at each end, with room for the TTS timing match.
MIN_DURATION_S, MAX_DURATION_S = 1.5, 5.0
MAX_TOTAL_MB = 25.0
# A single scalar that separates the classes with an EER below this would be a shortcut: a detector could
# then score well without looking at the speech. 20 % stays well clear of chance-level noise for the split
# sizes here (a cue that carries no information lands around 40-50 %, with a spread of a few points).
MIN_CUE_EER = 0.20
LINE = re.compile(r"^(DS\d{2}) (DEMO_([TDE])_\d{4}) - (-|D\d{2}) (bonafide|spoof)$")


def _read_protocol(split: str) -> list[tuple[str, str, str, str]]:
    rows = []
    path = DEMO / "protocols" / f"{split}.txt"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = LINE.match(line)
        assert match, f"{path}:{number}: not 'SPEAKER FILE_ID - SYSTEM KEY': {line!r}"
        speaker, file_id, letter, attack, key = match.groups()
        assert letter == SPLITS[split], f"{path}:{number}: {file_id} is not a {split} ID"
        assert (attack == "-") == (key == "bonafide"), f"{path}:{number}: attack {attack} with key {key}"
        rows.append((speaker, file_id, attack, key))
    return rows


@pytest.fixture(scope="module")
def protocols() -> dict[str, list[tuple[str, str, str, str]]]:
    return {split: _read_protocol(split) for split in SPLITS}


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    """Every file's samples as int16, after checking its container and encoding."""
    out = {}
    for path in sorted((DEMO / "flac").glob("*.flac")):
        info = sf.info(path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("FLAC", "PCM_16", FS, 1), path
        out[path.stem] = sf.read(path, dtype="int16")[0]
    assert out, f"no FLAC files under {DEMO / 'flac'}"
    return out


def _silence_ends(x: np.ndarray) -> tuple[float, float]:
    """Leading and trailing seconds before/after the first/last 10 ms frame within 30 dB of the loudest."""
    hop = FS // 100
    n = len(x) // hop
    energy = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    active = np.flatnonzero(energy > energy.max() - 30)
    return active[0] * hop / FS, (len(x) - (active[-1] + 1) * hop) / FS


def _cues(samples: np.ndarray) -> dict[str, float]:
    x = samples / 32768.0
    freqs, psd = signal.welch(x, FS, nperseg=512)
    cumulative = np.cumsum(psd) / psd.sum()
    lead, trail = _silence_ends(x)
    return {
        "rolloff95_hz": float(freqs[np.searchsorted(cumulative, 0.95)]),
        "energy_above_4k_db": float(10 * np.log10(psd[freqs > 4000].sum() / psd.sum())),
        "rms_dbfs": float(10 * np.log10(np.mean(x**2))),
        "peak_dbfs": float(20 * np.log10(np.abs(x).max())),
        "duration_s": len(x) / FS,
        "leading_silence_s": lead,
        "trailing_silence_s": trail,
        "dc_offset": float(x.mean()),
    }


def test_protocols_and_files_match_one_to_one(protocols, audio):
    ids = [row[1] for rows in protocols.values() for row in rows]
    assert len(ids) == len(set(ids)), "a file ID appears twice in the protocols"
    assert set(ids) == set(audio), (
        f"files without a protocol line: {sorted(set(audio) - set(ids))[:5]}; "
        f"protocol lines without a file: {sorted(set(ids) - set(audio))[:5]}"
    )


def test_toolkit_reads_the_protocols(protocols):
    for split, rows in protocols.items():
        trials = read_protocol(DEMO / "protocols" / f"{split}.txt", audio_dir=DEMO / "flac")
        assert [(t.speaker, t.file_id, t.attack, t.key) for t in trials] == rows, split
        assert all(t.path == DEMO / "flac" / f"{t.file_id}.flac" for t in trials), split


def test_durations_within_range(audio):
    durations = {name: len(x) / FS for name, x in audio.items()}
    outside = {k: v for k, v in durations.items() if not MIN_DURATION_S <= v <= MAX_DURATION_S}
    assert not outside, f"durations outside {MIN_DURATION_S}-{MAX_DURATION_S} s: {outside}"


def test_split_sizes_and_balance(protocols):
    # Sized for the demo: a GMM learns from train, and eval stays scoreable by AASIST on CPU in minutes.
    sizes = {"train": (200, 400), "dev": (60, 120), "eval": (100, 150)}
    for split, rows in protocols.items():
        low, high = sizes[split]
        assert low <= len(rows) <= high, f"{split}: {len(rows)} files"
        bonafide = sum(key == "bonafide" for *_, key in rows) / len(rows)
        assert 0.30 <= bonafide <= 0.50, f"{split}: {bonafide:.0%} bona fide"


def test_attacks_and_unseen_attacks_in_eval(protocols):
    attacks = {split: {row[2] for row in rows} - {"-"} for split, rows in protocols.items()}
    assert len(set().union(*attacks.values())) >= 6
    assert attacks["train"] == attacks["dev"], "dev should hold exactly the training attacks"
    unseen = attacks["eval"] - attacks["train"] - attacks["dev"]
    assert len(unseen) >= 2, f"eval attacks never seen in train/dev: {sorted(unseen)}"
    assert attacks["eval"] & attacks["train"], "eval should also hold known attacks"


def test_speakers_disjoint_across_splits(protocols):
    speakers = {split: {row[0] for row in rows} for split, rows in protocols.items()}
    for a, b in combinations(SPLITS, 2):
        assert not speakers[a] & speakers[b], f"speakers shared by {a} and {b}: {speakers[a] & speakers[b]}"
    bonafide_speakers = {row[0] for rows in protocols.values() for row in rows if row[3] == "bonafide"}
    assert len(bonafide_speakers) >= 4
    # A spoof of a speaker who has no bona fide files in its split would make the speaker a cue.
    for split, rows in protocols.items():
        assert {row[0] for row in rows} == {row[0] for row in rows if row[3] == "bonafide"}, split


def test_no_duplicate_audio(audio):
    digests = Counter(hashlib.sha256(x.tobytes()).hexdigest() for x in audio.values())
    assert max(digests.values()) == 1, "two files hold identical samples"


def test_metadata_agrees_with_protocols(protocols):
    rows = (DEMO / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split("\t")
    meta = {r["file_id"]: r for r in (dict(zip(header, line.split("\t"), strict=True)) for line in rows[1:])}
    for split, prot in protocols.items():
        for speaker, file_id, attack, _ in prot:
            assert (meta[file_id]["split"], meta[file_id]["speaker"], meta[file_id]["attack"]) == (
                split,
                speaker,
                attack,
            ), file_id
    assert len(meta) == sum(len(p) for p in protocols.values())


def test_total_size(audio):
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total / 1e6 <= MAX_TOTAL_MB, f"data/demo holds {total / 1e6:.1f} MB"


def test_trivial_cues_do_not_separate_the_classes(protocols, audio):
    failures = []
    for split, rows in protocols.items():
        cues = {row[1]: _cues(audio[row[1]]) for row in rows}
        for cue in next(iter(cues.values())):
            bona = [cues[r[1]][cue] for r in rows if r[3] == "bonafide"]
            spoof = [cues[r[1]][cue] for r in rows if r[3] == "spoof"]
            eer = compute_eer(np.array(bona), np.array(spoof))[0]
            # Either polarity: a cue is a shortcut whether it is high or low for bona fide speech.
            eer = min(eer, 1 - eer)
            if eer < MIN_CUE_EER:
                failures.append(f"{split}/{cue}: EER {eer:.1%}")
    assert not failures, "single cues separate bona fide from spoof: " + ", ".join(failures)
