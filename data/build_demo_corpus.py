"""Rebuild the embedded demo corpus ``data/demo`` from its sources, deterministically.

The corpus is committed; this script documents and reproduces how it was made. It is not part of the toolkit
and needs tools the toolkit does not (see ``data/demo/SOURCES.md`` for every source, version and licence).

Installing the sources (Debian 12 "bookworm", as root)::

    apt-get update
    apt-get install asterisk-core-sounds-{en,es,fr,it,ru}-g722 asterisk-core-sounds-{en,es,fr,it,ru} \\
        espeak-ng flite festival festvox-ru sox
    python3 -m venv /work/corpus-venv
    /work/corpus-venv/bin/pip install -r data/requirements-build.txt
    /work/corpus-venv/bin/pip install --no-build-isolation pyworld==0.3.5 pysptk==1.0.1
    /work/corpus-venv/bin/pip download --no-deps --no-binary :all: --no-build-isolation \\
        -d /work/corpus-src pocketsphinx==5.1.1

(the plain ``asterisk-core-sounds-*`` packages carry the transcripts ``core-sounds-*.txt.gz``.)

Usage::

    /work/corpus-venv/bin/python data/build_demo_corpus.py \\
        --pocketsphinx /work/corpus-src/pocketsphinx-5.1.1.tar.gz --out data/demo

Every random choice comes from a generator seeded by ``SEED`` and the item's name, inputs are sorted, and the
items are processed one at a time, so a re-run with the same tool versions gives byte-identical FLACs and
protocols.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import G722
import numpy as np
import pysptk
import pyworld
import soundfile as sf
from scipy import linalg, signal

SEED = 20240601
FS = 16000
SOUNDS = Path("/usr/share/asterisk/sounds")
DOCS = Path("/usr/share/doc")
# Speech length (after trimming) accepted from the sources, and the silence put back at each end.
MIN_SPEECH_S, MAX_SPEECH_S = 1.5, 3.6
PAD_S = (0.10, 0.35)
# Active-speech RMS level of every file, drawn per file from the same range for both classes.
LEVEL_DBFS = (-32.0, -24.0)
# Common noise floor below the speech level: hides the digital silence of synthetic speech.
NOISE_FLOOR_DB = -55.0
SOURCE_LEVEL_DBFS = -26.0
TRIM_DB = 35.0

# Every attack in PLAN must be described here (and in SOURCES.md).
ATTACKS = {
    "D01": "espeak-ng 1.51 formant TTS, language of the prompt, gender-matched voice variant",
    "D02": "Flite 2.2 English TTS (voices kal16, slt, awb, rms)",
    "D03": "WORLD analysis-synthesis with scaled F0 and warped spectral envelope (voice-conversion style)",
    "D04": "Griffin-Lim resynthesis from an 80-band mel magnitude spectrogram (32 iterations)",
    "D05": "LPC vocoder: order-20 LPC envelope, pulse/noise excitation from the WORLD F0",
    "D06": "Festival 2.5 TTS, Russian unit-selection voice msu_ru_nsh_clunits, duration matched with SoX tempo",
    "D07": "MLSA vocoder: 24th-order mel-cepstrum, SWIPE F0 scaled, pulse/noise excitation",
}


@dataclass(frozen=True)
class Speaker:
    """One real speaker: protocol ID, name, gender and the prompt sets (language, asterisk folder)."""

    spk_id: str
    name: str
    gender: str
    sets: tuple[tuple[str, str], ...]


SPEAKERS = {
    "allison": Speaker("DS01", "Allison Smith", "f", (("en", "en_US_f_Allison"), ("es", "es_MX_f_Allison"))),
    "june": Speaker("DS02", "June Wallack", "f", (("fr", "fr_CA_f_June"),)),
    "librivox": Speaker("DS03", "LibriVox reader (pocketsphinx test data)", "m", (("en", ""),)),
    "carlo": Speaker("DS04", "Carlo Flora", "m", (("it", "it_IT_m_Carlo"),)),
    "ivrvoice": Speaker("DS05", "IvrvoiceRU voice (Maxim Topal)", "f", (("ru", "ru_RU_f_IvrvoiceRU"),)),
}

# Files per (split, speaker, language, attack); "-" is bona fide. In train every (speaker, language) has 2 bona
# fide files to 3 spoofs, so neither is a cue a model could learn; D05-D07 appear only in eval (unseen attacks).
# Training holds both genders; the two male speakers are Carlo (train) and the LibriVox reader (dev).
PLAN: dict[str, dict[tuple[str, str], dict[str, int]]] = {
    "train": {
        ("allison", "en"): {"-": 36, "D01": 9, "D02": 27, "D03": 9, "D04": 9},
        ("allison", "es"): {"-": 18, "D01": 9, "D03": 9, "D04": 9},
        ("carlo", "it"): {"-": 30, "D01": 15, "D03": 15, "D04": 15},
    },
    "dev": {
        ("june", "fr"): {"-": 26, "D01": 9, "D03": 9, "D04": 9},
        ("librivox", "en"): {"-": 8, "D01": 3, "D02": 9, "D03": 3, "D04": 3},
    },
    "eval": {
        ("ivrvoice", "ru"): {"-": 50, "D01": 12, "D03": 12, "D04": 12, "D05": 12, "D06": 12, "D07": 12},
    },
}
SPLIT_LETTER = {"train": "T", "dev": "D", "eval": "E"}
TTS_ATTACKS = {"D01", "D02", "D06"}
FLITE_VOICES = ("kal16", "slt", "awb", "rms")
ESPEAK_LANG = {"en": "en-us", "es": "es", "fr": "fr", "it": "it", "ru": "ru"}
LIBRIVOX_DIR = "test/data/librivox"


@dataclass
class Prompt:
    """A real recording with its transcript: ``audio`` is float64 at 16 kHz, as decoded from the source."""

    speaker: str
    lang: str
    name: str
    text: str
    audio: np.ndarray = field(repr=False)


@dataclass
class Item:
    """One corpus file to make."""

    split: str
    speaker: str
    lang: str
    attack: str
    prompt: Prompt
    repeat: int = 0
    file_id: str = ""
    detail: str = ""


def rng_for(*names: str) -> np.random.Generator:
    """A generator seeded by ``SEED`` and the given names (stable across runs and platforms)."""
    return np.random.default_rng([SEED, *(zlib.crc32(n.encode()) for n in names)])


# --------------------------------------------------------------------------------------------------- sources
def g722_decode(data: bytes) -> np.ndarray:
    """Decode 64 kbit/s G.722 to float64 in [-1, 1); the codec keeps state, so one decoder per stream."""
    return np.asarray(G722.G722(FS, 64000).decode(data), dtype=np.float64) / 32768.0


def g722_roundtrip(x: np.ndarray) -> np.ndarray:
    """Encode and decode with fresh codec objects (the channel every file goes through)."""
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    return g722_decode(G722.G722(FS, 64000).encode(pcm))


def clean_text(text: str) -> str:
    """Transcript text as spoken: drop translator notes in brackets, ellipses and stray quotes."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", text)
    text = re.sub(r"\.\.\.|…|[\"“”«»„]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def asterisk_prompts(speaker: str, lang: str, folder: str) -> list[Prompt]:
    """Every prompt of one Asterisk core-sounds set that has a transcript."""
    transcripts = {}
    listing = DOCS / f"asterisk-core-sounds-{lang}" / f"core-sounds-{lang}.txt.gz"
    with gzip.open(listing, "rt", encoding="utf-8-sig") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";") and clean_text(text):
                transcripts[name.strip()] = clean_text(text)
    root = SOUNDS / folder
    prompts = []
    for path in sorted(root.rglob("*.g722")):
        name = path.relative_to(root).with_suffix("").as_posix()
        if name in transcripts:
            prompts.append(Prompt(speaker, lang, f"{lang}/{name}", transcripts[name], g722_decode(path.read_bytes())))
    return prompts


