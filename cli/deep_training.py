"""``antispoof train rawnet2`` and ``antispoof train aasist``: the official recipes, through the scorers' ``fit``.

torch is imported only when one of these commands runs, so the rest of the command line stays fast; the choices
and the recipe defaults quoted in the help come from the torch-free :mod:`rawnet.catalog`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import click

from lfcc_gmm.scorers import create_scorer
from rawnet.catalog import AASIST_VARIANTS, RAWNET2_VARIANTS, RECIPES, SINC_SCALES, Recipe

from .options import (
    EXISTING_FILE,
    MODEL_FILE_OR_WEIGHTS,
    NEW_DIR,
    augment_option,
    dev_options,
    device_option,
    input_options,
    select_train_and_dev,
    stack_options,
    staged_progress,
)


def _number(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-")


def quoted_default(architecture: str, show: Callable[[Recipe], str]) -> str:
    """The recipe value ``show`` picks, as the help quotes it: the first variant's, then the variants that differ,
    e.g. ``"32; asvspoof5: 128"``."""
    shown = {variant: show(recipe) for variant, recipe in RECIPES[architecture].items()}
    first = next(iter(shown.values()))
    return "; ".join([first, *(f"{variant}: {value}" for variant, value in shown.items() if value != first)])


def recipe_options(architecture: str, crop: str) -> Callable:
    """Options shared by both commands; their default (None) is the variant's recipe value, quoted in the help."""

    def default(show: Callable[[Recipe], str]) -> str:
        return f"[default: {quoted_default(architecture, show)}]"

    return stack_options(
        click.option("-o", "--output", "run_dir", required=True, type=NEW_DIR,
                     help="Run directory: run.json, checkpoint.pth (every epoch), best.pth, metrics.csv/json."),
        click.option("--epochs", type=click.IntRange(min=1),
                     help=f"Passes over the data.  {default(lambda r: str(r.epochs))}"),
        click.option("--batch-size", type=click.IntRange(min=1),
                     help=f"Examples per step (per process under torchrun).  {default(lambda r: str(r.batch_size))}"),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True),
                     help=f"Adam learning rate.  {default(lambda r: _number(r.lr))}"),
        click.option("--weight-decay", type=click.FloatRange(min=0),
                     help=f"Adam weight decay.  {default(lambda r: _number(r.weight_decay))}"),
        click.option("--nb-samp", type=click.IntRange(min=1),
                     help="Input length in samples (stored in the model config).  [default: the config's]"),
        click.option("--random-crop/--no-random-crop", default=None,
                     help="Train on random nb_samp windows rather than the first nb_samp samples.  "
                          f"[default: {quoted_default(architecture, lambda r: 'on' if r.random_crop else 'off')}, "
                          f"{crop}]"),
        augment_option("On-the-fly augmentation of training examples, e.g. 'rawboost:5' or "
                       "'noise,reverb,rawboost' (one drawn per example; see lfcc_gmm.augment.Augmenter)."),
        device_option("auto = CUDA when available.", default="auto", show_default=True),
        click.option("--amp", is_flag=True, help="Mixed precision (float16 autocast; CUDA only)."),
        click.option("--seed", default=1234, show_default=True, type=click.IntRange(min=0),
                     help="Seeds initialisation, shuffling, crops and augmentation: a run is reproducible."),
        click.option("--workers", default=2, show_default=True, type=click.IntRange(min=0),
                     help="DataLoader processes per training process."),
        click.option("--resume", is_flag=True,
                     help="Continue RUN_DIR exactly from its last checkpoint (same data and settings)."),
    )


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


def _train(name: str, params: dict[str, Any], options: dict[str, Any]) -> None:
    """Split the command's options into trials, the scorer's parameters and ``fit``'s; fit; say where the model is."""
    trials, dev_trials = select_train_and_dev(*(options.pop(k) for k in (
        "protocol", "audio_dir", "file_list", "extensions", "dev_protocol", "dev_audio_dir", "dev_list")))
    scorer = create_scorer(name, **params, device=options.pop("device"))
    reporter = _Reporter()
    try:
        scorer.fit(trials, dev_trials=dev_trials, progress=reporter.progress, on_epoch=reporter.epoch, **options)
    finally:
        reporter.close()
    summary = scorer.training_summary_
    if summary["rank"] == 0:
        chosen = "last epoch, no dev set" if summary["best_dev_eer"] is None else \
            f"lowest dev EER, {_percent(summary['best_dev_eer'])}"
        click.echo(f"Wrote {summary['model_file']} (epoch {summary['best_epoch']}, {chosen}). "
                   f"Score with: antispoof score --scorer {name} --model {summary['model_file']} ...", err=True)


