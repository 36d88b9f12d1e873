"""A real interruption: ``antispoof score`` killed mid-run keeps a valid partial file, refuses to start over
by accident, and ``--resume`` finishes with exactly the file an uninterrupted run writes.

The run is a separate process (the installed console script) killed with SIGTERM (what a scheduler sends;
the command turns it into a clean unwind) or SIGKILL (no chance to clean up at all).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from lfcc_gmm.baseline import LFCCGMMScorer

N_FILES = 80
# Lines the partial file must hold before the signal is sent: several chunks done, most still to do.
MIN_DONE = 3


def antispoof_command() -> list[str]:
    """The installed console script next to this interpreter, else the same entry point through ``-c``."""
    script = Path(sys.executable).with_name("antispoof")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from cli.main import main; main()"]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A protocol of N_FILES 2-s files (links to four distinct recordings), a tiny model, and the score file
    of an uninterrupted run."""
    from conftest import synthetic_corpus

    root = tmp_path_factory.mktemp("interrupt")
    base = synthetic_corpus(root / "base", n_per_class=2, seconds=2.0)
    audio = root / "audio"
    audio.mkdir()
    lines = []
    for i in range(N_FILES):
        trial = base[i % len(base)]
        file_id = f"U{i:04d}"
        (audio / f"{file_id}.wav").symlink_to(trial.path)
        lines.append(f"SPK{i % 7} {file_id} - {trial.attack} {trial.key}\n")
    protocol = root / "protocol.txt"
    protocol.write_text("".join(lines))
    model = root / "model.npz"
    LFCCGMMScorer(n_components=2, max_iter=2, init_samples=300).fit(base).save(model)
    args = ["score", "--scorer", "lfcc-gmm", "--model", str(model), "--protocol", str(protocol),
            "--audio-dir", str(audio), "--ext", ".wav", "--chunk-size", "1"]
    reference = root / "reference.txt"
    result = CliRunner().invoke(main, [*args, "-o", str(reference)])
    assert result.exit_code == 0, result.output
    tokens = [line.split(" ") for line in reference.read_text().splitlines()]
    assert [t[0] for t in tokens] == [f"U{i:04d}" for i in range(N_FILES)]
    return {"args": args, "reference": reference, "ids": [t[0] for t in tokens],
            "score_text": {t[0]: t[3] for t in tokens}}


def complete_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run_and_interrupt(command: list[str], partial: Path, signum: int) -> tuple[int, str]:
    """Start ``command``, send ``signum`` once ``partial`` has MIN_DONE lines, return (exit status, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "ANTISPOOF_DEBUG"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Not a timing assertion: only a guard so that a hung child cannot hang the suite.
    give_up = time.monotonic() + 300
    try:
        while complete_lines(partial) < MIN_DONE:
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before it could be interrupted: "
                            f"{process.stderr.read()}")
            if time.monotonic() > give_up:
                pytest.fail("the run produced no scores")
            time.sleep(0.005)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


@pytest.mark.slow  # two process start-ups and 2-3 runs over the protocol: several seconds
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_run_leaves_a_valid_partial_file_and_resumes_to_the_same_bytes(job, tmp_path, signum):
    out = tmp_path / "scores.txt"
    partial = Path(f"{out}.partial")
    status, stderr = run_and_interrupt([*antispoof_command(), *job["args"], "-o", str(out)], partial, signum)

    if signum == signal.SIGTERM:
        # Unwound like Ctrl-C: click reports the abort, no traceback, and the partial file was closed cleanly.
        assert status == 1 and "Aborted!" in stderr and "Traceback" not in stderr, stderr
    else:
        assert status == -signal.SIGKILL
    assert not out.exists(), "the final score file must only appear when every trial has been tried"
    assert not Path(f"{out}.errors.tsv").exists()

    # Every complete line is `FILE_ID SCORE`, in protocol order (chunks of one), with the very score text an
    # uninterrupted run writes for that ID. Only a SIGKILL could leave a torn last line; resume ignores it.
    text = partial.read_text(encoding="utf-8")
    *complete, tail = text.split("\n")
    if signum == signal.SIGTERM:
        assert tail == ""
    done = len(complete)
    assert MIN_DONE <= done < N_FILES, "the run must be stopped midway"
    for line, file_id in zip(complete, job["ids"], strict=False):
        assert line.split(" ") == [file_id, job["score_text"][file_id]], line

    # Starting again without --resume must not throw the finished work away.
    runner = CliRunner()
    refused = runner.invoke(main, [*job["args"], "-o", str(out)])
    assert refused.exit_code == 1
    assert "--resume" in refused.output and str(partial) in refused.output
    assert partial.read_text(encoding="utf-8") == text and not out.exists()

    resumed = runner.invoke(main, [*job["args"], "-o", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"Wrote {N_FILES} scores to {out} ({done} from an earlier run)." in resumed.output
    assert out.read_bytes() == job["reference"].read_bytes()
    assert not partial.exists()
