"""Options and helpers shared by several commands: choosing the input trials, where the work runs, progress bars,
and the click types that read their choices from the libraries."""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from lfcc_gmm.audio import expand_audio_paths
from lfcc_gmm.protocols import Trial, read_protocol, trials_from_paths
from rawnet.catalog import DEVICES

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
NEW_FILE = click.Path(dir_okay=False, path_type=Path)
NEW_DIR = click.Path(file_okay=False, path_type=Path)
BACKENDS = ("local", "dask")


class FileOrWeightsName(click.Path):
    """An existing file, or the name of published weights (``aasist``, ``aasist-l``, ``aasist-asvspoof5``), which
    is passed on as a string for the scorer to resolve (:func:`rawnet.weights.resolve_weights`)."""

    name = "file_or_name"

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def get_metavar(self, param: click.Parameter, *args: Any, **kwargs: Any) -> str:  # click < 8.2: no ctx
        return "FILE|NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from rawnet.weights import KNOWN_WEIGHTS

        if isinstance(value, str) and value in KNOWN_WEIGHTS and not Path(value).exists():
            return value
        return super().convert(value, param, ctx)


MODEL_FILE_OR_WEIGHTS = FileOrWeightsName()


def stack_options(*options: Callable) -> Callable:
    """One decorator applying click ``options`` so that ``--help`` lists them in the order given."""

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _library_object(source: str) -> Any:
    module, _, name = source.partition(":")
    return getattr(importlib.import_module(module), name)


class LibraryChoice(click.Choice):
    """A click choice whose names are a library constant (``"module:NAME"``: its keys, or its items), imported the
    first time click needs them (to check a value or show ``--help``), so that starting the command line imports no
    more than it runs and each list of names has one source."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.case_sensitive = True

    @functools.cached_property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(_library_object(self.source))


def parsed_by(source: str, *, keep_text: bool = False) -> Callable:
    """A click callback passing an option's value through a library parser (``"module:NAME"``, imported when the
    option is given): a value it rejects is a usage error (exit code 2), a codec this installation lacks a data
    problem (exit code 1). Returns the parsed value, or with ``keep_text`` the text itself once checked."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
        if value is None:
            return None
        from lfcc_gmm.degrade import CodecUnavailableError

        try:
            parsed = _library_object(source)(value)
        except CodecUnavailableError as exc:
            raise click.ClickException(str(exc)) from exc
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        return value if keep_text else parsed

    return callback


def augment_option(help: str) -> Callable:
    """``--augment SPEC``, an :class:`lfcc_gmm.augment.Augmenter` spec checked as the command line is parsed."""
    return click.option("--augment", metavar="SPEC", callback=parsed_by("lfcc_gmm.augment:Augmenter", keep_text=True),
                        help=help)


def device_option(help: str = "Device for deep scorers.", **settings: Any) -> Callable:
    """``--device auto|cpu|cuda`` (:data:`rawnet.catalog.DEVICES`)."""
    return click.option("--device", type=click.Choice(DEVICES), help=help, **settings)


input_options = stack_options(
    click.option("--protocol", "protocol", type=EXISTING_FILE,
                 help="ASVspoof protocol (2019 LA 5-column, 4-column, 2021 trial_metadata or an ID list)."),
    click.option("--audio-dir", "audio_dir", type=EXISTING_DIR,
                 help="Folder holding FILE_ID.flac for each protocol line."),
    click.option("--list", "file_list", type=EXISTING_FILE,
                 help="CSV/TSV list of path,label[,attack] rows (paths relative to the list)."),
    click.option("--ext", "extensions", default=".flac", show_default=True,
                 help="Audio extensions tried in order for protocol IDs, comma-separated (e.g. .flac,.wav)."),
)


bootstrap_options = stack_options(
    click.option("--ci", metavar="CONFIDENCE", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                 help="Add percentile bootstrap intervals of the EER and the primary DCF (Track 2: a-DCF and min "
                      "t-DCF) at this confidence, e.g. 0.95."),
    click.option("--resamples", default=1000, show_default=True, type=click.IntRange(min=1),
                 help="Bootstrap resamples (with --ci)."),
    click.option("--seed", default=0, show_default=True, type=int,
                 help="Seed of the bootstrap resampling (with --ci): the same seed gives the same intervals."),
)
def dev_options(use: str) -> Callable:
    """``--dev-protocol`` (what it is used for: ``use``), ``--dev-audio-dir`` and ``--dev-list``."""
    return stack_options(
        click.option("--dev-protocol", type=EXISTING_FILE, help=use),
        click.option("--dev-audio-dir", type=EXISTING_DIR, help="Folder of the dev protocol's audio."),
        click.option("--dev-list", type=EXISTING_FILE, help="Dev set as a CSV/TSV list of path,label[,attack]."),
    )


def backend_options(command: Callable) -> Callable:
    """``--backend local|dask`` and ``--scheduler ADDRESS``.

    The command runs inside :func:`compute_backend` and receives its result as ``client`` (None for local); on a
    cluster its ``jobs`` becomes the cluster's worker threads.
    """

    @functools.wraps(command)
    def run(*args: Any, backend: str, scheduler: str | None, **kwargs: Any) -> Any:
        with compute_backend(backend, scheduler) as client:
            if client is not None and "jobs" in kwargs:
                from lfcc_gmm.distributed import worker_threads

                kwargs["jobs"] = worker_threads(client)
            return command(*args, client=client, **kwargs)

    run = click.option(
        "--scheduler", metavar="ADDRESS",
        help="Dask scheduler of --backend dask, e.g. tcp://10.0.0.1:8786 (default: $DASK_SCHEDULER_ADDRESS).",
    )(run)
    return click.option(
        "--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
        help="Run here (--jobs processes) or on a Dask cluster (all its worker threads; --jobs is not used). "
             "Workers need antispoof installed and the audio at the same absolute paths; "
             "pip install antispoof[dask].",
    )(run)


