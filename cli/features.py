"""``antispoof lfcc``: LFCC features of audio files, one .npy each."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lfcc_gmm.batch import extract_to_folder

from .options import NEW_DIR, LibraryChoice, backend_options, input_options, progress_bar, select_trials

PRESETS = LibraryChoice("lfcc_gmm.features:PRESETS")


@click.command("lfcc")
# readable=False: an unreadable file is one failure of the batch, not a usage error that stops it.
@click.argument("audio", nargs=-1, type=click.Path(path_type=Path, readable=False))
@input_options
@click.option("-o", "--output-dir", required=True, type=NEW_DIR,
              help="Folder for FILE_ID.npy files (created if missing); nothing is written outside it.")
@click.option("--preset", type=PRESETS, default="asvspoof2019", show_default=True,
              help="Official 2019 (60 columns) or 2021 (57 columns) LFCC configuration.")
@click.option("--dtype", type=LibraryChoice("lfcc_gmm.features:DTYPES"), default="float64", show_default=True,
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
    Files are named FILE_ID.npy (the file name without extension); when loose files share
    a name (a/x.flac b/x.flac, tts.mp3 tts.ogg) each keeps its full name and folder
    below the folder they share (OUTPUT_DIR/a/x.flac.npy, OUTPUT_DIR/tts.mp3.npy).
    Existing outputs are skipped, so an interrupted run continues where it stopped.
    Failures are listed in OUTPUT_DIR/lfcc.errors.tsv; exit code 1 unless --allow-failures.

    \b
    Example:
      antispoof lfcc LA/ASVspoof2019_LA_dev/flac/*.flac -o feats/dev --jobs 2
    """
    trials = select_trials(protocol, audio_dir, file_list, extensions, audio, client=client)
    with progress_bar("Extracting LFCCs") as update:
        result = extract_to_folder(trials, output_dir, preset, dtype=dtype, jobs=jobs, overwrite=overwrite,
                                   progress=update)
    if result.n_skipped:
        click.echo(f"{result.n_skipped} file(s) already have features in {output_dir}; skipped them.", err=True)
    click.echo(f"Wrote {result.n_written} feature file(s) to {output_dir}.", err=True)
    if result.failures:
        first = result.failures[0]
        click.echo(f"{len(result.failures)} of {result.n_total - result.n_skipped} files failed; see "
                   f"{result.errors_path}. First: {first[1]}: {first[2]}", err=True)
        if not allow_failures:
            sys.exit(1)