@click.command("rawnet2")
@input_options
@dev_options("Dev protocol scored after every epoch; best.pth is the epoch with the lowest dev EER.")
@click.option("--variant", type=click.Choice(RAWNET2_VARIANTS), default="asvspoof2021", show_default=True,
              help="asvspoof2021: the 2021 challenge baseline; icassp2021: Tak et al. 2021; asvspoof5: the ASVspoof 5 "
                   "baseline (scored, and its dev EER ranked, by the softmax probability, as the official code does).")
@click.option("--sinc-scale", type=click.Choice(SINC_SCALES), default="mel", show_default=True,
              help="Band edges of the fixed sinc filters (inverse-mel and linear: icassp2021 only).")
@click.option("--config", "config_path", type=EXISTING_FILE,
              help="Model config, YAML or JSON (the official model_config_RawNet.yaml works as it is).  "
                   "[default: the variant's official full config]")
@recipe_options("rawnet2", crop="as the official baselines")
def train_rawnet2(variant, sinc_scale, config_path, **options) -> None:
    """Train RawNet2 with the official recipe of its variant.

    \b
    Recipe: Adam (lr 1e-4, weight decay 1e-4), batch 32, 100 epochs, cross-entropy
    weighted 0.1 spoof / 0.9 bona fide, the first nb_samp samples of each file (64,600,
    ~4 s, in the 2021 config), repeated when shorter: the ASVspoof 2021 LA baseline.
    --variant asvspoof5 trains as the ASVspoof 5 baseline: batch 128, a random
    64,000-sample window of each file. Options override single settings. A checkpoint
    is written after every epoch; --resume continues exactly. Under torchrun, one
    process per GPU.

    \b
    Examples:
      antispoof train rawnet2 --protocol ASVspoof2019.LA.cm.train.trn.txt \\
          --audio-dir LA/ASVspoof2019_LA_train/flac --dev-protocol ASVspoof2019.LA.cm.dev.trl.txt \\
          --dev-audio-dir LA/ASVspoof2019_LA_dev/flac -o runs/rawnet2
      torchrun --nproc_per_node 4 $(which antispoof) train rawnet2 --list train.csv -o runs/r2 --augment rawboost:5
      antispoof train rawnet2 --variant asvspoof5 --list asvspoof5_train.csv \\
          --dev-list asvspoof5_dev.csv -o runs/rawnet2-asvspoof5
    """
    _train("rawnet2", {"variant": variant, "config": config_path, "sinc_scale": sinc_scale}, options)


@click.command("aasist")
@input_options
@dev_options("Dev protocol scored after every epoch; best.pth is the epoch with the lowest dev EER.")
@click.option("--model", "variant", type=click.Choice(list(AASIST_VARIANTS)), default="aasist", show_default=True,
              help="AASIST (297,866 parameters) or the light AASIST-L (85,306).")
@click.option("--config", "config_path", type=EXISTING_FILE,
              help="Model config JSON (the official AASIST.conf, or just its model_config).  "
                   "[default: the official config of --model]")
@click.option("--init-weights", type=MODEL_FILE_OR_WEIGHTS,
              help="Start from these weights (fine-tuning): a file, or bundled weights by name (aasist, aasist-l, "
                   "aasist-asvspoof5; see `antispoof weights list`); must fit the model exactly.")
@recipe_options("aasist", crop="as the official recipe")
def train_aasist(variant, config_path, **options) -> None:
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
      antispoof train aasist --list mydata.csv --dev-list mydev.csv --init-weights aasist \\
          --epochs 5 --lr 1e-5 -o runs/aasist-finetuned
    """
    _train("aasist", {"variant": variant, "config": config_path}, options)
