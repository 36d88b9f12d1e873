"""Full ASVspoof 2019 evaluation (EER + min t-DCF + per-attack EER) of the 71,237 RawGAT-ST eval trials:
the official code's approach against lfcc_gmm.metrics, side by side.

The baseline mirrors the official ``eval_metrics.py`` / ``evaluate_tDCF_asvspoof19.py`` on arrays: a stable
merge sort of the concatenated [bona fide, spoof] scores for every EER (pooled, ASV, and each attack), string
masks per attack, Python ``sum`` for the ASV error counts, and the DET curve sorted again for the t-DCF. Both
sides get the same arrays (file reading is not timed) and must agree exactly before any timing is printed.

Run from the repository root: ``python benchmarks/bench_metrics.py [--quick]``. Skips with a message when the
reference files (``ANTISPOOF_REFERENCE_DIR``, default ``../shared/reference``) are absent.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from common import REFERENCE_DIR, median_seconds

from lfcc_gmm.metrics import compute_eer, compute_min_tdcf, evaluate, per_attack_eer
from lfcc_gmm.scorefiles import read_asv_scores, read_scores

P_SPOOF = 0.05
COST = {"Pspoof": P_SPOOF, "Ptar": (1 - P_SPOOF) * 0.99, "Pnon": (1 - P_SPOOF) * 0.01,
        "Cmiss_asv": 1, "Cfa_asv": 10, "Cmiss_cm": 1, "Cfa_cm": 10}


def official_det_curve(target, nontarget):
    n = target.size + nontarget.size
    scores = np.concatenate((target, nontarget))
    labels = np.concatenate((np.ones(target.size), np.zeros(nontarget.size)))
    order = np.argsort(scores, kind="mergesort")
    labels = labels[order]
    target_sums = np.cumsum(labels)
    nontarget_sums = nontarget.size - (np.arange(1, n + 1) - target_sums)
    frr = np.concatenate((np.atleast_1d(0), target_sums / target.size))
    far = np.concatenate((np.atleast_1d(1), nontarget_sums / nontarget.size))
    thresholds = np.concatenate((np.atleast_1d(scores[order[0]] - 0.001), scores[order]))
    return frr, far, thresholds


def official_eer(target, nontarget):
    frr, far, thresholds = official_det_curve(target, nontarget)
    k = np.argmin(np.abs(frr - far))
    return np.mean((frr[k], far[k])), thresholds[k]


def official_evaluation(scores, keys, attacks, asv_target, asv_nontarget, asv_spoof):
    bona, spoof = scores[keys == "bonafide"], scores[keys == "spoof"]
    _, asv_threshold = official_eer(asv_target, asv_nontarget)
    eer = official_eer(bona, spoof)[0]
    per_attack = {a: official_eer(bona, scores[attacks == a])[0] for a in np.unique(attacks[keys == "spoof"])}
    p_fa_asv = sum(asv_nontarget >= asv_threshold) / asv_nontarget.size
    p_miss_asv = sum(asv_target < asv_threshold) / asv_target.size
    p_miss_spoof_asv = np.sum(asv_spoof < asv_threshold) / asv_spoof.size
    p_miss_cm, p_fa_cm, _ = official_det_curve(bona, spoof)
    c1 = COST["Ptar"] * (COST["Cmiss_cm"] - COST["Cmiss_asv"] * p_miss_asv) - COST["Pnon"] * COST["Cfa_asv"] * p_fa_asv
    c2 = COST["Cfa_cm"] * COST["Pspoof"] * (1 - p_miss_spoof_asv)
    tdcf = (c1 * p_miss_cm + c2 * p_fa_cm) / np.minimum(c1, c2)
    return eer, tdcf[np.argmin(tdcf)], per_attack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats")
    args = parser.parse_args()
    repeats = 5 if args.quick else 21
    metrics_dir = REFERENCE_DIR / "metrics"
    if not metrics_dir.is_dir():
        print(f"skipped: reference files not found at {metrics_dir} (set ANTISPOOF_REFERENCE_DIR)")
        return

    table = read_scores(metrics_dir / "rawgat_st_add.eval.scores.txt")
    asv = read_asv_scores(metrics_dir / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt")
    scores, keys, attacks = table.scores, np.asarray(table.keys), np.asarray(table.attacks)
    bona, spoof = scores[keys == "bonafide"], scores[keys == "spoof"]
    asv_arrays = (asv.target, asv.nontarget, asv.spoof)

    def ours_evaluate():
        return evaluate(scores, keys, attacks, asv)

    def ours_functions():
        return (compute_eer(bona, spoof)[0], compute_min_tdcf(bona, spoof, *asv_arrays),
                per_attack_eer(scores, keys, attacks))

    def baseline():
        return official_evaluation(scores, keys, attacks, *asv_arrays)

    expected = baseline()
    result = ours_evaluate()
    if (result.eer, result.min_tdcf, result.per_attack_eer) != expected or ours_functions() != expected:
        sys.exit(f"results differ: official-style {expected}, ours {result}")

    official = median_seconds(baseline, repeats)
    print(f"numpy {np.__version__}; {scores.size:,} trials ({bona.size:,} bona fide, {spoof.size:,} spoof), "
          f"{len(result.per_attack_eer)} attacks, {asv.target.size + asv.nontarget.size + asv.spoof.size:,} ASV "
          f"trials; median of {repeats} runs; results identical")
    print(f"{'what':<62} {'ms':>8} {'speed-up':>9}")
    print(f"{'official approach: EER + min t-DCF + per-attack EER':<62} {1e3 * official:>8.1f} {'1.00x':>9}")
    for label, fn in (
        ("ours, evaluate() (same + Cllr, min Cllr, act/min DCF)", ours_evaluate),
        ("ours, compute_eer + compute_min_tdcf + per_attack_eer", ours_functions),
    ):
        seconds = median_seconds(fn, repeats)
        print(f"{label:<62} {1e3 * seconds:>8.1f} {official / seconds:>8.2f}x")


if __name__ == "__main__":
    main()
