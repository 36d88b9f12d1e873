"""ASVspoof 5 Track 1 and Track 2 metrics at evaluation scale: the organisers' evaluation package against
lfcc_gmm.asvspoof5, side by side; and bootstrap intervals (Track 1 and Track 2) against a loop over resamples.

Data. No labelled set of evaluation size ships with the package, so the sets are drawn from the organisers' real
dev scores (``Tool-score-fusion/dev_scores_label.csv``: 29,548 trials with ASV and CM scores): with replacement,
class by class in the dev set's proportions, seeded. Track 1: 680,774 trials (the size of the ASVspoof 5 Track 1
evaluation set); Track 2: 400,000 trials, SASV score = ASV score + 0.1 · CM score (as in the shared reference). Each
real score recurs about 23 (Track 1) or 14 (Track 2) times, so the sets are heavy in ties. They are written in the
package's file formats and read once by the package's own loaders (``util.load_cm_scores_keys``,
``util.load_sasv_scores_keys``); both sides then get the same arrays, so file reading is excluded on both sides.
Every result must be equal, bit for bit, before any timing is printed.

The package's ``calculate_aDCF_tdcf_tEER`` computes the t-EER with ``compute_teer_accelerated`` (coarse-to-fine);
ours is the exhaustive ``compute_teer``, which is O(n²) in the package, so that one is timed on subsets.

Run from the repository root::

    python benchmarks/bench_asvspoof5_metrics.py --official-dir PATH [--quick]

PATH is a checkout of ``asvspoof-challenge/asvspoof5`` (commit fe23d30, or any tree with its ``evaluation-package``
and ``Tool-score-fusion`` folders); ``$ASVSPOOF5_OFFICIAL_DIR`` is the default. The package's loaders need pandas
(``make bench`` installs it). Without the folder, or without pandas, the script says so and skips.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from common import REFERENCE_DIR, median_seconds

from lfcc_gmm.asvspoof5 import a_dcf, evaluate_sasv, evaluate_track1, min_tdcf_revised, t_eer, track1_min_dcf
from lfcc_gmm.bootstrap import bootstrap_ci, resample_counts, sasv_bootstrap_ci
from lfcc_gmm.metrics import compute_eer

TRACK1_TRIALS = 680_774
TRACK2_TRIALS = 400_000
LABELS = {1: "target", 2: "nontarget", 0: "spoof"}  # dev_scores_label.csv's sasv_label column


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The package divides by zero on purpose in its t-EER search; its warnings are not results."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def load_official(folder: Path):
    """The package's modules, imported from its own folder."""
    package = folder / "evaluation-package" if (folder / "evaluation-package").is_dir() else folder
    sys.path.insert(0, str(package))
    import calculate_metrics
    import calculate_modules
    import util

    return calculate_metrics, calculate_modules, util


def dev_scores(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ASV scores, CM scores, labels) of the organisers' dev set."""
    path = next(p for p in (folder / "Tool-score-fusion" / "dev_scores_label.csv",
                            folder.parent / "Tool-score-fusion" / "dev_scores_label.csv") if p.exists())
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    asv = np.array([float(r["asv_score"]) for r in rows])
    cm = np.array([float(r["cm_score"]) for r in rows])
    labels = np.array([LABELS[int(float(r["sasv_label"]))] for r in rows])
    return asv, cm, labels


