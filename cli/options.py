"""Options and helpers shared by several commands: choosing the input trials, where the work runs, progress bars."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from lfcc_gmm.protocols import Trial, read_protocol, trials_from_paths

EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
EXISTING_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


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


def input_options(audio_dir_name: str = "--audio-dir") -> Callable:
    """``--protocol P --audio-dir D | --list CSV`` plus ``--ext``, for commands that read trials."""

    def decorate(command: Callable) -> Callable:
        options = [
            click.option("--protocol", "protocol", type=EXISTING_FILE,
                         help="ASVspoof protocol (2019 LA 5-column, 4-column, 2021 trial_metadata or an ID list)."),
            click.option(audio_dir_name, "audio_dir", type=EXISTING_DIR,
                         help="Folder holding FILE_ID.flac for each protocol line."),
            click.option("--list", "file_list", type=EXISTING_FILE,
                         help="CSV/TSV list of path,label[,attack] rows (paths relative to the list)."),
            click.option("--ext", "extensions", default=".flac", show_default=True,
                         help="Audio extensions tried in order for protocol IDs, comma-separated (e.g. .flac,.wav)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def backend_options(command: Callable) -> Callable:
    """``--backend local|dask`` and ``--scheduler ADDRESS``.

    The command runs inside :func:`compute_backend` and receives its result as ``client`` (None for local).
    """

    @functools.wraps(command)
    def run(*args: Any, backend: str, scheduler: str | None, **kwargs: Any) -> Any:
        with compute_backend(backend, scheduler) as client:
            return command(*args, client=client, **kwargs)

    run = click.option(
        "--scheduler", metavar="ADDRESS",
        help="Dask scheduler of --backend dask, e.g. tcp://10.0.0.1:8786 (default: $DASK_SCHEDULER_ADDRESS).",
    )(run)
    return click.option(
        "--backend", type=click.Choice(["local", "dask"]), default="local", show_default=True,
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
) -> list[Trial]:
    """Build trials from exactly one of: loose audio files, ``--protocol`` + ``--audio-dir``, ``--list``."""
    sources = [bool(audio), protocol is not None, file_list is not None]
    if sum(sources) != 1:
        raise click.UsageError("give audio files, or --protocol with --audio-dir, or --list (exactly one)")
    if protocol is not None and audio_dir is None:
        raise click.UsageError("--protocol needs --audio-dir (the folder of FILE_ID.flac files)")
    if protocol is not None:
        trials = read_protocol(protocol, audio_dir, tuple(e.strip() for e in extensions.split(",") if e.strip()))
    elif file_list is not None:
        trials = read_protocol(file_list)
    else:
        trials = trials_from_paths(audio)
    if require_labels:
        unlabelled = [t.file_id for t in trials if t.key is None]
        if unlabelled:
            raise click.UsageError(
                f"training needs labelled trials; {len(unlabelled)} have no bonafide/spoof key "
                f"(e.g. {unlabelled[0]})"
            )
    return trials


@contextlib.contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A click progress bar on stderr, driven by ``callback(n_done, n_total)`` from the libraries."""
    with click.progressbar(length=total, label=label, file=sys.stderr,
                           show_pos=True, show_eta=True) as bar:
        def update(done: int, _total: int) -> None:
            bar.update(done - bar.pos)

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
            state["update"] = stack.enter_context(progress_bar(labels.get(stage, stage), total))
        state["update"](done, total)

    with stack:
        yield update
