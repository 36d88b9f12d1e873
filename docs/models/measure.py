"""Measure what the model cards quote: EER on the demo corpus in both modes, under degradations, on constructed long
and spliced files, how a file score is best made from window scores, and what the scorers say without speech.

Run from the repository root (a few CPU-minutes per AASIST set, about an hour in all on 2 busy cores)::

    .venv/bin/python docs/models/measure.py -o docs/models/measurements.json \
        --module lfcc_gmm/card_measurements.py

It writes every number as JSON and as the data module the model cards read (:mod:`lfcc_gmm.cards`); then
``make model-cards`` writes ``docs/models/*.md``. ``--from-json`` rewrites the module from a JSON file without
measuring again. Nothing here is tuned on the eval split: the thresholds are the dev split's EER points and the
constructed files are built from eval clips with a fixed seed.

Sets (all from the demo corpus, 16 kHz):

``dev``, ``eval``
    The demo splits as they are (79 and 122 files).
``eval/<condition>``
    The eval split degraded as ``antispoof robustness`` does (seed 0).
``concat``
    40 bona fide and 40 spoof files of three eval clips of the same class (and attack) end to end, 8-14 s.
``late``
    The same, preceded by 5 s of near-silence (white noise at -60 dBFS).
``late-single``
    Each eval clip preceded by 5 s of near-silence (the issue's "late.wav": a short utterance after a pause).
``spliced``
    40 files of bona fide speech with a spoofed eval clip spliced between two bona fide clips (label spoof) against
    40 files of three bona fide clips.
``non-speech``
    3 s each of digital silence, near-silence (-60 dBFS noise), 440 Hz and 1 kHz tones, white and pink noise at
    -30 dBFS, DTMF-like tone pairs: what a scorer says about recordings that hold no speech.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pprint
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from lfcc_gmm.analysis import inspect_signal  # noqa: E402
from lfcc_gmm.audio import load_audio  # noqa: E402
from lfcc_gmm.augment import named_seed  # noqa: E402
from lfcc_gmm.degrade import coloured_noise, parse_condition  # noqa: E402
from lfcc_gmm.metrics import compute_eer  # noqa: E402
from lfcc_gmm.protocols import read_protocol  # noqa: E402
from lfcc_gmm.segments import AGGREGATIONS, speech_shares  # noqa: E402

CORPUS = ROOT / "data" / "demo"
RATE = 16000
CONDITIONS = ("noise:20", "noise:10", "noise:5", "mulaw", "alaw", "tel8k", "g722", "reverb:0.3")
SEED = 0


def near_silence(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return 10 ** (-60 / 20) * rng.standard_normal(int(seconds * RATE))


def demo_sets(pairs: int = 40, conditions: tuple[str, ...] = CONDITIONS,
              late_single: int | None = None) -> dict[str, tuple[list[np.ndarray], list[str]]]:
    """Every set of the module docstring: (signals, labels "bonafide" or "spoof:<attack>"), with ``pairs`` bona
    fide and spoof files in each constructed set, the eval split under ``conditions``, and ``late_single`` eval clips
    (half bona fide, half spoof, the first of each in protocol order; None: all) after near-silence."""
    splits = {name: read_protocol(CORPUS / "protocols" / f"{name}.txt", CORPUS / "flac") for name in ("dev", "eval")}
    signals = {name: [load_audio(t.path, warn=False).signal for t in trials] for name, trials in splits.items()}
    labels = {name: [t.key if t.key == "bonafide" else f"spoof:{t.attack}" for t in trials]
              for name, trials in splits.items()}
    sets = {name: (signals[name], labels[name]) for name in splits}
    trials, clips = splits["eval"], signals["eval"]
    for text in conditions:
        condition = parse_condition(text)
        sets[f"eval/{text}"] = ([condition(x, rng=named_seed(SEED, t.file_id, condition.name))
                                 for t, x in zip(trials, clips, strict=True)], labels["eval"])
    rng = np.random.default_rng(SEED)
    bona = [i for i, t in enumerate(trials) if t.key == "bonafide"]
    attacks = sorted({t.attack for t in trials if t.key == "spoof"})
    concat, late, spliced = ([], []), ([], []), ([], [])
    for k in range(pairs):
        attack = attacks[k % len(attacks)]
        of_attack = [i for i, t in enumerate(trials) if t.attack == attack]
        for chosen, label in ((rng.choice(bona, 3, replace=False), "bonafide"),
                              (rng.choice(of_attack, 3, replace=False), f"spoof:{attack}")):
            x = np.concatenate([clips[i] for i in chosen])
            for target, signal in ((concat, x), (late, np.concatenate([near_silence(5, rng), x]))):
                target[0].append(signal)
                target[1].append(label)
        outer, insert = rng.choice(bona, 2, replace=False), rng.choice(of_attack)
        spliced[0].append(np.concatenate([clips[outer[0]], clips[insert], clips[outer[1]]]))
        spliced[1].append(f"spoof:{attack}")
        spliced[0].append(np.concatenate([clips[i] for i in rng.choice(bona, 3, replace=False)]))
        spliced[1].append("bonafide")
    sets["concat"], sets["late"], sets["spliced"] = concat, late, spliced
    chosen = range(len(clips))
    if late_single is not None:
        chosen = sorted([i for i in chosen if labels["eval"][i] == "bonafide"][: late_single // 2]
                        + [i for i in chosen if labels["eval"][i] != "bonafide"][: late_single // 2])
    sets["late-single"] = ([np.concatenate([near_silence(5, rng), clips[i]]) for i in chosen],
                           [labels["eval"][i] for i in chosen])
    t = np.arange(3 * RATE) / RATE
    quiet = 10 ** (-30 / 20) * np.sqrt(2)
    sets["non-speech"] = ([
        np.zeros(3 * RATE), near_silence(3, rng), quiet * np.sin(2 * np.pi * 440 * t),
        quiet * np.sin(2 * np.pi * 1000 * t), 10 ** (-30 / 20) * rng.standard_normal(3 * RATE),
        10 ** (-30 / 20) * coloured_noise(3 * RATE, 1.0, rng),
        quiet / 2 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t)),
    ], ["silence", "near-silence", "tone 440 Hz", "tone 1 kHz", "white noise", "pink noise", "DTMF 1"])
    return sets


def windows_of(scorer, signals: list[np.ndarray]) -> list[dict]:
    """Per signal: the scorer's file score, its windows' scores and speech shares, the speech and checks."""
    out = []
    for start in range(0, len(signals), 16):
        chunk = signals[start : start + 16]
        inspected = [inspect_signal(x, RATE, window_s=scorer.window_s, mode=scorer.mode) for x in chunk]
        timelines = scorer.score_timelines(chunk, [s for s, _ in inspected], scorer.default_grid())
        for (speech, checks), timeline in zip(inspected, timelines, strict=True):
            spans = np.array([[round(s.start_s * RATE), round(s.end_s * RATE)] for s in timeline.segments])
            out.append({"score": timeline.score, "windows": [s.score for s in timeline.segments],
                        "speech": speech_shares(speech.fraction, spans, RATE).tolist(),
                        "no_speech": any(c.code == "no-speech" for c in checks)})
    return out


def eer_percent(scores: np.ndarray, labels: list[str]) -> tuple[float, float]:
    bona = np.array([label == "bonafide" for label in labels])
    eer, threshold = compute_eer(scores[bona], scores[~bona])
    return round(100 * eer, 2), float(threshold)


def errors_at(threshold: float, scores: np.ndarray, labels: list[str]) -> list[float]:
    """[bona fide rejected %, spoof accepted %] at ``threshold``."""
    bona = np.array([label == "bonafide" for label in labels])
    return [round(100 * float(np.mean(scores[bona] < threshold)), 1),
            round(100 * float(np.mean(scores[~bona] >= threshold)), 1)]


def file_scores(rows: list[dict], deep: bool) -> dict[str, np.ndarray]:
    """The file scores each way of making them: the scorer's own, and for a deep scorer each aggregation of its
    whole-file windows and the official crop (the first window)."""
    out = {"file score": np.array([r["score"] for r in rows])}
    if deep:
        out["official crop"] = np.array([r["windows"][0] for r in rows])
        for rule, aggregate in AGGREGATIONS.items():
            out[rule] = np.array([aggregate(np.array(r["windows"]), np.array(r["speech"])) for r in rows])
    return out


def measure(scorer, sets: dict, deep: bool, on_update=None) -> dict:
    """For every set: per way of making a file score, the EER and the errors at the dev split's EER threshold of
    that same way; the non-speech set's raw scores; and how many files the checks call "no speech".

    ``sets`` starts with ``dev`` (the thresholds); ``on_update(results)`` is called after each set, so that a long
    run can be written as it goes.
    """
    results: dict = {"dev_thresholds": {}, "sets": {}}
    for name, (signals, labels) in sets.items():
        start = time.perf_counter()
        rows = windows_of(scorer, signals)
        seconds = round(time.perf_counter() - start, 1)
        if name == "dev":
            results["dev_thresholds"] = {way: eer_percent(values, labels)[1]
                                         for way, values in file_scores(rows, deep).items()}
        thresholds = results["dev_thresholds"]
        entry: dict = {"files": len(rows), "seconds": seconds, "no_speech_verdicts": sum(r["no_speech"] for r in rows)}
        if name == "non-speech":
            entry["scores"] = {label: round(r["score"], 4) for label, r in zip(labels, rows, strict=True)}
        else:
            entry["eer"] = {way: eer_percent(values, labels)[0]
                            for way, values in file_scores(rows, deep).items()}
            entry["errors_at_dev_threshold"] = {way: errors_at(thresholds[way], values, labels)
                                                for way, values in file_scores(rows, deep).items()}
        results["sets"][name] = entry
        print(f"  {name}: {json.dumps(entry)}", flush=True)
        if on_update is not None:
            on_update(results)
    return results


def write_module(report: dict, path: Path) -> None:
    """The data module of the cards: the report as one Python literal."""
    text = pprint.pformat(report, width=110, sort_dicts=False)
    path.write_text(f'"""Measurements quoted by the model cards (:mod:`lfcc_gmm.cards`), written by '
                    f'docs/models/measure.py\non {report["measured_on"]}.\nDo not edit: run the script again."""\n\n'
                    f"from typing import Any\n\nMEASUREMENTS: dict[str, Any] = {text}\n")