def resample(labels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``size`` trials drawn with replacement within each class, in the classes' proportions."""
    names, counts = np.unique(labels, return_counts=True)
    sizes = np.floor(counts / counts.sum() * size).astype(int)
    sizes[np.argmax(counts)] += size - sizes.sum()
    chosen = [rng.choice(np.flatnonzero(labels == name), n) for name, n in zip(names, sizes, strict=True)]
    return rng.permutation(np.concatenate(chosen))


def write_tsv(path: Path, header: list[str], columns: list[np.ndarray]) -> None:
    with open(path, "w") as handle:
        handle.write("\t".join(header) + "\n")
        for row in zip(*columns, strict=True):
            handle.write("\t".join(repr(x) if isinstance(x, float) else str(x) for x in row) + "\n")


def track1(official, dev, rng: np.random.Generator, repeats: int) -> list[str]:
    calculate_metrics, _, util = official
    asv, cm, labels = dev
    chosen = resample(labels, TRACK1_TRIALS, rng)
    names = np.array([f"E_{i:07d}" for i in range(TRACK1_TRIALS)])
    keys = np.where(labels[chosen] == "spoof", "spoof", "bonafide")
    with tempfile.TemporaryDirectory() as tmp:
        write_tsv(Path(tmp) / "scores.tsv", ["filename", "cm-score"], [names, cm[chosen].tolist()])
        write_tsv(Path(tmp) / "keys.tsv", ["filename", "cm-label"], [names, keys])
        scores, cm_keys = util.load_cm_scores_keys(Path(tmp) / "scores.tsv", Path(tmp) / "keys.tsv")

    def theirs():
        return calculate_metrics.calculate_minDCF_EER_CLLR_actDCF(scores, cm_keys, "", printout=False)

    def ours():
        return evaluate_track1(scores, cm_keys)

    # Breakdowns need labels the dev scores do not have: 32 attacks and 12 codec conditions drawn at random.
    attacks = np.where(cm_keys == "spoof", rng.choice([f"A{i:02d}" for i in range(1, 33)], scores.size), "-")
    codecs = rng.choice(["-"] + [f"C{i:02d}" for i in range(1, 12)], scores.size)

    def ours_breakdowns():
        return evaluate_track1(scores, cm_keys, attacks, codecs)

    min_dcf, eer, cllr, act_dcf = theirs()
    result = ours()
    expected = (min_dcf, eer * 100, cllr, act_dcf)  # the package reports the EER as a fraction
    got = (result.min_dcf, result.eer_percent, result.cllr_bits, result.act_dcf)
    if tuple(float(x) for x in expected) != got:
        sys.exit(f"Track 1 results differ: package {expected}, ours {got}")
    official_s = median_seconds(theirs, repeats)
    lines = [f"Track 1: {scores.size:,} trials ({np.sum(cm_keys == 'bonafide'):,} bona fide); min DCF "
             f"{result.min_dcf:.6f}, EER {result.eer_percent:.4f} %, Cllr {result.cllr_bits:.5f}, act DCF "
             f"{result.act_dcf:.6f}: identical on both sides",
             f"{'what':<66} {'s':>8} {'speed-up':>9}",
             f"{'package: calculate_minDCF_EER_CLLR_actDCF':<66} {official_s:>8.3f} {'1.00x':>9}"]
    for label, fn in (("ours: evaluate_track1 (same four numbers)", ours),
                      ("ours: evaluate_track1 + per-attack (32) and per-codec (12) tables", ours_breakdowns)):
        seconds = median_seconds(fn, repeats)
        lines.append(f"{label:<66} {seconds:>8.3f} {official_s / seconds:>8.2f}x")
    return lines


def official_curves(modules, cm, asv, labels):
    _, calculate_modules, _ = modules
    classes = [labels == name for name in ("target", "nontarget", "spoof")]
    asv_curves = calculate_modules.compute_Pmiss_Pfa_Pspoof_curves(*(asv[c] for c in classes))
    cm_curve = calculate_modules.compute_det_curve(np.concatenate([cm[classes[0]], cm[classes[1]]]), cm[classes[2]])
    return cm_curve, asv_curves


def track2(official, dev, rng: np.random.Generator, repeats: int, quick: bool) -> list[str]:
    calculate_metrics, calculate_modules, util = official
    asv_dev, cm_dev, labels_dev = dev
    chosen = resample(labels_dev, TRACK2_TRIALS, rng)
    names = np.array([f"E_{i:07d}" for i in range(TRACK2_TRIALS)])
    speakers = np.array([f"E_{i % 5000:04d}" for i in range(TRACK2_TRIALS)])
    labels = labels_dev[chosen]
    cm_label = np.where(labels == "spoof", "spoof", "bonafide")
    sasv = asv_dev[chosen] + 0.1 * cm_dev[chosen]
    with tempfile.TemporaryDirectory() as tmp:
        write_tsv(Path(tmp) / "sasv.tsv", ["spk", "filename", "cm-score", "asv-score", "sasv-score"],
                  [speakers, names, cm_dev[chosen].tolist(), asv_dev[chosen].tolist(), sasv.tolist()])
        write_tsv(Path(tmp) / "keys.tsv", ["spk", "filename", "cm-label", "asv-label"],
                  [speakers, names, cm_label, labels])
        cm, asv, sasv_scores, cm_keys, asv_keys = util.load_sasv_scores_keys(Path(tmp) / "sasv.tsv",
                                                                              Path(tmp) / "keys.tsv")

    def theirs():
        with quiet():
            return calculate_metrics.calculate_aDCF_tdcf_tEER(cm, asv, sasv_scores, cm_keys, asv_keys, "",
                                                             printout=False)

    def ours():
        return evaluate_sasv(sasv_scores, asv_keys, cm, asv)

    expected = theirs()
    result = ours()
    got = (result.a_dcf, result.min_tdcf, result.t_eer_percent)
    if tuple(float(x) for x in expected) != got:
        sys.exit(f"Track 2 results differ: package {expected}, ours {got}")
    official_s = median_seconds(theirs, repeats)
    ours_s = median_seconds(ours, repeats)
    counts = {name: int(np.sum(asv_keys == name)) for name in ("target", "nontarget", "spoof")}
    lines = [f"Track 2: {asv_keys.size:,} trials ({counts['target']:,} target, {counts['nontarget']:,} non-target, "
             f"{counts['spoof']:,} spoof); a-DCF {result.a_dcf:.6f}, min t-DCF {result.min_tdcf:.6f}, t-EER "
             f"{result.t_eer_percent:.4f} %: identical on both sides (the package's accelerated t-EER equals the "
             "exhaustive one here)",
             f"{'what':<66} {'s':>8} {'speed-up':>9}",
             f"{'package: calculate_aDCF_tdcf_tEER (accelerated t-EER)':<66} {official_s:>8.3f} {'1.00x':>9}",
             f"{'ours: evaluate_sasv (exhaustive t-EER)':<66} {ours_s:>8.3f} {official_s / ours_s:>8.2f}x",
             "", "Exhaustive t-EER (the package's compute_teer, O(n²)) on random subsets of the Track 2 set:",
             f"{'trials':>8} {'package s':>10} {'ours s':>8} {'speed-up':>9}  {'package, extrapolated to 400,000':>34}"]
    for size in (2_000, 6_000) if quick else (4_000, 8_000, 16_000):
        subset = rng.choice(asv_keys.size, size, replace=False)
        (m_cm, f_cm, tau_cm), (m_asv, f_non, f_spf, tau_asv) = official_curves(
            official, cm[subset], asv[subset], asv_keys[subset])
        start = time.perf_counter()
        with quiet():
            exhaustive = calculate_modules.compute_teer(m_cm, f_cm, tau_cm, m_asv, f_non, f_spf, tau_asv)
        package_s = time.perf_counter() - start
        mine = t_eer(cm[subset], asv[subset], asv_keys[subset]).t_eer * 100
        if mine != exhaustive:
            sys.exit(f"t-EER on {size:,} trials differs: package {exhaustive}, ours {mine}")
        ours_sub = median_seconds(lambda s=subset: t_eer(cm[s], asv[s], asv_keys[s]), repeats)
        hours = package_s * (TRACK2_TRIALS / size) ** 2 / 3600
        lines.append(f"{size:>8,} {package_s:>10.2f} {ours_sub:>8.4f} {package_s / ours_sub:>8.0f}x  "
                     f"{hours:>31.1f} h")
    return lines


def bootstrap_section(rng: np.random.Generator, repeats: int, quick: bool) -> list[str]:
    """Ours against the plain loop (resample, then compute_eer and track1_min_dcf) on the same resamples."""
    sets = [("122 trials (the demo eval split's 50 bona fide + 72 spoof; Gaussian scores)",
             np.concatenate([rng.normal(2, 1, 50), rng.normal(0, 1, 72)]), np.repeat(["bonafide", "spoof"], [50, 72]),
             None, 1000)]
    metrics = REFERENCE_DIR / "metrics"
    if (metrics / "rawgat_st_add.eval.scores.txt").exists():
        from lfcc_gmm.protocols import read_protocol
        from lfcc_gmm.scorefiles import label_scores, read_scores

        trials = read_protocol(metrics / "ASVspoof2019.LA.cm.eval.trl.txt")
        table = label_scores(read_scores(metrics / "rawgat_st_add.eval.scores.txt"), trials)
        speaker = {t.file_id: t.speaker for t in trials}
        sets.append(("71,237 trials (RawGAT-ST, ASVspoof 2019 LA eval)", table.scores, table.keys,
                     np.array([speaker[i] for i in table.ids]), 20 if quick else 100))
    lines = [f"{'what':<76} {'resamples':>9} {'s':>8} {'speed-up':>9}"]
    for label, scores, keys, speakers, n_loop in sets:
        bona = keys == "bonafide"

        def loop(n, scores=scores, keys=keys, bona=bona):
            out = []
            for copies in resample_counts(keys, n_resamples=n):
                b, s = np.repeat(scores[bona], copies[bona]), np.repeat(scores[~bona], copies[~bona])
                out.append((100 * compute_eer(b, s)[0], track1_min_dcf(b, s)))
            return out

        ci = bootstrap_ci(scores, keys, n_resamples=n_loop)
        if loop(n_loop) != list(zip(ci.replicates["eer_percent"], ci.replicates["min_dcf"], strict=True)):
            sys.exit(f"bootstrap replicates differ from the loop on {label}")
        loop_s = median_seconds(lambda n=n_loop: loop(n), 1 if n_loop < 1000 else repeats)
        ours_same = median_seconds(lambda s=scores, k=keys, n=n_loop: bootstrap_ci(s, k, n_resamples=n), repeats)
        lines += [label,
                  f"{'  loop: resample, compute_eer + track1_min_dcf':<76} {n_loop:>9,} {loop_s:>8.3f} {'1.00x':>9}",
                  f"{'  ours: bootstrap_ci, trials within each class':<76} {n_loop:>9,} {ours_same:>8.3f} "
                  f"{loop_s / ours_same:>8.1f}x"]
        if n_loop < 1000:
            full = median_seconds(lambda s=scores, k=keys: bootstrap_ci(s, k, n_resamples=1000), repeats)
            lines.append(f"{'  ours: bootstrap_ci, trials within each class':<76} {1000:>9,} {full:>8.3f}")
        if speakers is not None:
            clusters = median_seconds(lambda s=scores, k=keys, p=speakers: bootstrap_ci(s, k, p, n_resamples=1000),
                                      repeats)
            lines.append(f"{f'  ours: bootstrap_ci, {np.unique(speakers).size} speakers as clusters':<76} "
                         f"{1000:>9,} {clusters:>8.3f}")
    return lines + sasv_bootstrap_section(repeats, quick)


def sasv_bootstrap_section(repeats: int, quick: bool) -> list[str]:
    """Track 2 intervals (a-DCF and min t-DCF) against the loop, on the shared dev half's 14,774 SASV trials."""
    folder = REFERENCE_DIR / "asvspoof5"
    if not (folder / "dev_half.sasv.scores.tsv").exists():
        return [f"Track 2 intervals skipped: no shared SASV scores in {folder}"]
    from lfcc_gmm.protocols import read_protocol
    from lfcc_gmm.scorefiles import label_sasv_scores, read_sasv_scores

    table = read_sasv_scores(folder / "dev_half.sasv.scores.tsv")
    labels = label_sasv_scores(table, read_protocol(folder / "dev_half.sasv.keys.tsv")).labels
    sasv, cm, speakers = table.sasv_scores, table.cm_scores, np.asarray(table.speakers)
    n_loop = 10 if quick else 50

    def loop(n):
        out = []
        for copies in resample_counts(labels, n_resamples=n):
            drawn = np.repeat(np.arange(labels.size), copies)
            out.append((a_dcf(sasv[drawn], labels[drawn]), min_tdcf_revised(cm[drawn], labels[drawn])))
        return out

    ci = sasv_bootstrap_ci(sasv, labels, cm_scores=cm, n_resamples=n_loop)
    if loop(n_loop) != list(zip(ci.replicates["a_dcf"], ci.replicates["min_tdcf"], strict=True)):
        sys.exit("SASV bootstrap replicates differ from the loop")
    loop_s = median_seconds(lambda: loop(n_loop), 1)
    ours = median_seconds(lambda: sasv_bootstrap_ci(sasv, labels, cm_scores=cm, n_resamples=n_loop), repeats)
    full = median_seconds(lambda: sasv_bootstrap_ci(sasv, labels, speakers, cm_scores=cm, n_resamples=1000), repeats)
    return [f"{labels.size:,} SASV trials (the shared dev half): a-DCF and min t-DCF",
            f"{'  loop: resample, a_dcf + min_tdcf_revised':<76} {n_loop:>9,} {loop_s:>8.3f} {'1.00x':>9}",
            f"{'  ours: sasv_bootstrap_ci, trials within each class':<76} {n_loop:>9,} {ours:>8.3f} "
            f"{loop_s / ours:>8.1f}x",
            f"{f'  ours: sasv_bootstrap_ci, {np.unique(speakers).size} target speakers as clusters':<76} "
            f"{1000:>9,} {full:>8.3f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-dir", type=Path, default=os.environ.get("ASVSPOOF5_OFFICIAL_DIR"),
                        help="checkout of asvspoof-challenge/asvspoof5 (default: $ASVSPOOF5_OFFICIAL_DIR)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and smaller t-EER subsets")
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    rng = np.random.default_rng(20)
    lines = []
    if args.official_dir is None or not Path(args.official_dir).is_dir():
        lines.append("package comparison skipped: give --official-dir (or set ASVSPOOF5_OFFICIAL_DIR) to a checkout "
                     "of asvspoof-challenge/asvspoof5")
    else:
        try:
            official = load_official(Path(args.official_dir))
        except ImportError as exc:
            official = None
            lines.append(f"package comparison skipped: the package cannot be imported ({exc}); pandas is needed")
        if official is not None:
            dev = dev_scores(Path(args.official_dir))
            lines += track1(official, dev, rng, repeats)
            lines.append("")
            lines += track2(official, dev, rng, repeats, args.quick)
    lines += ["", "Bootstrap intervals (EER and min DCF), against the per-resample loop on the same resamples "
              "(replicates identical):"]
    lines += bootstrap_section(rng, repeats, args.quick)
    print(f"numpy {np.__version__}; medians of {repeats} run(s) after a warm-up unless a single run is said")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
