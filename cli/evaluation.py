"""``antispoof evaluate``: official ASVspoof metrics for a score file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from lfcc_gmm.protocols import read_protocol
from lfcc_gmm.scorefiles import label_scores, read_asv_scores, read_scores

from .options import EXISTING_FILE


@click.command()
@click.argument("scores", type=EXISTING_FILE)
@click.option("--protocol", type=EXISTING_FILE,
              help="Protocol supplying keys and attacks (needed for a 2-column score file).")
@click.option("--asv-scores", type=EXISTING_FILE,
              help="Organisers' ASV scores (e.g. ASVspoof2019.LA.asv.eval.gi.trl.scores.txt) for min t-DCF.")
@click.option("--prior", default=0.5, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Bona fide prior for actual/minimum DCF.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the report.")
def evaluate(scores: Path, protocol: Path | None, asv_scores: Path | None, prior: float, as_json: bool) -> None:
    """Compute EER, min t-DCF (with --asv-scores) and per-attack EER exactly as the official ASVspoof scripts.

    \b
    SCORES: 4-column `FILE_ID ATTACK KEY SCORE` (self-labelled) or
            2-column `FILE_ID SCORE` together with --protocol.
    Higher score = more bona fide. Every ID must appear on both sides.

    \b
    Example (ASVspoof 2019 LA eval):
      antispoof evaluate scores.txt --protocol ASVspoof2019.LA.cm.eval.trl.txt \\
          --asv-scores ASVspoof2019.LA.asv.eval.gi.trl.scores.txt
    """
    from lfcc_gmm.metrics import evaluate as evaluate_scores  # scikit-learn is slow to import; only here

    table = read_scores(scores)
    labelled = label_scores(table, read_protocol(protocol) if protocol else None)
    asv = read_asv_scores(asv_scores) if asv_scores else None
    result = evaluate_scores(labelled.scores, labelled.keys, labelled.attacks, asv=asv, prior=prior)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
    else:
        click.echo(result.to_text(scores.name))
