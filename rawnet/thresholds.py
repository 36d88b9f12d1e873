"""The deep scorers' default verdict thresholds and what they mean, without torch.

The torch scorers (:mod:`rawnet.scorers`) and the ONNX Runtime scorers (:mod:`rawnet.onnx_scorers`) of the same
network give the same verdicts because both ask this module.
"""

from __future__ import annotations

from lfcc_gmm.cards import official_aasist_threshold
from lfcc_gmm.verdicts import Threshold

#: What the default threshold on each kind of score is: the equal-posterior point for probabilities and
#: log-probabilities, the sign of the bona fide logit for raw logits (``rawnet.scorers.AASISTScorer`` says why that
#: approximates the two-class argmax).
OUTPUT_THRESHOLD_MEANINGS = {
    "log-softmax": "log 0.5, where the network's posterior of bona fide is one half (not calibrated)",
    "softmax": "0.5, where the network's posterior of bona fide is one half (not calibrated)",
    "logits": "0, the sign of the bona fide logit (not calibrated)",
}


def output_threshold(output_kind: str, value: float) -> Threshold:
    """The threshold ``value`` on a score of ``output_kind`` (a key of :data:`OUTPUT_THRESHOLD_MEANINGS`), with what
    it means."""
    try:
        return Threshold(value, OUTPUT_THRESHOLD_MEANINGS[output_kind])
    except KeyError:
        raise ValueError(f"unknown output kind {output_kind!r}; expected one of "
                         f"{', '.join(OUTPUT_THRESHOLD_MEANINGS)}") from None


def aasist_threshold(fingerprint: str | None, default: float) -> Threshold:
    """For the official AASIST or AASIST-L weights (told by their :func:`rawnet.checkpoint.state_fingerprint`), their
    equal error rate point on the demo dev split, whole file (:func:`lfcc_gmm.cards.official_aasist_threshold`); for
    any other weights ``default``, the sign of the bona fide logit."""
    return official_aasist_threshold(fingerprint) or Threshold(
        default, "0, the sign of the bona fide logit (not calibrated; these are not the official weights, whose "
                 "measured threshold applies only to them)")
