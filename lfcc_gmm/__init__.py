"""antispoof core: audio I/O, ASVspoof protocols, LFCC features, GMM back end, metrics, scorers.

Importing this package is cheap and never imports torch; the public names below are loaded on
first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "AudioError": "audio",
    "load_audio": "audio",
    "Trial": "protocols",
    "read_protocol": "protocols",
    "read_scores": "scorefiles",
    "write_scores": "scorefiles",
    "read_sasv_scores": "scorefiles",
    "lfcc": "features",
    "LFCCConfig": "features",
    "PRESETS": "features",
    "LFCCStream": "features",
    "iter_lfcc": "features",
    "extract_features": "extraction",
    "iter_features": "extraction",
    "iter_file_lfcc": "extraction",
    "DiagonalGMM": "gmm",
    "compute_eer": "metrics",
    "compute_min_tdcf": "metrics",
    "evaluate": "metrics",
    "Evaluation": "metrics",
    "evaluate_track1": "asvspoof5",
    "Track1Evaluation": "asvspoof5",
    "evaluate_sasv": "asvspoof5",
    "SASVEvaluation": "asvspoof5",
    "a_dcf": "asvspoof5",
    "min_tdcf_revised": "asvspoof5",
    "t_eer": "asvspoof5",
    "evaluate_score_file": "evaluation",
    "bootstrap_ci": "bootstrap",
    "paired_bootstrap": "bootstrap",
    "LinearFusion": "fusion",
    "compare_systems": "report",
    "write_report": "report",
    "Scorer": "scorers",
    "get_scorer": "scorers",
    "load_scorer": "scorers",
    "create_scorer": "scorers",
    "LFCCGMMScorer": "baseline",
    "parse_condition": "degrade",
    "parse_conditions": "degrade",
    "Augmenter": "augment",
    "rawboost": "augment",
    "detect_speech": "speech",
    "SpeechActivity": "speech",
    "MIN_SPEECH_S": "speech",
    "check_signal": "checks",
    "Check": "checks",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lfcc_gmm' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
