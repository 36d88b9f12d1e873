"""``antispoof train rawnet2`` and ``antispoof train aasist``: the official recipes through :mod:`rawnet.training`.

torch is imported only when one of these commands runs, so the rest of the command line stays fast. The recipe
numbers quoted in the help are those of ``rawnet.catalog.RECIPES`` (a test keeps them in step).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .options import EXISTING_DIR, EXISTING_FILE, input_options, select_trials, staged_progress

DEVICES = ("auto", "cpu", "cuda")


def _dev_options(command: Callable) -> Callable:
    options = [
        click.option("--dev-protocol", type=EXISTING_FILE,
                     help="Dev protocol scored after every epoch; best.pth is the epoch with the lowest dev EER."),
        click.option("--dev-audio-dir", type=EXISTING_DIR, help="Folder of the dev protocol's audio."),
        click.option("--dev-list", type=EXISTING_FILE, help="Dev set as a CSV/TSV list of path,label[,attack]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _recipe_options(epochs: int, batch_size: int, lr: str, weight_decay: str, crop: str) -> Callable:
    """Options shared by both commands; the defaults (None) mean "the recipe's", quoted in the help."""

    def decorate(command: Callable) -> Callable:
        options = [
            click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
                         help="Run directory: run.json, checkpoint.pth (every epoch), best.pth, metrics.csv/json."),
            click.option("--epochs", type=click.IntRange(min=1), help=f"Passes over the data.  [default: {epochs}]"),
            click.option("--batch-size", type=click.IntRange(min=1),
                         help=f"Examples per step (per process under torchrun).  [default: {batch_size}]"),
            click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                         help=f"Adam learning rate.  [default: {lr}]"),
            click.option("--weight-decay", type=click.FloatRange(min=0),
                         help=f"Adam weight decay.  [default: {weight_decay}]"),
            click.option("--nb-samp", type=click.IntRange(min=1),
                         help="Input length in samples (stored in the model config).  [default: the config's]"),
            click.option("--random-crop/--no-random-crop", default=None,
                         help=f"Train on random nb_samp windows rather than the first nb_samp samples.  "
                              f"[default: {crop}]"),
            click.option("--augment", metavar="SPEC",
                         help="On-the-fly augmentation of training examples, e.g. 'rawboost:5' or "
                              "'noise,reverb,rawboost' (one drawn per example; see lfcc_gmm.augment.Augmenter)."),
            click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                         help="auto = CUDA when available."),
            click.option("--amp", is_flag=True, help="Mixed precision (float16 autocast; CUDA only)."),
            click.option("--seed", default=1234, show_default=True, type=click.IntRange(min=0),
                         help="Seeds initialisation, shuffling, crops and augmentation: a run is reproducible."),
            click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0),
                         help="DataLoader processes per training process."),
            click.option("--resume", is_flag=True,
                         help="Continue RUN_DIR exactly from its last checkpoint (same data and settings)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _trials(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list):
    train_trials = select_trials(protocol, audio_dir, file_list, extensions, require_labels=True)
    if dev_protocol is None and dev_list is None:
        if dev_audio_dir is not None:
            raise click.UsageError("--dev-audio-dir needs --dev-protocol")
        return train_trials, None
    if dev_protocol is not None and dev_list is not None:
        raise click.UsageError("give --dev-protocol with --dev-audio-dir, or --dev-list, not both")
    if dev_protocol is not None and dev_audio_dir is None:
        raise click.UsageError("--dev-protocol needs --dev-audio-dir (the folder of FILE_ID.flac files)")
    return train_trials, select_trials(dev_protocol, dev_audio_dir, dev_list, extensions, require_labels=True)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.3f} %"


def _epoch_line(row: dict[str, Any]) -> str:
    line = (f"epoch {row['epoch']}: train loss {row['train_loss']:.5f}, accuracy {_percent(row['train_accuracy'])}"
            f", lr {row['lr']:.3g}")
    if row["dev_eer"] is not None:
        line += f"; dev loss {row['dev_loss']:.5f}, EER {_percent(row['dev_eer'])}"
    return line + f" ({row['seconds']:.0f} s)"


class _Reporter:
    """Progress bars per epoch stage, closed before each epoch's summary line so the two never share a line."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._update: Callable[[str, int, int], None] | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        if self._update is None:
            self._update = self._stack.enter_context(staged_progress({}))
        self._update(stage, done, total)

    def epoch(self, row: dict[str, Any]) -> None:
        self.close()
        click.echo(_epoch_line(row), err=True)

    def close(self) -> None:
        self._stack.close()
        self._update = None


def _train(spec, trials, dev_trials, run_dir: Path, overrides: dict[str, Any], *, device, amp, seed, workers,
           resume, augment, init_weights=None) -> None:
    import dataclasses

    from rawnet.catalog import RECIPES
    from rawnet.training import train

    recipe = dataclasses.replace(RECIPES[spec.architecture], **{k: v for k, v in overrides.items() if v is not None})
    augmenter = None
    if augment is not None:
        from lfcc_gmm.augment import Augmenter

        try:
            augmenter = Augmenter(augment)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--augment") from exc
    reporter = _Reporter()
    try:
        result = train(spec, trials, run_dir, recipe, dev_trials=dev_trials, device=device, amp=amp, seed=seed,
                       workers=workers, resume=resume, augment=augmenter, init_weights=init_weights,
                       progress=reporter.progress, on_epoch=reporter.epoch)
    finally:
        reporter.close()
    if result.rank == 0:
        chosen = "lowest dev EER" if result.best_dev_eer is not None else "last epoch, no dev set"
        click.echo(f"Wrote {result.best_path} (epoch {result.best_epoch}, {chosen}"
                   f"{', ' + _percent(result.best_dev_eer) if result.best_dev_eer is not None else ''}). "
                   f"Score with: antispoof score --scorer {spec.architecture} --model {result.best_path} ...",
                   err=True)


