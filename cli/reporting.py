"""``antispoof compare`` (side-by-side results and a report folder), ``fuse`` and ``calibrate`` (scores → LLRs)."""

from __future__ import annotations

import json
from collections.abc import Collection

import click

from lfcc_gmm.protocols import read_protocol

from .options import EXISTING_FILE, NEW_DIR, NEW_FILE, bootstrap_options, stack_options

PRIOR = click.FloatRange(0, 1, min_open=True, max_open=True)


def _split(text: str | None) -> list[str] | None:
    return None if text is None else [part.strip() for part in text.split(",") if part.strip()]


@click.command()
@click.argument("scores", nargs=-1, required=True, type=EXISTING_FILE)
@click.option("--protocol", type=EXISTING_FILE,
              help="Protocol supplying keys and attacks for every score file (needed for 2-column files).")
@click.option("--names", help="Comma-separated system names, one per score file (default: the file stems).")
@click.option("--seen-attacks", help="Comma-separated attacks present in training, e.g. A01,A02,A03,A04,A05,A06.")
@click.option("--train-protocol", "train_protocols", multiple=True, type=EXISTING_FILE,
              help="Protocol of the training (or dev) data; its attacks count as seen. Repeatable.")
@click.option("--asv-scores", type=EXISTING_FILE, help="Organisers' ASV scores, to add min t-DCF to the table.")
@click.option("--prior", default=0.5, show_default=True, type=PRIOR, help="Bona fide prior of the min DCF.")
@click.option("-o", "--output", "output_dir", required=True, type=NEW_DIR,
              help="Report folder to write (created if needed).")
@click.option("--title", default="Countermeasure comparison", show_default=True, help="Title of report.md.")
@bootstrap_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object.")
def compare(scores, protocol, names, seen_attacks, train_protocols, asv_scores, prior, output_dir, title, ci,
            resamples, seed, as_json) -> None:
    """Compare systems side by side: pooled EER, min DCF, Cllr and the EER of every attack.

    \b
    SCORES: one score file per system, 4-column `FILE_ID ATTACK KEY SCORE` or
            2-column `FILE_ID SCORE` (or ASVspoof 5 `filename cm-score`) with --protocol.
            Higher score = more bona fide.

    Attacks are marked seen/unseen when the training attacks are known (--seen-attacks or
    --train-protocol); unseen attacks show how a system generalises. The report folder holds
    report.md (table, figures, a guide to reading them), det.png, histograms.png,
    comparison.json and comparison.csv.

    --ci 0.95 adds bootstrap intervals of each system's EER and DCF (min t-DCF with
    --asv-scores, else min DCF at --prior) and, for each pair of systems, a paired
    bootstrap of their difference: significant when its interval excludes 0. The
    systems must be scored on the same trials; speakers are resampled with all their
    trials when the protocol names two or more, else trials.

    \b
    Example (ASVspoof 2019 LA eval, trained on LA train):
      antispoof compare lfcc_gmm.eval.txt rawnet2.eval.txt --names LFCC-GMM,RawNet2 \\
          --protocol ASVspoof2019.LA.cm.eval.trl.txt \\
          --train-protocol ASVspoof2019.LA.cm.train.trn.txt -o report/ --ci 0.95
    """
    from lfcc_gmm.report import compare_systems, load_systems, spoof_attacks, write_report

    if seen_attacks is not None and train_protocols:
        raise click.UsageError("give --seen-attacks or --train-protocol, not both")
    name_list = _split(names)
    if name_list is not None and len(name_list) != len(scores):
        raise click.UsageError(f"--names gives {len(name_list)} name(s) for {len(scores)} score file(s)")
    trials = read_protocol(protocol) if protocol else None
    systems = load_systems(scores, trials, name_list)
    seen: Collection[str] | None = _split(seen_attacks)
    if train_protocols:
        seen = spoof_attacks(trial for path in train_protocols for trial in read_protocol(path))
    asv = None
    if asv_scores:
        from lfcc_gmm.scorefiles import read_asv_scores

        asv = read_asv_scores(asv_scores)
    comparison = compare_systems(systems, seen, asv=asv, prior=prior, confidence=ci, trials=trials,
                                 n_resamples=resamples, seed=seed)
    report = write_report(output_dir, comparison, systems, title=title)
    if as_json:
        click.echo(json.dumps({**comparison.to_dict(), "report": str(report)}, indent=1))
    else:
        click.echo(comparison.to_text())
        click.echo(f"Report: {report}")


