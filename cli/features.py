"""``antispoof lfcc``: LFCC features of audio files, one .npy each."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lfcc_gmm.batch import errors_path

from .options import backend_options, input_options, progress_bar, select_trials


@click.command("lfcc")
# readable=False: an unreadable file is one failure of the batch, not a usage error that stops it.
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path, readable=False))
@input_options()
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for FILE_ID.npy files (created if missing).")
@click.option("--preset", type=click.Choice(["asvspoof2019", "asvspoof2021"]), default="asvspoof2019",
              show_default=True, help="Official 2019 (60 columns) or 2021 (57 columns) LFCC configuration.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True,
              help="float64 reproduces the official features to 1e-8; float32 is about twice as fast.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1), help="Parallel processes.")
@click.option("--overwrite", is_flag=True, help="Recompute files whose .npy already exists (default: skip them).")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some files could not be processed.")
@backend_options
def lfcc_command(audio, protocol, audio_dir, file_list, extensions, output_dir, preset, dtype, jobs, overwrite,
                 allow_failures, client) -> None:
    """Compute LFCC features (frames x dims, [static | delta | delta-delta]) and save one .npy per file.

    \b
    Inputs: AUDIO files, or --protocol with --audio-dir, or --list. Any format and rate
    libsndfile reads; other rates are resampled to 16 kHz and multichannel averaged.
    Existing outputs are skipped, so an interrupted run continues where it stopped.
    Failures are listed in OUTPUT_DIR/lfcc.errors.tsv; exit code 1 unless --allow-failures.

    \b
    Example:
      antispoof lfcc LA/ASVspoof2019_LA_dev/flac/*.flac -o feats/dev --jobs 2
    """
    import numpy as np

    from lfcc_gmm.atomic import atomic_write
    from lfcc_gmm.batch import write_errors
    from lfcc_gmm.distributed import absolute_trials, worker_threads
    from lfcc_gmm.extraction import iter_features
    from lfcc_gmm.protocols import audio_paths

    trials = select_trials(protocol, audio_dir, file_list, extensions, audio)
    output_dir.mkdir(parents=True, exist_ok=True)
    todo = [t for t in trials if overwrite or not (output_dir / f"{t.file_id}.npy").exists()]
    skipped = len(trials) - len(todo)
    if skipped:
        click.echo(f"{skipped} file(s) already have features in {output_dir}; skipping them.", err=True)
    failures = []
    with progress_bar("Extracting LFCCs", len(todo)) as update:
        paths = audio_paths(todo if client is None else absolute_trials(todo))
        results = iter_features(paths, preset, jobs=jobs if client is None else worker_threads(client),
                                dtype=getattr(np, dtype), on_error="collect", progress=update)
        for trial, result in zip(todo, results, strict=True):
            if result.error is not None:
                failures.append((trial.file_id, str(trial.path), result.error))
            elif result.features is not None:
                with atomic_write(output_dir / f"{trial.file_id}.npy", "wb") as handle:
                    np.save(handle, result.features, allow_pickle=False)
    errors = errors_path(output_dir / "lfcc")
    write_errors(errors, failures)
    click.echo(f"Wrote {len(todo) - len(failures)} feature file(s) to {output_dir}.", err=True)
    if failures:
        click.echo(f"{len(failures)} of {len(todo)} files failed; see {errors}. First: "
                   f"{failures[0][1]}: {failures[0][2]}", err=True)
        if not allow_failures:
            sys.exit(1)