def librivox_prompts(sdist: Path) -> list[Prompt]:
    """The LibriVox utterances of the pocketsphinx test data, split at the pause nearest the middle when long.

    The word alignments shipped with them (``*.json``) give the cut points and each part's text.
    """
    prompts = []
    with tarfile.open(sdist) as tar:
        members = sorted(m.name for m in tar.getmembers() if f"/{LIBRIVOX_DIR}/" in m.name and m.name.endswith(".wav"))
        for wav_name in members:
            audio, fs = sf.read(io.BytesIO(tar.extractfile(wav_name).read()), dtype="float64")
            if fs != FS:
                raise ValueError(f"{wav_name}: expected {FS} Hz, got {fs}")
            words = json.load(tar.extractfile(wav_name[:-4] + ".json"))["w"]
            base = Path(wav_name).stem.rsplit("-", 1)[1]
            spoken = [w for w in words if not w["t"].startswith("<")]
            parts = [spoken]
            if spoken[-1]["b"] + spoken[-1]["d"] - spoken[0]["b"] > MAX_SPEECH_S:
                mid = (spoken[0]["b"] + spoken[-1]["b"] + spoken[-1]["d"]) / 2
                cut = min(range(1, len(spoken)), key=lambda i: abs(spoken[i]["b"] - mid))
                parts = [spoken[:cut], spoken[cut:]]
            for k, part in enumerate(parts):
                start = part[0]["b"] if k else 0.0
                end = part[-1]["b"] + part[-1]["d"] if k < len(parts) - 1 else len(audio) / FS
                # Alignment times are in 10 ms frames; keep 50 ms so a cut never clips a word.
                lo = max(0, int(round((start - 0.05) * FS)))
                hi = min(len(audio), int(round((end + 0.05) * FS)))
                text = " ".join(re.sub(r"\(\d+\)$", "", w["t"]) for w in part)
                prompts.append(
                    Prompt("librivox", "en", f"librivox/{base}{'ab'[k] if len(parts) > 1 else ''}", text, audio[lo:hi])
                )
    return prompts