def machine() -> str:
    import platform

    import torch

    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} cores (a shared machine), torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d')}")


#: Set sizes of the deep scorers: AASIST costs about a second per 4 s window on a busy 2-core machine, so they are
#: measured on the conditions a user meets most (noise, the telephone band) and smaller constructed sets.
DEEP_SIZES = {"pairs": 12, "conditions": ("noise:10", "tel8k"), "late_single": 48}


def merged(reports: list[dict]) -> dict:
    """One report from several runs (each measuring some scorers): the first one's header, every scorer."""
    out = {**reports[0], "scorers": {}}
    for report in reports:
        out["scorers"].update(report["scorers"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, help="the JSON report to write")
    parser.add_argument("--module", type=Path, help="also write the cards' data module here")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="write --module from these reports (merged) instead of measuring")
    parser.add_argument("--aasist", default=str(ROOT.parent / "shared" / "reference" / "aasist"),
                        help="folder holding AASIST.pth and AASIST-L.pth")
    parser.add_argument("--scorers", nargs="+", default=["lfcc-gmm", "aasist", "aasist-l", "rawnet2"],
                        choices=["lfcc-gmm", "aasist", "aasist-l", "rawnet2"],
                        help="what to measure (rawnet2: the demo's quick RawNet2, trained here)")
    args = parser.parse_args()
    if args.from_json is not None:
        write_module(merged([json.loads(path.read_text()) for path in args.from_json]), args.module)
        return
    import torch

    torch.manual_seed(SEED)
    from cli.demo import DEMO_RAWNET2_CONFIG
    from lfcc_gmm.baseline import LFCCGMMScorer
    from rawnet.scorers import AASISTScorer, RawNet2Scorer

    train = read_protocol(CORPUS / "protocols" / "train.txt", CORPUS / "flac")
    dev = read_protocol(CORPUS / "protocols" / "dev.txt", CORPUS / "flac")
    report: dict = {"measured_on": machine(), "corpus": "data/demo", "seed": SEED, "conditions": list(CONDITIONS),
                    "scorers": {}}

    def rawnet2() -> RawNet2Scorer:
        scorer = RawNet2Scorer(config=DEMO_RAWNET2_CONFIG, device="cpu")
        return scorer.fit(train, dev_trials=dev, epochs=20, seed=SEED)

    makers = {
        "lfcc-gmm": lambda: LFCCGMMScorer(n_components=64, jobs=2).fit(train, dev_trials=dev),
        "aasist": lambda: AASISTScorer.load(Path(args.aasist) / "AASIST.pth", device="cpu"),
        "aasist-l": lambda: AASISTScorer.load(Path(args.aasist) / "AASIST-L.pth", device="cpu"),
        "rawnet2": rawnet2,
    }

    def write(name: str, results: dict) -> None:
        # After each set, so that a long run that is stopped keeps what it measured.
        report["scorers"][name] = results
        if args.output is not None:
            args.output.write_text(json.dumps(report, indent=1) + "\n")
        if args.module is not None:
            write_module(report, args.module)

    for name in args.scorers:
        print(name, flush=True)
        scorer = makers[name]()
        sets = demo_sets() if name == "lfcc-gmm" else demo_sets(**DEEP_SIZES)
        chosen = {k: sets[k] for k in ("dev", "eval")} if name == "aasist-l" else sets
        measure(scorer, chosen, deep=name != "lfcc-gmm", on_update=lambda results, n=name: write(n, results))


if __name__ == "__main__":
    main()
