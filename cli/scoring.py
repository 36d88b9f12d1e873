"""``antispoof score`` and ``antispoof scorers``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.audio import probe_conversions
from lfcc_gmm.batch import score_isolating_failures, score_trials
from lfcc_gmm.scorefiles import read_scores
from lfcc_gmm.scorers import available_scorers, get_scorer

from .options import MODEL_FILE_OR_WEIGHTS, backend_options, input_options, progress_bar, select_trials

#: Up to this many loose files get one human-readable verdict line each.
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


def runtime_options(cls, given: dict) -> dict:
    """The options the user set, checked against what the scorer's ``load`` accepts (usage error otherwise)."""
    wanted = {k: v for k, v in given.items() if v is not None}
    unsupported = sorted(set(wanted) - set(cls.runtime_options))
    if unsupported:
        flags = ", ".join("--" + k.replace("_", "-") for k in unsupported)
        raise click.UsageError(f"scorer {cls.name!r} does not take {flags}")
    return wanted


def _verdict(score: float | None, reason: str | None, threshold: float | None) -> str:
    if reason is not None:
        return f"FAILED ({reason})"
    if score is None:
        return "no score"
    if threshold is None:
        return f"score {score:.4f}"
    label = "bona fide" if score >= threshold else "spoof"
    return f"{label} (score {score:.4f}, threshold {threshold:g})"


@click.command()
# readable=False: an unreadable file is one failure of the batch, not a usage error that stops it.
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path, readable=False))
@input_options()
@click.option("--scorer", "scorer_name", default="lfcc-gmm", show_default=True,
              help="Registered scorer name (see `antispoof scorers`).")
@click.option("--model", "--weights", "model_path", type=MODEL_FILE_OR_WEIGHTS,
              help="Trained model / checkpoint / weights file, or bundled weights by name (aasist, aasist-l, "
                   "aasist-asvspoof5; see `antispoof weights list`). AASIST without it: $ANTISPOOF_AASIST_WEIGHTS, "
                   "else the bundled aasist (no download needed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Score file to write (4 columns when labels are known, else FILE_ID SCORE).")
@click.option("--jobs", type=click.IntRange(min=1), help="Parallel processes (lfcc-gmm).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Device for deep scorers.")
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
    A handful of AUDIO files get a one-line verdict each; batches need -o.
    Failing files are skipped, listed in OUTPUT.errors.tsv and summarised;
    the exit code is then 1 unless --allow-failures.

    \b
    Examples:
      antispoof score --scorer aasist clip.wav            # bundled official AASIST
      antispoof score --scorer aasist --weights aasist-asvspoof5 clip.wav
      antispoof score --scorer lfcc-gmm --model model.npz \\
          --protocol ASVspoof2019.LA.cm.eval.trl.txt --audio-dir LA/ASVspoof2019_LA_eval/flac -o scores.txt
    """
    trials = select_trials(protocol, audio_dir, file_list, extensions, audio)
    interactive = bool(audio) and len(audio) <= VERDICT_LIMIT
    if output is None and not interactive:
        raise click.UsageError("scoring more than a handful of files needs -o/--output")
    cls = get_scorer(scorer_name)
    if client is not None:
        if "jobs" not in cls.runtime_options:
            raise click.UsageError(f"--backend dask runs joblib-parallel scorers (lfcc-gmm); {scorer_name!r} is not")
        from lfcc_gmm.distributed import absolute_trials, worker_threads

        trials, jobs = absolute_trials(trials), worker_threads(client)
    options = runtime_options(cls, {"jobs": jobs, "device": device, "batch_size": batch_size,
                                     "full_length": full_length})
    scorer = cls.load(model_path, **options)
    # The instance's: a scorer may pick its threshold by variant (raw logits vs log-probabilities).
    threshold = scorer.default_threshold if threshold is None else threshold

    if output is None:
        results = score_isolating_failures(scorer, trials)
        _print_verdicts(results, threshold)
        if any(reason is not None for _, _, reason in results) and not allow_failures:
            sys.exit(1)
        return

    if not interactive:
        _note_conversions(trials, output)
    with progress_bar(f"Scoring with {scorer_name}", len(trials)) as update:
        result = score_trials(scorer, trials, output, chunk_size=chunk_size, resume=resume, progress=update)
    if interactive:
        scores = dict(zip(*_read_back(output), strict=True)) if result.n_scored + result.n_resumed else {}
        reasons = {file_id: reason for file_id, _, reason in result.failures}
        _print_verdicts([(t, scores.get(t.file_id), reasons.get(t.file_id)) for t in trials], threshold)
    resumed = f" ({result.n_resumed} from an earlier run)" if result.n_resumed else ""
    click.echo(f"Wrote {result.n_scored + result.n_resumed} scores to {output}{resumed}.", err=True)
    if result.failures:
        click.echo(f"{len(result.failures)} of {result.n_total} files failed; see {result.errors_path}. First: "
                   f"{result.failures[0][1]}: {result.failures[0][2]}", err=True)
        if not allow_failures:
            sys.exit(1)


def _note_conversions(trials, output: Path) -> None:
    """Name every file that will be resampled or down-mixed: on stderr, and in a TSV when there are many."""
    converted = [(t, notes) for t in trials if (notes := probe_conversions(t.path))]
    if not converted:
        return
    click.echo(f"note: {len(converted)} file(s) are not 16 kHz mono and will be converted:", err=True)
    for trial, notes in converted[:NOTE_LIMIT]:
        click.echo(f"note: {trial.path}: {'; '.join(notes)}", err=True)
    if len(converted) > NOTE_LIMIT:
        listing = Path(f"{output}.conversions.tsv")
        with atomic_write(listing) as handle:
            handle.write("file_id\tpath\tconversions\n")
            handle.writelines(f"{t.file_id}\t{t.path}\t{'; '.join(n)}\n" for t, n in converted)
        click.echo(f"note: … and {len(converted) - NOTE_LIMIT} more, all listed in {listing}", err=True)


def _read_back(output: Path) -> tuple[list[str], list[float]]:
    table = read_scores(output)
    return table.ids, list(table.scores)


def _print_verdicts(results, threshold: float | None) -> None:
    for trial, value, reason in results:
        notes = probe_conversions(trial.path) if reason is None else ()
        suffix = f"  [{'; '.join(notes)}]" if notes else ""
        click.echo(f"{trial.path}: {_verdict(value, reason, threshold)}{suffix}")