# --------------------------------------------------------------------------------------------------- shared chain
_HIGHPASS = signal.butter(2, 60.0, btype="highpass", fs=FS, output="sos")


def speech_bounds(x: np.ndarray) -> tuple[int, int]:
    """First and last sample of speech: 10 ms frames within ``TRIM_DB`` of the loudest frame, 20 ms margin."""
    hop = FS // 100
    n = len(x) // hop
    energy = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-20)
    active = np.flatnonzero(energy > energy.max() - TRIM_DB)
    margin = 2 * hop
    return max(0, active[0] * hop - margin), min(len(x), (active[-1] + 1) * hop + margin)


def speech_duration(x: np.ndarray) -> float:
    """Seconds between the speech bounds."""
    lo, hi = speech_bounds(signal.sosfilt(_HIGHPASS, x))
    return (hi - lo) / FS


def set_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale so the RMS of the frames within ``TRIM_DB`` of the loudest one is ``dbfs``."""
    hop = FS // 100
    n = len(x) // hop
    power = np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1)
    active = power[10 * np.log10(power + 1e-20) > 10 * np.log10(power.max()) - TRIM_DB]
    return x * (10 ** (dbfs / 20) / np.sqrt(active.mean()))


# The LibriVox recordings were MP3-coded, which cut them off around 5 kHz; every file of that speaker, bona
# fide or spoof, passes this low-pass so that the band is a property of the speaker's channel, not of the class.
_LIBRIVOX_LOWPASS = signal.butter(8, 5000.0, btype="lowpass", fs=FS, output="sos")


def source_coding(x: np.ndarray) -> np.ndarray:
    """One G.722 pass at the source level, as the Asterisk originals had before they reached us."""
    return g722_roundtrip(set_level(x, SOURCE_LEVEL_DBFS))


def common_channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The chain every file goes through, bona fide or spoof: high-pass, trim, pad, level, noise floor, G.722."""
    x = signal.sosfilt(_HIGHPASS, x)
    lo, hi = speech_bounds(x)
    lead, trail = (int(round(rng.uniform(*PAD_S) * FS)) for _ in range(2))
    y = np.concatenate([np.zeros(lead), x[lo:hi], np.zeros(trail)])
    y = set_level(y, rng.uniform(*LEVEL_DBFS))
    speech_rms = np.sqrt(np.mean(y[lead : len(y) - trail] ** 2))
    y = y + rng.standard_normal(len(y)) * speech_rms * 10 ** (NOISE_FLOOR_DB / 20)
    y = g722_roundtrip(y)
    if np.abs(y).max() >= 0.99:
        raise ValueError("clipping after the channel; lower LEVEL_DBFS")
    return y


