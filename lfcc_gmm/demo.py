"""The main job on a small corpus laid out as the demo's: train, score, compare, plot.

:func:`run_demo` trains the LFCC-GMM baseline on the ``train`` split, scores ``dev`` and ``eval``, adds the
pretrained AASIST (weights bundled with the package) and a RawNet2 quick-trained on the CPU when asked, fuses
LFCC-GMM with AASIST on ``dev`` (applied to ``eval``), and writes a report folder: score files, the
comparison table (pooled and per-attack EER, attacks unseen in train/dev marked), DET curves, score
histograms and ``report.md``, whose notes describe what ran. Nothing is tuned on ``eval``.

Where the embedded corpus lives and the reduced RawNet2 it trains belong to the demo application
(:mod:`cli.demo`); this module takes both as arguments. Deep scorers are reached through the scorer registry, so
this module (and a demo without them) never imports torch.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .baseline import LFCCGMMScorer
from .batch import score_trials
from .protocols import Trial, read_protocol
from .report import Comparison, compare_systems, fuse_score_files, spoof_attacks, write_report
from .scorefiles import LabelledScores, label_scores, read_scores
from .scorers import Scorer, ScorerNotFoundError, create_scorer, get_scorer

SPLITS = ("train", "dev", "eval")
#: The demo train split has 2-4·10^4 frames per class, a few hundred per component at 64 components (512 is
#: sized for the ~10^6-10^7 frames per class of ASVspoof 2019 LA).
DEMO_COMPONENTS = 64
FUSION = "Fusion (LFCC-GMM + AASIST)"

Progress = Callable[[str, int, int], None]


class CorpusNotFoundError(FileNotFoundError):
    """The demo corpus is not where it was looked for."""


@dataclass
class DemoResult:
    """What the demo produced: the comparison on eval, the report, and what was skipped and why."""

    comparison: Comparison
    report: Path
    systems: dict[str, LabelledScores]
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def load_corpus(corpus_dir: str | os.PathLike) -> dict[str, list[Trial]]:
    """The three splits of a corpus laid out as the demo's (``protocols/{train,dev,eval}.txt`` and ``flac/``) as
    trials with resolved audio paths."""
    corpus_dir = Path(corpus_dir)
    if not (corpus_dir / "protocols").is_dir() or not (corpus_dir / "flac").is_dir():
        raise CorpusNotFoundError(
            f"{corpus_dir}: no demo corpus here (expected protocols/ and flac/); in a source checkout it is "
            "data/demo, elsewhere pass its location with --corpus"
        )
    return {split: read_protocol(corpus_dir / "protocols" / f"{split}.txt", corpus_dir / "flac")
            for split in SPLITS}


def _score(scorer: Scorer, trials: list[Trial], path: Path, progress: Progress | None, stage: str) -> LabelledScores:
    result = score_trials(scorer, trials, path, chunk_size=16,
                          progress=None if progress is None else lambda d, n: progress(stage, d, n))
    if result.failures:
        first = result.failures[0]
        raise RuntimeError(f"{len(result.failures)} demo files failed to score, e.g. {first[1]}: {first[2]}")
    return label_scores(read_scores(path))


def _load_aasist(weights: str | os.PathLike | None) -> Scorer | str:
    """The AASIST scorer, or why it is unavailable (a missing file's message already says how to fetch it)."""
    try:
        return get_scorer("aasist").load(weights)
    except (ScorerNotFoundError, FileNotFoundError, ValueError) as exc:
        return str(exc)


def run_demo(
    output_dir: str | os.PathLike,
    *,
    corpus_dir: str | os.PathLike,
    components: int = DEMO_COMPONENTS,
    jobs: int = 1,
    aasist_weights: str | os.PathLike | None = None,
    use_aasist: bool = True,
    with_rawnet2: bool = False,
    rawnet2_config: Mapping[str, Any] | None = None,
    rawnet2_epochs: int = 20,
    seed: int = 0,
    progress: Progress | None = None,
) -> DemoResult:
    """Run the main job and write its report folder.

    Parameters
    ----------
    output_dir : path-like
        Report folder (score files, figures, ``report.md``, ``comparison.json``).
    corpus_dir : path-like
        The demo corpus (``protocols/{train,dev,eval}.txt`` and ``flac/``).
    components : int
        GMM components per class.
    jobs : int
        Processes for LFCC extraction and scoring.
    aasist_weights : path-like, optional
        A weights file or name (:func:`rawnet.weights.resolve_weights`); by default the bundled AASIST.
    use_aasist : bool
        Score with AASIST when its weights are found.
    with_rawnet2 : bool
        Also train a RawNet2 for ``rawnet2_epochs`` epochs, selected on dev EER, and score eval with it.
    rawnet2_config : mapping, optional
        Its model config (the asvspoof2021 architecture); default the official full config, which takes hours on
        a CPU where the demo application's reduced one takes minutes.
    progress : callable(stage, done, total), optional
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    splits = load_corpus(corpus_dir)
    seen = spoof_attacks(splits["train"]) | spoof_attacks(splits["dev"])
    dev: dict[str, LabelledScores] = {}
    ev: dict[str, LabelledScores] = {}
    skipped: dict[str, str] = {}
    seconds: dict[str, float] = {}

    start = time.perf_counter()
    lfcc_gmm = LFCCGMMScorer(n_components=components, random_state=seed, jobs=jobs)
    lfcc_gmm.fit(splits["train"], progress=progress)
    lfcc_gmm.save(output / "lfcc_gmm.npz")
    dev["LFCC-GMM"] = _score(lfcc_gmm, splits["dev"], output / "scores_dev_lfcc_gmm.txt", progress, "dev")
    ev["LFCC-GMM"] = _score(lfcc_gmm, splits["eval"], output / "scores_eval_lfcc_gmm.txt", progress, "eval")
    seconds["LFCC-GMM"] = time.perf_counter() - start

    if use_aasist:
        start = time.perf_counter()
        aasist = _load_aasist(aasist_weights)
        if isinstance(aasist, str):
            skipped["AASIST"] = aasist
        else:
            dev["AASIST"] = _score(aasist, splits["dev"], output / "scores_dev_aasist.txt", progress, "aasist dev")
            ev["AASIST"] = _score(aasist, splits["eval"], output / "scores_eval_aasist.txt", progress, "aasist eval")
            seconds["AASIST"] = time.perf_counter() - start

    if with_rawnet2:
        start = time.perf_counter()
        rawnet2 = create_scorer("rawnet2", config=rawnet2_config)
        run_dir = output / "rawnet2_run"
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a fresh quick run each time; the trainer refuses to overwrite a run
        rawnet2.fit(splits["train"], dev_trials=splits["dev"], epochs=rawnet2_epochs, seed=seed,
                    run_dir=run_dir, progress=progress)
        ev["RawNet2"] = _score(rawnet2, splits["eval"], output / "scores_eval_rawnet2.txt", progress, "rawnet2")
        seconds["RawNet2"] = time.perf_counter() - start

    if "AASIST" in ev:
        fusion = fuse_score_files([output / "scores_dev_lfcc_gmm.txt", output / "scores_dev_aasist.txt"],
                                  [output / "scores_eval_lfcc_gmm.txt", output / "scores_eval_aasist.txt"])
        fusion.write(output / "scores_eval_fusion.txt", output / "fusion.json")
        ev[FUSION] = label_scores(fusion.fused_table())

    comparison = compare_systems(ev, seen_attacks=seen)
    # Published weights say what they were trained on (rawnet's load records it); other files are named as given.
    aasist_origin = None if "AASIST" not in ev else (getattr(aasist, "training_summary_", None)
                                                      or {"file": str(aasist_weights or "$ANTISPOOF_AASIST_WEIGHTS")})
    notes = _notes(splits, seen, ev, skipped, components, rawnet2_epochs, aasist_origin)
    report = write_report(output, comparison, ev, title="antispoof demo: eval split of the embedded corpus",
                          notes=notes)
    return DemoResult(comparison, report, ev, skipped, seconds)


def _notes(splits: dict[str, list[Trial]], seen: frozenset[str], ran: Mapping[str, LabelledScores],
           skipped: dict[str, str], components: int, rawnet2_epochs: int,
           aasist_origin: Mapping[str, Any] | None = None) -> str:
    """What the report's readers need to know about the systems in the table, and only those."""
    counts = ", ".join(f"{split} {len(trials)} files ({sum(t.is_bonafide for t in trials)} bona fide)"
                       for split, trials in splits.items())
    unseen = sorted(spoof_attacks(splits["eval"]) - seen)
    systems = [f"LFCC-GMM: official 2019 LFCC (60 dims), {components} components per class, 10 EM iterations, "
               "trained on train only."]
    if "AASIST" in ran and aasist_origin is not None:
        if "trained_on" in aasist_origin:
            systems.append(f"AASIST: the official pretrained weights {aasist_origin['weights']} (trained on "
                           f"{aasist_origin['trained_on']}), not adapted to this corpus.")
        else:
            systems.append(f"AASIST: the weights of {aasist_origin.get('file')}.")
    if "RawNet2" in ran:
        systems.append(f"RawNet2: trained on train for {rawnet2_epochs} epochs, the epoch with the lowest dev EER "
                       "kept.")
    if FUSION in ran:
        systems.append("The fusion is linear logistic regression trained on dev scores and applied to eval; its "
                       "scores are calibrated log-likelihood ratios.")
    lines = [
        f"Corpus: {counts}. Attacks seen in train/dev: {', '.join(sorted(seen))}; unseen, eval only: "
        f"{', '.join(unseen) or 'none'}.",
        " ".join(systems),
    ]
    lines += [f"{name} was skipped: {reason}" for name, reason in skipped.items()]
    return "\n\n".join(lines)
