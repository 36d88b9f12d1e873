"""The ``antispoof`` command: a click group whose subcommands call the libraries.

Exit codes: 0 success, 1 a data error (bad audio, protocol, score file, missing files; the message
says which file and why), 2 a usage error (bad options).
"""

from __future__ import annotations

import os
import signal
import warnings

import click

from lfcc_gmm import __version__
from lfcc_gmm.audio import AudioConversionWarning, AudioError
from lfcc_gmm.batch import PartialRunExistsError
from lfcc_gmm.protocols import MissingAudioError, ProtocolError
from lfcc_gmm.scorefiles import ScoreFileError
from lfcc_gmm.scorers import ScorerNotFoundError, ScorerOptionError

from .deep import export_command, weights
from .deep_training import train_aasist, train_rawnet2
from .demo import demo
from .evaluation import evaluate
from .features import lfcc_command
from .reporting import calibrate, compare, fuse
from .robustness import robustness
from .scoring import score, scorers
from .serve import serve
from .training import train

#: Errors that mean "your data or files are wrong", reported in one line with exit code 1.
DATA_ERRORS = (
    AudioError,
    ProtocolError,
    MissingAudioError,
    ScoreFileError,
    ScorerNotFoundError,
    PartialRunExistsError,
    FileNotFoundError,
    PermissionError,
    ValueError,
)


class AntispoofGroup(click.Group):
    """Turns data errors into a clean one-line message and exit code 1, and options a scorer refuses into a usage
    error, exit code 2 (``ANTISPOOF_DEBUG=1`` shows the traceback)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ScorerOptionError as exc:
            if os.environ.get("ANTISPOOF_DEBUG"):
                raise
            raise click.UsageError(str(exc)) from exc
        except DATA_ERRORS as exc:
            if os.environ.get("ANTISPOOF_DEBUG"):
                raise
            raise click.ClickException(str(exc)) from exc


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # Conversions (resampling, down-mixing) are expected news, not a problem in our code: one plain line.
    prefix = "note" if issubclass(category, AudioConversionWarning) else "warning"
    click.echo(f"{prefix}: {message}", err=True)


def _terminate_as_interrupt(signum, frame):
    # SIGTERM (a scheduler killing the job) unwinds like Ctrl-C, so partial files are closed cleanly.
    raise KeyboardInterrupt


@click.group(cls=AntispoofGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="antispoof")
def main() -> None:
    """Tell bona fide speech from synthetic or converted speech (ASVspoof-style countermeasures).

    \b
    Scores everywhere: higher = more bona fide.
    Typical flow:
      antispoof train lfcc-gmm --protocol P --audio-dir D -o model.npz
      antispoof score --scorer lfcc-gmm --model model.npz --protocol P --audio-dir D -o scores.txt
      antispoof evaluate scores.txt
      antispoof compare lfcc.txt aasist.txt --protocol P -o report/
    """
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    warnings.showwarning = _show_warning


main.add_command(demo)
main.add_command(evaluate)
main.add_command(score)
main.add_command(scorers)
main.add_command(serve)
main.add_command(train)
train.add_command(train_rawnet2)
train.add_command(train_aasist)
main.add_command(lfcc_command)
main.add_command(robustness)
main.add_command(compare)
main.add_command(fuse)
main.add_command(calibrate)
main.add_command(weights)
main.add_command(export_command)
