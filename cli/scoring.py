"""``antispoof score`` and ``antispoof scorers``."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import click

from lfcc_gmm.audio import AudioConversionWarning
from lfcc_gmm.batch import converted_files, score_isolating_failures, score_trials, write_conversions
from lfcc_gmm.scorers import available_scorers, get_scorer, load_scorer

from .options import (
    MODEL_FILE_OR_WEIGHTS,
    NEW_FILE,
    backend_options,
    device_option,
    input_options,
    progress_bar,
    select_trials,
)

#: Up to this many loose files get one human-readable verdict line each; more need a score file (-o).
VERDICT_LIMIT = 20
#: Converted files named on the terminal before the rest go to OUTPUT.conversions.tsv.
NOTE_LIMIT = 20


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scorer instead of a table.")
def scorers(as_json: bool) -> None:
    """List the installed scorers (built-in and third-party plug-ins)."""
    rows = []
    for name, entry_point in sorted(available_scorers().items()):
        try:
            cls = get_scorer(name)
            rows.append({"name": name, "target": entry_point.value, "available": True,
                         "description": cls.description, "error": None})
        except Exception as exc:  # a broken plug-in must not hide the others
            rows.append({"name": name, "target": entry_point.value, "available": False,
                         "description": "", "error": str(exc)})
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        status = row["description"] if row["available"] else f"UNAVAILABLE: {row['error']}"
        click.echo(f"{row['name']:<12} {status}")


@contextlib.contextmanager
def conversions_named_once() -> Iterator[None]:
    """Silence the loaders' conversion notes: the command names each converted file once itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        yield


def _note_conversions(trials, output: Path) -> None:
    """Name every file that will be resampled or down-mixed: on stderr, and in a TSV when there are many."""
    converted = converted_files(trials)
    if not converted:
        return
    click.echo(f"note: {len(converted)} file(s) are not 16 kHz mono and will be converted:", err=True)
    for trial, notes in converted[:NOTE_LIMIT]:
        click.echo(f"note: {trial.path}: {'; '.join(notes)}", err=True)
    if len(converted) > NOTE_LIMIT:
        listing = Path(f"{output}.conversions.tsv")
        write_conversions(listing, converted)
        click.echo(f"note: … and {len(converted) - NOTE_LIMIT} more, all listed in {listing}", err=True)


@click.command()
# readable=False: an unreadable file is one failure of the batch, not a usage error that stops it.
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path, readable=False))
@input_options
@click.option("--scorer", "scorer_name", default="lfcc-gmm", show_default=True,
              help="Registered scorer name (see `antispoof scorers`).")
@click.option("--model", "--weights", "model_path", type=MODEL_FILE_OR_WEIGHTS,
              help="Trained model / checkpoint / weights file, or bundled weights by name (aasist, aasist-l, "
                   "aasist-asvspoof5; see `antispoof weights list`). Required except for AASIST, which without "
                   "it reads $ANTISPOOF_AASIST_WEIGHTS, else the bundled aasist (no download needed).")
@click.option("-o", "--output", type=NEW_FILE,
              help=f"Score file to write (4 columns when labels are known, else FILE_ID SCORE); needed for more "
                   f"than {VERDICT_LIMIT} files, a protocol or a list; an ID with spaces or % is written "
                   f"percent-encoded, e.g. my%20clip).")
@click.option("--jobs", type=click.IntRange(min=1), help="Parallel processes (lfcc-gmm).")
@device_option()
@click.option("--batch-size", type=click.IntRange(min=1), help="Files per forward pass (deep scorers).")
@click.option("--full-length", is_flag=True, default=None,
              help="Deep scorers: average over sliding windows covering the whole file instead of the "
                   "official single ~4 s window.")
@click.option("--threshold", type=float, help="Verdict threshold (default: the scorer's own, if it has one).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUTPUT.partial.")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some files could not be scored.")
@click.option("--chunk-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Files scored per call and per flush of the partial file.")
@backend_options
def score(audio, protocol, audio_dir, file_list, extensions, scorer_name, model_path, output, jobs, device,
          batch_size, full_length, threshold, resume, allow_failures, chunk_size, client) -> None:
    """Score audio files with any installed scorer; higher = more bona fide.

    \b
    Inputs: AUDIO files, or --protocol with --audio-dir, or --list.
    Up to 20 AUDIO files get a one-line verdict each; more files, a protocol
    or a list need -o. Failing files are skipped, listed in OUTPUT.errors.tsv
    and summarised; the exit code is then 1 unless --allow-failures.

    \b
    Examples:
      antispoof score --scorer aasist clip.wav            # bundled official AASIST
      antispoof score --scorer aasist --weights aasist-asvspoof5 clip.wav
      antispoof score --scorer lfcc-gmm --model model.npz \\
          --protocol ASVspoof2019.LA.cm.eval.trl.txt --audio-dir LA/ASVspoof2019_LA_eval/flac -o scores.txt
    """
    trials = select_trials(protocol, audio_dir, file_list, extensions, audio, client=client)
    verdicts = bool(audio) and len(audio) <= VERDICT_LIMIT
    if output is None and not verdicts:
        raise click.UsageError(f"scoring more than {VERDICT_LIMIT} files, a protocol or a list needs -o/--output "
                               f"(up to {VERDICT_LIMIT} loose files get one verdict line each without it)")
    scorer = load_scorer(scorer_name, model_path, client=client, jobs=jobs, device=device, batch_size=batch_size,
                         full_length=full_length)
    # The instance's: a scorer may pick its threshold by variant (raw logits vs log-probabilities).
    threshold = scorer.default_threshold if threshold is None else threshold
    if output is not None and not verdicts:
        _note_conversions(trials, output)
    with conversions_named_once():
        if output is None:
            outcomes = score_isolating_failures(scorer, trials)
        else:
            with progress_bar(f"Scoring with {scorer_name}", len(trials)) as update:
                result = score_trials(scorer, trials, output, chunk_size=chunk_size, resume=resume, progress=update)
            outcomes = result.outcomes(trials)
    for outcome in outcomes if verdicts else ():
        click.echo(outcome.verdict(threshold))
    failed = [o for o in outcomes if o.reason is not None]
    if output is not None:
        resumed = f" ({result.n_resumed} from an earlier run)" if result.n_resumed else ""
        click.echo(f"Wrote {result.n_scored + result.n_resumed} scores to {output}{resumed}.", err=True)
        if failed:
            click.echo(f"{len(failed)} of {result.n_total} files failed; see {result.errors_path}. First: "
                       f"{failed[0].trial.path}: {failed[0].reason}", err=True)
    if failed and not allow_failures:
        sys.exit(1)
