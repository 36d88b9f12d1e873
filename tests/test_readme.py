"""Documentation stays true: every `antispoof` command in the README parses, its Python snippets run as written,
and every command and option has help."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"


def readme_commands() -> list[str]:
    """`antispoof ...` lines of the README's code blocks, continuation lines joined, prompts stripped."""
    commands, in_block, pending = [], False, ""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            continue
        text = pending + line.strip().removeprefix("$ ")
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        text = text.split("  #")[0].strip()  # trailing comments
        if text.startswith("antispoof ") or text.startswith("torchrun "):
            commands.append(text)
    return commands


def python_blocks() -> list[str]:
    """The README's ```python code blocks, in order."""
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def run_blocks(blocks: list[str], monkeypatch) -> dict:
    """Execute the blocks one after another in one namespace, from the repository root as the README says."""
    monkeypatch.chdir(REPO_ROOT)
    namespace: dict = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    return namespace


def to_args(command: str) -> list[str]:
    # Shell variables and command substitutions stand for paths in the examples.
    command = re.sub(r"\$\(which antispoof\)", "antispoof", command)
    command = re.sub(r"\$\{?(\w+)\}?", r"\1", command)
    args = shlex.split(command)
    if args[0] == "torchrun":
        args = args[args.index("antispoof"):]
    return args[1:]


@pytest.fixture
def paths_need_not_exist(monkeypatch):
    """The examples name files of the user's dataset: check everything but their existence."""
    original = click.Path.convert

    def convert(self, value, param, ctx):
        self_copy = click.Path(file_okay=self.file_okay, dir_okay=self.dir_okay, writable=False, readable=False,
                               exists=False, path_type=self.type, allow_dash=self.allow_dash)
        return original(self_copy, value, param, ctx)

    monkeypatch.setattr(click.Path, "convert", convert)


def parse(args: list[str]) -> None:
    """Parse like click would before running: commands resolved level by level, the leaf's options typed and
    checked (unknown options, bad choices or numbers and missing required options all fail)."""
    command: click.Command = main
    ctx = click.Context(main, info_name="antispoof")
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
        sub = command.get_command(ctx, name)
        assert sub is not None, f"unknown command {name!r}"
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    command.make_context(ctx.info_name, list(args), parent=ctx.parent)


def test_readme_has_commands():
    commands = readme_commands()
    assert len(commands) >= 15
    used = {to_args(c)[0] for c in commands if to_args(c)}
    assert {"evaluate", "score", "train", "compare", "weights", "lfcc"} <= used


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_parses(command, paths_need_not_exist):
    args = to_args(command)
    if args in (["--help"],):
        return
    parse(args)


@pytest.mark.slow  # trains the 64-component baseline on the demo train split: about 20 s of CPU
def test_readme_python_api_runs_as_written(monkeypatch, capsys):
    # All but the bundled-weights snippet (tested below), the ONNX Runtime one (it reads an exported aasist.onnx)
    # and the aasist-onnx scorer's (tests/test_onnx_scorers.py runs it on a real clip).
    blocks = [b for b in python_blocks()
              if 'get_scorer("aasist")' not in b and "aasist.onnx" not in b and "aasist-onnx" not in b]
    assert blocks and "clip.flac" not in "".join(blocks)
    namespace = run_blocks(blocks, monkeypatch)
    # Evaluated on files the model never saw, and it says so.
    train, evaluation = ({t.file_id for t in namespace[name]} for name in ("train", "evaluation"))
    assert train and evaluation and train.isdisjoint(evaluation)
    assert re.search(r"^EER \d+\.\d\d % \{", capsys.readouterr().out, flags=re.M)
    # The attribution example: a band x time map of the sinc front end and a Grad-CAM map of the encoder.
    assert namespace["result"].values.shape[0] == 70 and namespace["cam"].ndim == 2


def test_readme_aasist_snippet_loads_the_bundled_weights(tmp_path, monkeypatch, capsys):
    from rawnet.weights import bundled_file

    # The bundled-weights snippet, not the ONNX one (which reads an exported aasist.onnx).
    (block,) = [b for b in python_blocks() if 'get_scorer("aasist")' in b]
    assert ".load(None)" in block
    # An empty weights cache and no AASIST variable: the copy bundled with the package is read.
    monkeypatch.setenv("ANTISPOOF_HOME", str(tmp_path))
    monkeypatch.delenv("ANTISPOOF_AASIST_WEIGHTS", raising=False)
    namespace = run_blocks([block], monkeypatch)
    assert namespace["aasist"].info_["source"] == str(bundled_file("aasist"))
    assert re.fullmatch(r"\[-?\d+\.\d+\]\n", capsys.readouterr().out)


def walk(command: click.Command, path: str = "antispoof"):
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            yield from walk(command.get_command(click.Context(command), name), f"{path} {name}")


def test_every_command_and_option_is_documented():
    for path, command in walk(main):
        assert (command.help or "").strip(), f"{path} has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert (param.help or "").strip(), f"{path} {param.opts[0]} has no help"


def test_help_runs_for_every_command():
    from click.testing import CliRunner

    runner = CliRunner()
    for path, _ in walk(main):
        result = runner.invoke(main, [*path.split()[1:], "--help"])
        assert result.exit_code == 0, f"{path} --help failed: {result.output}"
        assert "Usage:" in result.output