@contextlib.contextmanager
def compute_backend(backend: str, scheduler: str | None) -> Iterator[Any]:
    """Yield None for ``local``; for ``dask``, a connected ``distributed.Client`` with joblib routed to it."""
    if backend == "local":
        if scheduler:
            raise click.UsageError("--scheduler is only used with --backend dask")
        yield None
        return
    from lfcc_gmm.distributed import SchedulerConnectionError, connect, joblib_on, scheduler_address

    try:
        address = scheduler_address(scheduler)
    except ValueError as exc:
        raise click.UsageError(f"--backend dask: {exc} (--scheduler ADDRESS)") from None
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(connect(address))
        except (ImportError, SchedulerConnectionError) as exc:
            raise click.ClickException(str(exc)) from exc
        stack.enter_context(joblib_on(client))
        yield client


def select_trials(
    protocol: Path | None,
    audio_dir: Path | None,
    file_list: Path | None,
    extensions: str,
    audio: Sequence[Path] = (),
    *,
    require_labels: bool = False,
    client: Any = None,
    folders: bool = False,
) -> list[Trial]:
    """Build trials from exactly one of: loose audio files, ``--protocol`` + ``--audio-dir``, ``--list``.

    With ``folders``, a folder among the audio files stands for every audio file below it
    (:func:`lfcc_gmm.audio.expand_audio_paths`). With a Dask ``client`` the paths are made absolute, so that
    workers started elsewhere open the same files.
    """
    sources = [bool(audio), protocol is not None, file_list is not None]
    if sum(sources) != 1:
        raise click.UsageError("give audio files, or --protocol with --audio-dir, or --list (exactly one)")
    if protocol is None and audio_dir is not None:
        raise click.UsageError("--audio-dir is the folder of --protocol's files; give --protocol too")
    if protocol is not None and audio_dir is None:
        raise click.UsageError("--protocol needs --audio-dir (the folder of FILE_ID.flac files)")
    if protocol is not None:
        trials = read_protocol(protocol, audio_dir, tuple(e.strip() for e in extensions.split(",") if e.strip()))
    elif file_list is not None:
        trials = read_protocol(file_list)
    else:
        trials = trials_from_paths(expand_audio_paths(audio) if folders else audio)
    if require_labels:
        if audio:
            raise click.UsageError("this command needs labelled trials: give --protocol with --audio-dir, or --list")
        unlabelled = [t.file_id for t in trials if t.key is None]
        if unlabelled:  # what the file holds, not how it was named: a data problem (exit code 1)
            raise click.ClickException(
                f"{protocol or file_list}: {len(unlabelled)} of {len(trials)} trials have no bonafide/spoof key "
                f"(e.g. {unlabelled[0]}); this command needs labelled trials"
            )
    if client is not None:
        from lfcc_gmm.distributed import absolute_trials

        trials = absolute_trials(trials)
    return trials


def select_train_and_dev(protocol, audio_dir, file_list, extensions, dev_protocol, dev_audio_dir, dev_list,
                         client: Any = None) -> tuple[list[Trial], list[Trial] | None]:
    """Labelled training trials (:func:`select_trials`) and the dev trials of :func:`dev_options`, None without."""
    train_trials = select_trials(protocol, audio_dir, file_list, extensions, require_labels=True, client=client)
    if dev_protocol is None and dev_list is None:
        if dev_audio_dir is not None:
            raise click.UsageError("--dev-audio-dir needs --dev-protocol")
        return train_trials, None
    if dev_protocol is not None and dev_list is not None:
        raise click.UsageError("give --dev-protocol with --dev-audio-dir, or --dev-list, not both")
    if dev_protocol is not None and dev_audio_dir is None:
        raise click.UsageError("--dev-protocol needs --dev-audio-dir (the folder of FILE_ID.flac files)")
    return train_trials, select_trials(dev_protocol, dev_audio_dir, dev_list, extensions, require_labels=True,
                                       client=client)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None = None) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar on stderr, driven by ``callback(n_done, n_total)`` from the libraries.

    Without ``total`` the bar opens at the first callback, with the total the library reports.
    """
    with contextlib.ExitStack() as stack:
        bars: list[Any] = []

        def update(done: int, of: int) -> None:
            if not bars:
                bars.append(stack.enter_context(click.progressbar(length=of, label=label, file=sys.stderr,
                                                                  show_pos=True, show_eta=True)))
            bars[0].update(done - bars[0].pos)

        if total is not None:
            update(0, total)
        yield update


@contextlib.contextmanager
def staged_progress(labels: dict[str, str]) -> Iterator[Callable[[str, int, int], None]]:
    """Progress for work in stages: ``callback(stage, done, total)`` opens a new bar when the stage changes."""
    stack = contextlib.ExitStack()
    state: dict = {"stage": None, "update": None}

    def update(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            stack.close()
            state["stage"] = stage
            state["update"] = stack.enter_context(progress_bar(labels.get(stage, stage)))
        state["update"](done, total)

    with stack:
        yield update
