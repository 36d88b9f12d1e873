"""``antispoof score`` and ``antispoof scorers``."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import click

from lfcc_gmm.audio import AudioConversionWarning
from lfcc_gmm.batch import BatchResult, converted_files, output_paths, score_trials, write_conversions
from lfcc_gmm.scorers import Scorer, available_scorers, get_scorer, load_scorer
from lfcc_gmm.segments import SegmentGrid
from lfcc_gmm.verdicts import FORMATS, ResultWriter, Threshold
from rawnet.catalog import CROPS

from .options import (
    MODEL_FILE_OR_WEIGHTS,
    NEW_DIR,
    NEW_FILE,
    LibraryChoice,
    backend_options,
    device_option,
    input_options,
    progress_bar,
    select_trials,
)

#: Converted files named on the terminal before the rest go to OUTPUT.conversions.tsv.
NOTE_LIMIT = 20


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per scorer instead of a table.")
@click.option("--info", "info", metavar="NAME", type=LibraryChoice("lfcc_gmm.cards:CARD_NAMES"),
              help="Show the model card of a built-in scorer: training data, languages, input window, score and "
                   "threshold, measured EERs, known failures, licence (full card: docs/models/NAME.md).")
def scorers(as_json: bool, info: str | None) -> None:
    """List the installed scorers (built-in and third-party plug-ins), or show one's model card."""
    if info is not None:
        from lfcc_gmm.cards import model_card

        card = model_card(info)
        click.echo(json.dumps(dataclasses.asdict(card), indent=1) if as_json else card.to_text())
        return
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


POSITIVE = click.FloatRange(min=0, min_open=True)


@click.command()
# readable=False: an unreadable file is one failure of the batch, not a usage error that stops it.
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path, readable=False, allow_dash=True))
@input_options
@click.option("--scorer", "scorer_name", default="lfcc-gmm", show_default=True,
              help="Registered scorer name (see `antispoof scorers`).")
@click.option("--model", "--weights", "model_path", type=MODEL_FILE_OR_WEIGHTS,
              help="Trained model / checkpoint / weights file, or bundled weights by name (aasist, aasist-l, "
                   "aasist-asvspoof5; see `antispoof weights list`). Required except for AASIST, which without "
                   "it reads $ANTISPOOF_AASIST_WEIGHTS, else the bundled aasist (no download needed).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Print one result per file on stdout: text (default without -o), json (an array of objects: "
                   "file, scorer, verdict, score, threshold, mode, duration_s, speech_s, warnings, segments) or csv.")
@click.option("-o", "--output", type=NEW_FILE,
              help="Write a score file (4 columns when labels are known, else FILE_ID SCORE; an ID with spaces or % "
                   "percent-encoded, e.g. my%20clip), OUTPUT.checks.tsv and OUTPUT.errors.tsv; prints only a "
                   "summary unless --format is given.")
@click.option("--crop", type=click.Choice(CROPS),
              help="Deep scorers: none = slide the model window over the whole file (the default); official = the "
                   "official evaluation, the first 64,600 samples repeat-padded (to reproduce published numbers).")
@click.option("--full-length", is_flag=True, help="Whole-file scoring, the default (kept for older scripts).")
@click.option("--segment-s", type=POSITIVE, metavar="SECONDS",
              help="Timeline segment length (default: the model window, 4.04 s for lfcc-gmm and AASIST).")
@click.option("--hop-s", type=POSITIVE, metavar="SECONDS",
              help="Step between timeline segments (default: half the segment, 50 % overlap).")
@click.option("--plot", "plot_dir", type=NEW_DIR,
              help="Write one PNG per file here: waveform, segment scores, threshold, non-speech shaded.")
@click.option("--threshold", type=float, help="Verdict threshold (default: the scorer's own; see `antispoof "
                                              "scorers --info NAME`).")
@click.option("--jobs", type=click.IntRange(min=1), help="Parallel processes (lfcc-gmm).")
@device_option()
@click.option("--batch-size", type=click.IntRange(min=1), help="Model windows per forward pass (deep scorers).")
@click.option("--threads", type=click.IntRange(min=1),
              help="ONNX Runtime intra-op threads (aasist-onnx, rawnet2-onnx; default: every core this process may "
                   "use).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUTPUT.partial.")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some files could not be scored.")
@click.option("--chunk-size", default=32, show_default=True, type=click.IntRange(min=1),
              help="Files scored per call and per flush of the partial file.")