def _run_fusion(train, train_protocol, apply, output, prior, model_out, as_json) -> None:
    from lfcc_gmm.report import fuse_score_files

    run = fuse_score_files(train, apply, train_trials=read_protocol(train_protocol) if train_protocol else None,
                           prior=prior)
    model_out = run.write(output, model_out)
    if as_json:
        click.echo(json.dumps({**run.summary(), "output": str(output), "model_file": str(model_out)}, indent=1))
    else:
        click.echo(run.to_text())
        columns = 4 if run.apply.keys is not None else 2
        click.echo(f"Wrote {output} ({len(run.fused):,} LLRs, {columns} columns) and {model_out}.")


_fusion_options = stack_options(
    click.option("--train-protocol", type=EXISTING_FILE,
                 help="Protocol of the training (dev) trials, for keys; not needed with 4-column files."),
    click.option("-o", "--output", required=True, type=NEW_FILE,
                 help="Score file of calibrated LLRs to write (4 columns when the applied files have keys)."),
    click.option("--prior", default=0.5, show_default=True, type=PRIOR,
                 help="P(bona fide) the training objective is weighted to."),
    click.option("--model-out", type=NEW_FILE,
                 help="Where to save the model JSON  [default: OUTPUT with its suffix replaced by .fusion.json, "
                      "e.g. fused.txt -> fused.fusion.json]"),
    click.option("--json", "as_json", is_flag=True, help="Print the model and its metrics as JSON."),
)


@click.command()
@click.option("--train", multiple=True, required=True, type=EXISTING_FILE,
              help="Development score file of one system; repeat once per system.")
@click.option("--apply", multiple=True, required=True, type=EXISTING_FILE,
              help="Evaluation score file of one system; repeat, same systems in the same order as --train.")
@_fusion_options
def fuse(train, apply, train_protocol, output, prior, model_out, as_json) -> None:
    """Fuse several systems into one calibrated score by linear logistic regression.

    Fusion learns one weight per system and an offset on development scores with keys, so that
    LLR = w1·score1 + w2·score2 + … + offset is a log-likelihood ratio (natural log): LLR > 0 favours
    bona fide, and thresholding at log((1-P)/P) is the Bayes decision for a bona fide prior P. Systems
    that fail on different attacks complement each other, so the fused EER can be lower than either's.

    Every --train file must hold the same trial IDs (and every --apply file the same IDs); mismatches
    are reported with counts and examples. The output score file and the model JSON
    (`antispoof.linear_fusion`: weights, offset, prior, system names) are written atomically.

    \b
    Example (dev to train, eval to fuse):
      antispoof fuse --train lfcc.dev.txt --train rawnet2.dev.txt \\
          --train-protocol ASVspoof2019.LA.cm.dev.trl.txt \\
          --apply lfcc.eval.txt --apply rawnet2.eval.txt -o fused.eval.txt --model-out fusion.json
    """
    if len(train) != len(apply):
        raise click.UsageError(f"{len(train)} --train file(s) but {len(apply)} --apply file(s): give the same "
                               "systems in the same order")
    _run_fusion(train, train_protocol, apply, output, prior, model_out, as_json)


@click.command()
@click.option("--train", required=True, type=EXISTING_FILE,
              help="Development score file with keys (or --train-protocol).")
@click.option("--apply", required=True, type=EXISTING_FILE, help="Score file to calibrate.")
@_fusion_options
def calibrate(train, apply, train_protocol, output, prior, model_out, as_json) -> None:
    """Turn one system's scores into calibrated log-likelihood ratios (an affine map learnt on dev scores).

    Raw scores rank trials but their values mean nothing in particular; after calibration
    LLR = a·score + b (natural log), LLR > 0 favours bona fide and Cllr approaches min Cllr.
    The ranking, hence the EER, is unchanged when a > 0. Same outputs as `antispoof fuse`.

    \b
    Example:
      antispoof calibrate --train rawnet2.dev.txt --train-protocol ASVspoof2019.LA.cm.dev.trl.txt \\
          --apply rawnet2.eval.txt -o rawnet2.eval.llr.txt
    """
    _run_fusion((train,), train_protocol, (apply,), output, prior, model_out, as_json)
