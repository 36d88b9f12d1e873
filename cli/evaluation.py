"""``antispoof evaluate``: official ASVspoof metrics for a score file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import EXISTING_FILE, LibraryChoice, bootstrap_options


@click.command()
@click.argument("scores", type=EXISTING_FILE)
@click.option("--protocol", type=EXISTING_FILE,
              help="Keys of the trials: any ASVspoof protocol, the released ASVspoof 5 protocols or the ASVspoof 5 "
                   "package's CM or SASV key file (needed unless SCORES has 4 columns).")
@click.option("--metrics", type=LibraryChoice("lfcc_gmm.evaluation:METRIC_SETS"), default="auto", show_default=True,
              help="Metric set: asvspoof2019, asvspoof5 (Track 1) or sasv (Track 2); auto picks ASVspoof 5 for its "
                   "files and says so.")
@click.option("--asv-scores", type=EXISTING_FILE,
              help="asvspoof2019: the organisers' ASV scores (SOURCE KEY SCORE) for min t-DCF. sasv: an ASV system's "
                   "scores (a SASV score file's asv-score, or SOURCE KEY SCORE) whose error rates replace the "
                   "organisers' pooled ones in min t-DCF.")
@click.option("--prior", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="asvspoof2019 only: P(bona fide) of the actual and minimum DCF  [default: 0.5]")
@bootstrap_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def evaluate(scores: Path, protocol: Path | None, metrics: str, asv_scores: Path | None, prior: float | None,
             ci: float | None, resamples: int, seed: int, as_json: bool) -> None:
    """Compute the official ASVspoof metrics of a score file, exactly as the organisers' code does.

    \b
    SCORES (higher = more bona fide; every ID must appear in the protocol and back):
      2 columns  FILE_ID SCORE, with --protocol
      4 columns  FILE_ID ATTACK KEY SCORE (self-labelled)
      ASVspoof 5 CM file    header `filename cm-score`, with --protocol
      ASVspoof 5 SASV file  header `spk filename cm-score asv-score sasv-score`, with the SASV key

    \b
    Metric sets (--metrics; auto chooses from the files and says what it chose):
      asvspoof2019  EER, min t-DCF (with --asv-scores), per-attack EER, Cllr, DCF
      asvspoof5     Track 1: min DCF (primary), act DCF, Cllr (bits), EER; per attack,
                    and per codec and codec quality when the protocol names codecs
      sasv          Track 2: a-DCF (primary), min t-DCF with the organisers' pooled
                    ASV error rates (or those of --asv-scores), t-EER (exact)

    --ci 0.95 adds bootstrap intervals of the EER and the primary DCF (sasv: the a-DCF
    and min t-DCF), resampling speakers with all their trials when the protocol (sasv:
    the score file's target speakers) names two or more, else trials. With a few
    hundred trials they are wide: read them before trusting a difference.

    \b
    Examples:
      antispoof evaluate scores.txt --protocol ASVspoof2019.LA.cm.eval.trl.txt \\
          --asv-scores ASVspoof2019.LA.asv.eval.gi.trl.scores.txt
      antispoof evaluate cm_scores.tsv --protocol ASVspoof5.eval.track_1.tsv --json
      antispoof evaluate sasv_scores.tsv --protocol sasv_keys.tsv --metrics sasv
      antispoof evaluate eval_scores.txt --ci 0.95 --protocol data/demo/protocols/eval.txt
    """
    from lfcc_gmm.evaluation import MetricsOptionError, evaluate_score_file

    try:
        result = evaluate_score_file(scores, protocol, metrics=metrics, asv_scores=asv_scores, prior=prior,
                                     confidence=ci, n_resamples=resamples, seed=seed)
    except MetricsOptionError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps(result.to_dict(), indent=1) if as_json else result.to_text())