@backend_options
def score(audio, protocol, audio_dir, file_list, extensions, scorer_name, model_path, fmt, output, crop, full_length,
          segment_s, hop_s, plot_dir, threshold, jobs, device, batch_size, threads, resume, allow_failures,
          chunk_size, client) -> None:
    """Score recordings with any installed scorer and say what each one is: bona fide, spoof or no speech.

    \b
    Inputs: AUDIO files or folders (every audio file below a folder, sorted),
    - for one file on standard input, or --protocol with --audio-dir, or --list.
    Every scorer reads the whole file (deep models slide their window over it;
    --crop official for the published single-window evaluation). Each result
    has the verdict, the score and threshold, the mode, the duration and speech
    found, warnings (no speech, clipped, low level, padded, long silences,
    conversions) and segment scores over time (--segment-s, --hop-s, --plot).
    A file with less than 0.5 s of speech gets "no speech" whatever its score.
    Failing files are reported (in OUTPUT.errors.tsv with -o); the exit code is
    then 1 unless --allow-failures.

    \b
    Examples:
      antispoof score --scorer aasist clip.wav            # bundled official AASIST
      antispoof score --scorer aasist --weights aasist-asvspoof5 clip.wav
      antispoof score --scorer aasist-onnx clip.wav       # the same without torch
      antispoof score --scorer aasist recordings/ --format json > results.json
      cat clip.flac | antispoof score --scorer aasist - --plot figures/
      antispoof score --scorer lfcc-gmm --model model.npz \\
          --protocol ASVspoof2019.LA.cm.eval.trl.txt --audio-dir LA/ASVspoof2019_LA_eval/flac -o scores.txt
      antispoof score --scorer aasist --crop official \\
          --protocol ASVspoof2019.LA.cm.eval.trl.txt --audio-dir LA/ASVspoof2019_LA_eval/flac -o aasist.txt
    """
    if crop == "official" and full_length:
        raise click.UsageError("--full-length (the whole file) and --crop official contradict each other")
    stdin = _reads_stdin(audio, output)
    scorer = load_scorer(scorer_name, model_path, client=client, jobs=jobs, device=device, batch_size=batch_size,
                         threads=threads, crop=crop)
    grid = SegmentGrid.from_options(segment_s, hop_s, default=scorer.default_grid())
    given = None if threshold is None else Threshold(threshold, "given with --threshold")
    if stdin:
        failed = _print_stdin(scorer, given, grid, fmt or "text", plot_dir)
    else:
        trials = select_trials(protocol, audio_dir, file_list, extensions, audio, client=client, folders=True)
        plots = None if plot_dir is None else output_paths(trials, plot_dir, ".png")
        with conversions_named_once():
            if output is None:
                failed = _print_results(scorer, trials, given, grid, fmt or "text", plots, chunk_size)
            else:
                _note_conversions(trials, output)
                failed = _score_to_file(scorer, trials, output, given, grid, fmt, plots, chunk_size, resume)
    if failed and not allow_failures:
        sys.exit(1)


def _reads_stdin(audio: tuple[Path, ...], output: Path | None) -> bool:
    if Path("-") not in audio:
        return False
    if len(audio) > 1 or output is not None:
        raise click.UsageError("- (standard input) is one file, scored on its own and printed: give it alone, "
                               "without -o")
    return True


def _print_stdin(scorer: Scorer, threshold: Threshold | None, grid: SegmentGrid, fmt: str,
                 plot_dir: Path | None) -> int:
    from lfcc_gmm.analysis import analyse_bytes

    result = analyse_bytes(scorer, sys.stdin.buffer.read(), "-", threshold=threshold, grid=grid,
                           plot_path=None if plot_dir is None else plot_dir / "stdin.png")
    writer = ResultWriter(sys.stdout, fmt)
    writer.write(result)
    writer.close()
    return writer.failed


def _print_results(scorer: Scorer, trials, threshold: Threshold | None, grid: SegmentGrid, fmt: str,
                   plots: list[Path] | None, chunk_size: int) -> int:
    """Print every file's result as it comes; a progress bar on stderr when the results go elsewhere."""
    from lfcc_gmm.analysis import analyse_files

    stdout = sys.stdout
    writer = ResultWriter(stdout, fmt)
    bar = progress_bar(f"Scoring with {scorer.name}", len(trials)) if not stdout.isatty() and \
        len(trials) > chunk_size else contextlib.nullcontext(None)
    with bar as update:
        for result in analyse_files(scorer, [t.path for t in trials], threshold=threshold, grid=grid,
                                    plot_paths=plots, chunk_size=chunk_size, progress=update):
            writer.write(result)
    writer.close()
    return writer.failed


def _score_to_file(scorer: Scorer, trials, output: Path, threshold: Threshold | None, grid: SegmentGrid,
                   fmt: str | None, plots: list[Path] | None, chunk_size: int, resume: bool) -> int:
    """The batch run: score file, checks and errors beside it; results printed as they come with --format."""
    from lfcc_gmm.analysis import plot_result
    from lfcc_gmm.audio import load_audio

    writer = None if fmt is None else ResultWriter(sys.stdout, fmt)
    plot_of = {} if plots is None else {str(t.path): p for t, p in zip(trials, plots, strict=True)}

    def on_result(result) -> None:
        if writer is not None:
            writer.write(result)
        if result.file in plot_of:
            plot_result(result, load_audio(result.file, warn=False), plot_of[result.file])

    with progress_bar(f"Scoring with {scorer.name}", len(trials)) as update:
        result = score_trials(scorer, trials, output, chunk_size=chunk_size, resume=resume, progress=update,
                              grid=grid if writer is not None or plots else None, threshold=threshold,
                              on_result=on_result)
    if writer is not None:
        writer.close()
    _summarise(result)
    return len(result.failures)


def _summarise(result: BatchResult) -> None:
    resumed = f" ({result.n_resumed} from an earlier run)" if result.n_resumed else ""
    click.echo(f"Wrote {result.n_scored + result.n_resumed} scores to {result.output}{resumed}.", err=True)
    if result.findings:
        files = len({row[0] for row in result.findings})
        click.echo(f"{files} file(s) have check findings ({len(result.no_speech)} without speech); see "
                   f"{result.checks_path}.", err=True)
    if result.failures:
        file_id, path, reason = result.failures[0]
        click.echo(f"{len(result.failures)} of {result.n_total} files failed; see {result.errors_path}. First: "
                   f"{path}: {reason}", err=True)