@click.command("rawnet2")
@input_options()
@_dev_options
@click.option("--variant", type=click.Choice(["asvspoof2021", "icassp2021"]), default="asvspoof2021",
              show_default=True, help="asvspoof2021: the 2021 challenge baseline; icassp2021: Tak et al. 2021.")
@click.option("--sinc-scale", type=click.Choice(["mel", "inverse-mel", "linear"]), default="mel", show_default=True,
              help="Band edges of the fixed sinc filters (inverse-mel and linear: icassp2021 only).")
@click.option("--config", "config_path", type=EXISTING_FILE,
              help="Model config, YAML or JSON (the official model_config_RawNet.yaml works as it is).  "
                   "[default: the variant's official full config]")
@_recipe_options(epochs=100, batch_size=32, lr="1e-4", weight_decay="1e-4", crop="off, as the official baseline")
def train_rawnet2(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list, variant,
                  sinc_scale, config_path, run_dir, epochs, batch_size, lr, weight_decay, nb_samp, random_crop,
                  augment, device, amp, seed, workers, resume) -> None:
    """Train RawNet2 with the ASVspoof 2021 LA baseline recipe.

    \b
    Recipe: Adam (lr 1e-4, weight decay 1e-4), batch 32, 100 epochs, cross-entropy
    weighted 0.1 spoof / 0.9 bona fide, the first nb_samp samples of each file (64,600,
    ~4 s, in the 2021 config), repeated when shorter. Options override single settings.
    A checkpoint is written after every epoch; --resume continues exactly. Under
    torchrun, one process per GPU.

    \b
    Examples:
      antispoof train rawnet2 --protocol ASVspoof2019.LA.cm.train.trn.txt \\
          --audio-dir LA/ASVspoof2019_LA_train/flac --dev-protocol ASVspoof2019.LA.cm.dev.trl.txt \\
          --dev-audio-dir LA/ASVspoof2019_LA_dev/flac -o runs/rawnet2
      torchrun --nproc_per_node 4 $(which antispoof) train rawnet2 --list train.csv -o runs/r2 --augment rawboost:5
    """
    from rawnet.rawnet2 import RawNet2, load_config
    from rawnet.spec import ModelSpec

    trials, dev_trials = _trials(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list)
    config = load_config(config_path) if config_path is not None else RawNet2.default_config(variant)
    if nb_samp is not None:
        config["nb_samp"] = nb_samp
    spec = ModelSpec("rawnet2", variant, config, sinc_scale)
    _train(spec, trials, dev_trials, run_dir,
           {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
            "random_crop": random_crop},
           device=device, amp=amp, seed=seed, workers=workers, resume=resume, augment=augment)


@click.command("aasist")
@input_options()
@_dev_options
@click.option("--model", "variant", type=click.Choice(["aasist", "aasist-l"]), default="aasist", show_default=True,
              help="AASIST (297,866 parameters) or the light AASIST-L (85,306).")
@click.option("--config", "config_path", type=EXISTING_FILE,
              help="Model config JSON (the official AASIST.conf, or just its model_config).  "
                   "[default: the official config of --model]")
@click.option("--init-weights", type=EXISTING_FILE,
              help="Start from these weights (fine-tuning), e.g. the official AASIST.pth; must fit the model exactly.")
@_recipe_options(epochs=100, batch_size=24, lr="1e-4", weight_decay="1e-4", crop="on, as the official recipe")
def train_aasist(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list, variant,
                 config_path, init_weights, run_dir, epochs, batch_size, lr, weight_decay, nb_samp, random_crop,
                 augment, device, amp, seed, workers, resume) -> None:
    """Train or fine-tune AASIST with the official clovaai/aasist recipe.

    \b
    Recipe: Adam (lr 1e-4, betas 0.9/0.999, weight decay 1e-4) with a per-step cosine
    decay to 5e-6 over the whole run, batch 24, 100 epochs, cross-entropy weighted
    0.1 spoof / 0.9 bona fide, random 64,600-sample (~4 s) windows, repeated when shorter.
    best.pth is the epoch with the lowest dev EER. Options override single settings.
    A checkpoint is written after every epoch; --resume continues exactly.

    \b
    Examples:
      antispoof train aasist --protocol ASVspoof2019.LA.cm.train.trn.txt \\
          --audio-dir LA/ASVspoof2019_LA_train/flac --dev-protocol ASVspoof2019.LA.cm.dev.trl.txt \\
          --dev-audio-dir LA/ASVspoof2019_LA_dev/flac -o runs/aasist
      antispoof train aasist --list mydata.csv --dev-list mydev.csv --init-weights AASIST.pth \\
          --epochs 5 --lr 1e-5 -o runs/aasist-finetuned
    """
    from rawnet.spec import ModelSpec, model_config

    trials, dev_trials = _trials(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list)
    config = model_config("aasist", variant, config_path)
    if nb_samp is not None:
        config["nb_samp"] = nb_samp
    spec = ModelSpec("aasist", variant, config)
    _train(spec, trials, dev_trials, run_dir,
           {"epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
            "random_crop": random_crop},
           device=device, amp=amp, seed=seed, workers=workers, resume=resume, augment=augment,
           init_weights=init_weights)
