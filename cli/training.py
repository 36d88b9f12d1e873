"""``antispoof train``: one subcommand per scorer, plus a generic one for third-party plug-ins."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lfcc_gmm.batch import errors_path, write_errors
from lfcc_gmm.scorers import available_scorers, create_scorer

from .options import (
    NEW_FILE,
    LibraryChoice,
    augment_option,
    backend_options,
    dev_options,
    input_options,
    select_train_and_dev,
    select_trials,
    staged_progress,
)


class TrainGroup(click.Group):
    """Built-in scorers have their own options; any other registered scorer gets a generic command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(available_scorers()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in available_scorers():
            command = _generic_train_command(name)
        return command


@click.group(cls=TrainGroup)
def train() -> None:
    """Train a scorer on labelled data (a protocol + audio folder, or a CSV list).

    \b
    Examples:
      antispoof train lfcc-gmm --protocol ASVspoof2019.LA.cm.train.trn.txt \\
          --audio-dir LA/ASVspoof2019_LA_train/flac -o lfcc_gmm_2019.npz --jobs 2
      antispoof train rawnet2 --list train.csv --dev-list dev.csv -o runs/rawnet2
    """


@train.command("lfcc-gmm")
@input_options
@click.option("-o", "--output", required=True, type=NEW_FILE, help="Model file to write (.npz).")
@click.option("--preset", type=LibraryChoice("lfcc_gmm.features:PRESETS"), default="asvspoof2019", show_default=True,
              help="LFCC configuration of the official 2019 (60-dim) or 2021 (57-dim) baseline.")
@click.option("--components", default=512, show_default=True, type=click.IntRange(min=1),
              help="Gaussian components per class (official: 512).")
@click.option("--iterations", default=10, show_default=True, type=click.IntRange(min=1),
              help="EM iterations (official: 10).")
@click.option("--init-samples", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Frames drawn to seed each GMM with k-means++.")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes for feature extraction.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (training is deterministic).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache LFCCs here (keyed by preset, path, size and mtime) to make re-training fast.")
@augment_option("Also train on augmented copies, e.g. 'rawboost,noise,reverb,tel8k,mulaw' (random parameters) or "
                "fixed conditions like 'noise:20'. Deterministic per --seed.")
@click.option("--augment-copies", default=1, show_default=True, type=click.IntRange(min=1),
              help="Augmented copies per training file (with --augment).")
@dev_options("Dev protocol scored after training: the model's verdict threshold is its equal error rate point, "
             "stored in the model file (without a dev set the threshold is 0, uncalibrated).")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even if some training files had to be skipped.")
@backend_options
def train_lfcc_gmm(protocol, audio_dir, file_list, extensions, output, preset, components, iterations,
                   init_samples, jobs, seed, cache_dir, augment, augment_copies, dev_protocol, dev_audio_dir, dev_list,
                   allow_failures, client) -> None:
    """Train the LFCC-GMM baseline: one GMM on bona fide frames, one on spoof frames.

    Files that fail to load are skipped, listed in OUTPUT.errors.tsv (and in the model's metadata), and
    the exit code is then 1 unless --allow-failures; the model is written either way.
    Score with `antispoof score --scorer lfcc-gmm --model OUTPUT ...`.
    With --backend dask the features stay in the workers' memory and EM runs there too.
    """
    trials, dev_trials = select_train_and_dev(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir,
                                              dev_list, client=client)
    scorer = create_scorer("lfcc-gmm", preset=preset, n_components=components, max_iter=iterations,
                           init_samples=init_samples, random_state=seed, jobs=jobs, cache_dir=cache_dir,
                           augment=augment, augment_copies=augment_copies)
    with staged_progress({"features": "Extracting LFCCs", "augment": "Augmenting", "bonafide": "EM, bona fide GMM",
                          "spoof": "EM, spoof GMM", "dev": "Scoring the dev set"}) as progress:
        scorer.fit(trials, progress=progress, client=client, dev_trials=dev_trials)
    scorer.save(output)
    summary = scorer.training_summary_
    click.echo(f"Trained on {summary['bonafide']['files']} bona fide ({summary['bonafide']['frames']:,} frames) and "
               f"{summary['spoof']['files']} spoof files ({summary['spoof']['frames']:,} frames); wrote {output}.",
               err=True)
    if "dev" in summary:
        click.echo(f"Threshold {summary['dev']['threshold']:.4f}: the EER point on {summary['dev']['files']} dev files "
                   f"(EER {100 * summary['dev']['eer']:.2f} %).", err=True)
    failures = summary["failures"]
    write_errors(errors_path(output), [(f["file_id"], f["path"], f["reason"]) for f in failures])
    if failures:
        click.echo(f"{len(failures)} file(s) were skipped; see {errors_path(output)}. First: {failures[0]['path']}: "
                   f"{failures[0]['reason']}", err=True)
        if not allow_failures:
            sys.exit(1)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _settings(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    settings = {}
    for setting in values:
        key, sep, value = setting.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expects KEY=VALUE, got {setting!r}")
        settings[key.strip()] = _parse_value(value)
    return settings


def _generic_train_command(name: str) -> click.Command:
    @click.command(name)
    @input_options
    @click.option("-o", "--output", required=True, type=NEW_FILE, help="Where the scorer saves itself.")
    @click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", callback=_settings,
                  help="Constructor argument of the scorer (VALUE parsed as JSON when it can be). Repeatable.")
    def command(protocol, audio_dir, file_list, extensions, output, settings) -> None:
        trials = select_trials(protocol, audio_dir, file_list, extensions, require_labels=True)
        create_scorer(name, **settings).fit(trials).save(output)
        click.echo(f"Trained {name} on {len(trials)} files; wrote {output}.", err=True)

    command.help = f"Train the {name!r} scorer (a plug-in) through its fit/save interface."
    return command