# --------------------------------------------------------------------------------------------------- TTS engines
def _run(cmd: list[str], out: Path) -> np.ndarray:
    done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if done.returncode or not out.exists():
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    audio, fs = sf.read(out, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if fs != FS:
        # 22050 Hz (espeak-ng) -> 16 kHz with the same polyphase filter for every engine that needs it.
        g = np.gcd(FS, fs)
        audio = signal.resample_poly(audio, FS // g, fs // g)
    return audio


def espeak(text: str, lang: str, voice: str, speed: int, tmp: Path) -> np.ndarray:
    out = tmp / "espeak.wav"
    cmd = ["espeak-ng", "-v", f"{ESPEAK_LANG[lang]}+{voice}", "-s", str(speed), "-w", str(out), "--", text]
    return _run(cmd, out)


def flite(text: str, voice: str, stretch: float, tmp: Path) -> np.ndarray:
    out = tmp / "flite.wav"
    cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", str(out)]
    return _run(cmd, out)


def festival(text: str, voice: str, tmp: Path) -> np.ndarray:
    out = tmp / "festival.wav"
    # The letter-to-sound rules stop at symbols they do not know (dashes, quotes); they add nothing spoken.
    spoken = re.sub(r"[^\w\s.,?!;:'-]", " ", text)
    spoken = re.sub(r"\s+([.,?!;:])", r"\1", spoken).strip(" .,?!;:-")
    script = tmp / "say.scm"
    script.write_text(
        f'(voice_{voice})\n(utt.save.wave (utt.synth (Utterance Text "{spoken}")) "{out}" \'riff)\n',
        encoding="utf-8",
    )
    return _run(["festival", "-b", str(script)], out)


def tempo(x: np.ndarray, factor: float, tmp: Path) -> np.ndarray:
    """WSOLA time-scaling by ``factor`` (> 1 shortens) with SoX."""
    src, out = tmp / "tempo_in.wav", tmp / "tempo_out.wav"
    sf.write(src, x, FS, subtype="FLOAT")
    subprocess.run(["sox", "-D", str(src), str(out), "tempo", "-s", f"{factor:.4f}"], check=True, capture_output=True)
    return sf.read(out, dtype="float64")[0]


def synthesize_matched(make, target_s: float) -> tuple[np.ndarray, float]:
    """Synthesize at the engine's default rate, then again with the rate that matches ``target_s`` of speech.

    ``make(rate)`` takes a duration factor (1 = default, 2 = twice as long); real TTS systems trained on a
    speaker imitate their timing, so the synthetic duration follows the real prompt's.
    """
    first = speech_duration(make(1.0))
    factor = float(np.clip(target_s / first, 0.5, 2.0))
    return make(factor), factor


def make_tts(item: Item, rng: np.random.Generator, tmp: Path) -> np.ndarray:
    spk = SPEAKERS[item.speaker]
    text, lang = item.prompt.text, item.lang
    target = speech_duration(item.prompt.audio)
    if item.attack == "D01":
        voice = f"{spk.gender}{rng.integers(1, 6)}"
        audio, factor = synthesize_matched(lambda r: espeak(text, lang, voice, int(round(175 / r)), tmp), target)
        item.detail = f"voice={ESPEAK_LANG[lang]}+{voice} speed={int(round(175 / factor))}"
    elif item.attack == "D02":
        # Cycling by repetition keeps a reused prompt (LibriVox) from getting the same voice twice.
        voice = FLITE_VOICES[(zlib.crc32(item.prompt.name.encode()) + item.repeat) % len(FLITE_VOICES)]
        audio, factor = synthesize_matched(lambda r: flite(text, voice, r, tmp), target)
        item.detail = f"voice={voice} duration_stretch={factor:.3f}"
    else:
        if lang != "ru":
            raise ValueError(f"{item.prompt.name}: D06 uses the Russian Festival voice only")
        voice = "msu_ru_nsh_clunits"
        audio = festival(text, voice, tmp)
        # This unit-selection voice ignores Duration_Stretch, so its timing is matched afterwards.
        ratio = float(np.clip(speech_duration(audio) / target, 0.5, 2.0))
        audio = tempo(audio, ratio, tmp)
        item.detail = f"voice={voice} sox_tempo={ratio:.3f}"
    return audio


# --------------------------------------------------------------------------------------------------- vocoders
def world_vc(x: np.ndarray, rng: np.random.Generator, item: Item) -> np.ndarray:
    """WORLD resynthesis with F0 scaled and the spectral envelope frequency-warped (an all-pass warp)."""
    f0_ratio = float(rng.choice([-1, 1]) * rng.uniform(0.10, 0.25) + 1)
    alpha = float(rng.choice([-1, 1]) * rng.uniform(0.03, 0.08))
    f0, t = pyworld.dio(x, FS)
    f0 = pyworld.stonemask(x, f0, t, FS)
    sp = pyworld.cheaptrick(x, f0, t, FS)
    ap = pyworld.d4c(x, f0, t, FS)
    w = np.linspace(0, np.pi, sp.shape[1])
    warped = w + 2 * np.arctan(alpha * np.sin(w) / (1 - alpha * np.cos(w)))
    log_sp = np.log(sp)
    sp = np.exp(np.stack([np.interp(warped, w, frame) for frame in log_sp]))
    item.detail = f"f0_ratio={f0_ratio:.3f} warp_alpha={alpha:+.3f}"
    return pyworld.synthesize(np.ascontiguousarray(f0 * f0_ratio), sp, ap, FS)


def mel_filterbank(n_mels: int, n_fft: int) -> np.ndarray:
    """HTK-style triangular mel filters on the rfft bins, 0 to FS/2."""
    mel = np.linspace(0, 2595 * np.log10(1 + FS / 2 / 700), n_mels + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    bins = np.linspace(0, FS / 2, n_fft // 2 + 1)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    return np.maximum(0, np.minimum((bins - lower) / (centre - lower), (upper - bins) / (upper - centre)))


def griffin_lim(x: np.ndarray, rng: np.random.Generator, item: Item, n_iter: int = 32) -> np.ndarray:
    """Griffin-Lim from the mel magnitude (what a neural TTS acoustic model predicts), random initial phase."""
    n_fft, hop = 1024, 256
    fb = mel_filterbank(80, n_fft)
    _, _, spec = signal.stft(x, FS, nperseg=n_fft, noverlap=n_fft - hop)
    mag = np.maximum(np.linalg.pinv(fb) @ (fb @ np.abs(spec)), 0)
    phase = np.exp(2j * np.pi * rng.random(mag.shape))
    for _ in range(n_iter):
        _, y = signal.istft(mag * phase, FS, nperseg=n_fft, noverlap=n_fft - hop)
        _, _, rebuilt = signal.stft(y, FS, nperseg=n_fft, noverlap=n_fft - hop)
        phase = np.exp(1j * np.angle(rebuilt[:, : mag.shape[1]]))
    _, y = signal.istft(mag * phase, FS, nperseg=n_fft, noverlap=n_fft - hop)
    item.detail = f"n_mels=80 n_fft={n_fft} hop={hop} iterations={n_iter}"
    return y[: len(x)]


def excitation(f0: np.ndarray, hop: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power pulse train where voiced (phase-continuous), white noise where not."""
    f0_s = np.repeat(f0, hop)[:n]
    f0_s = np.pad(f0_s, (0, n - len(f0_s)), mode="edge")
    phase = np.cumsum(f0_s / FS)
    pulses = np.diff(np.floor(phase), prepend=0.0) * np.sqrt(FS / np.maximum(f0_s, 1))
    return np.where(f0_s > 0, pulses, rng.standard_normal(n))


def lpc_vocoder(x: np.ndarray, rng: np.random.Generator, item: Item, order: int = 20) -> np.ndarray:
    """Frame-wise LPC synthesis filter driven by a pulse/noise excitation, gain matched to the residual."""
    hop, win = 80, 400
    f0, t = pyworld.dio(x, FS, frame_period=hop / FS * 1000)
    f0 = pyworld.stonemask(x, f0, t, FS)
    exc = excitation(f0, hop, len(x), rng)
    padded = np.pad(x, (win // 2, win))
    window = np.hanning(win)
    y = np.zeros(len(x))
    state = np.zeros(order)
    for i in range(0, len(x), hop):
        frame = padded[i : i + win] * window
        r = np.correlate(frame, frame, "full")[win - 1 : win + order]
        if r[0] < 1e-10:
            continue
        r[0] *= 1 + 1e-9
        a = linalg.solve_toeplitz(r[:order], -r[1 : order + 1])
        gain = np.sqrt(max(r[0] + a @ r[1 : order + 1], 1e-12) / np.sum(window**2))
        seg = exc[i : i + hop] * gain
        out, state = signal.lfilter([1.0], np.concatenate([[1.0], a]), seg, zi=state)
        y[i : i + hop] = out
    item.detail = f"order={order} frame={win} hop={hop}"
    return y


def mlsa_vocoder(x: np.ndarray, rng: np.random.Generator, item: Item, order: int = 24) -> np.ndarray:
    """Mel-cepstral analysis and MLSA filtering (SPTK), F0 from SWIPE scaled by a random ratio."""
    hop, win, alpha = 80, 512, 0.42
    f0_ratio = float(rng.uniform(0.85, 1.15))
    padded = np.pad(x, (win // 2, win))
    n_frames = len(x) // hop + 1
    frames = np.stack([padded[i * hop : i * hop + win] for i in range(n_frames)]) * np.blackman(win)
    frames += rng.standard_normal(frames.shape) * 1e-6  # mcep needs nonzero power in every frame
    mc = pysptk.mcep(frames, order=order, alpha=alpha, etype=1, eps=1e-8)
    b = pysptk.mc2b(mc, alpha)
    f0 = pysptk.swipe(np.ascontiguousarray(x), FS, hop, min=60, max=400, otype="f0")[:n_frames]
    exc = excitation(f0 * f0_ratio, hop, n_frames * hop, rng)
    synth = pysptk.synthesis.Synthesizer(pysptk.synthesis.MLSADF(order=order, alpha=alpha), hop)
    item.detail = f"order={order} alpha={alpha} f0_ratio={f0_ratio:.3f}"
    return synth.synthesis(exc, b)[: len(x)]


VOCODERS = {"D03": world_vc, "D04": griffin_lim, "D05": lpc_vocoder, "D07": mlsa_vocoder}


# --------------------------------------------------------------------------------------------------- the plan
def load_prompts(sdist: Path) -> dict[tuple[str, str], list[Prompt]]:
    """Eligible prompts (speech length within range) per (speaker, language), in sorted order."""
    pools: dict[tuple[str, str], list[Prompt]] = {}
    for key, spk in SPEAKERS.items():
        for lang, folder in spk.sets:
            prompts = librivox_prompts(sdist) if key == "librivox" else asterisk_prompts(key, lang, folder)
            pools[key, lang] = [p for p in prompts if MIN_SPEECH_S <= speech_duration(p.audio) <= MAX_SPEECH_S]
    return pools


def plan_items(pools: dict[tuple[str, str], list[Prompt]]) -> list[Item]:
    """Assign prompts to files: disjoint prompts per class and attack where the pool is large enough.

    The LibriVox pool is too small for that, so its prompts serve as bona fide and as spoof sources alike.
    """
    items = []
    for split, groups in PLAN.items():
        split_items = []
        for (spk, lang), counts in groups.items():
            unknown = set(counts) - set(ATTACKS) - {"-"}
            if unknown:
                raise ValueError(f"PLAN[{split!r}][{spk!r}, {lang!r}]: undescribed attacks {sorted(unknown)}")
            pool = pools[spk, lang]
            order = rng_for("prompts", spk, lang).permutation(len(pool))
            if counts["-"] > len(pool):
                raise ValueError(f"{spk}/{lang}: {len(pool)} prompts cannot give {counts['-']} bona fide files")
            pos = 0
            for attack in sorted(counts):
                for _ in range(counts[attack]):
                    idx = order[pos % len(pool)]
                    split_items.append(Item(split, spk, lang, attack, pool[idx], repeat=pos // len(pool)))
                    pos += 1
        ids = rng_for("ids", split).permutation(len(split_items))
        for item, num in zip(split_items, ids, strict=True):
            item.file_id = f"DEMO_{SPLIT_LETTER[split]}_{num + 1:04d}"
        items.extend(sorted(split_items, key=lambda it: it.file_id))
    return items


def render(item: Item, tmp: Path) -> np.ndarray:
    """The final waveform of one item."""
    rng = rng_for("render", item.file_id)
    real = item.prompt.audio
    if item.attack == "-":
        audio = real
        item.detail = "real"
    elif item.attack in TTS_ATTACKS:
        audio = make_tts(item, rng, tmp)
    else:
        audio = VOCODERS[item.attack](real, rng, item)
    if item.speaker == "librivox":
        audio = signal.sosfilt(_LIBRIVOX_LOWPASS, audio)
    # The Asterisk prompts arrived G.722-coded; everything else gets that source coding here.
    if item.attack != "-" or item.speaker == "librivox":
        audio = source_coding(audio)
    return common_channel(audio, rng)


def write_outputs(items: list[Item], audio: dict[str, np.ndarray], out: Path) -> None:
    flac_dir, proto_dir = out / "flac", out / "protocols"
    for d in (flac_dir, proto_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for item in items:
        pcm = np.round(audio[item.file_id] * 32768.0).astype(np.int16)
        sf.write(flac_dir / f"{item.file_id}.flac", pcm, FS, format="FLAC", subtype="PCM_16")
    for split in PLAN:
        lines = [
            f"{SPEAKERS[it.speaker].spk_id} {it.file_id} - {it.attack} {'bonafide' if it.attack == '-' else 'spoof'}\n"
            for it in items
            if it.split == split
        ]
        (proto_dir / f"{split}.txt").write_text("".join(lines), encoding="utf-8")
    meta = ["file_id\tsplit\tspeaker\tlanguage\tattack\tsource_prompt\tsettings\ttext\n"]
    meta += [
        f"{it.file_id}\t{it.split}\t{SPEAKERS[it.speaker].spk_id}\t{it.lang}\t{it.attack}\t{it.prompt.name}\t"
        f"{it.detail}\t{it.prompt.text}\n"
        for it in items
    ]
    (out / "metadata.tsv").write_text("".join(meta), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pocketsphinx", type=Path, required=True, help="pocketsphinx-5.1.1.tar.gz (sdist)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "demo")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    items = plan_items(load_prompts(args.pocketsphinx))
    audio = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, item in enumerate(items, 1):
            audio[item.file_id] = render(item, Path(tmp))
            if n % 50 == 0:
                print(f"{n}/{len(items)} rendered ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    write_outputs(items, audio, args.out)
    counts = Counter((it.split, it.attack) for it in items)
    for split in PLAN:
        print(split, {a: c for (s, a), c in sorted(counts.items()) if s == split})
    size = sum(p.stat().st_size for p in (args.out / "flac").glob("*.flac"))
    print(f"{len(items)} files, {size / 1e6:.2f} MB of FLAC, {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
