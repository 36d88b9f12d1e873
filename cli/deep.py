"""``antispoof weights`` (fetch, list, path) and ``antispoof export``: the deep scorers' files."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click

from lfcc_gmm.scorers import load_scorer
from rawnet.catalog import AASIST_VARIANTS, ARCHITECTURES, RAWNET2_VARIANTS
from rawnet.weights import KNOWN_WEIGHTS, PRETRAINED_DIR, cache_dir, fetch, source_url, weights_file, weights_status

from .demo import DEMO_CORPUS
from .options import EXISTING_FILE, MODEL_FILE_OR_WEIGHTS, NEW_FILE


@click.group("weights")
def weights() -> None:
    """Pretrained weights: bundled with antispoof, or fetched once into the cache.

    \b
    Bundled (no download, no network): the official AASIST and AASIST-L
    (ASVspoof 2019 LA) and the ASVspoof 5 organisers' AASIST, as safetensors
    files with their licences; their SHA-256 is checked at every load.
    `--weights NAME` uses them: aasist (the default of --scorer aasist),
    aasist-l, aasist-asvspoof5. ANTISPOOF_AASIST_WEIGHTS (a file or a name)
    changes the default.

    \b
    The official .pth files can also be fetched into the cache,
    $ANTISPOOF_HOME/weights, else ~/.cache/antispoof/weights (or
    $XDG_CACHE_HOME/antispoof/weights). Every download is checked against the
    published SHA-256 before it is kept; nothing partial is ever left.
    Set ANTISPOOF_WEIGHTS_URL to a folder URL (http:// or file://) to
    download from a mirror.

    \b
    Examples:
      antispoof weights list
      antispoof score --scorer aasist clip.wav          # bundled AASIST
      antispoof weights fetch aasist                     # the official AASIST.pth
      antispoof weights fetch aasist --url file:///media/usb/AASIST.pth
    """


@weights.command("fetch")
@click.argument("name", type=click.Choice(sorted(KNOWN_WEIGHTS)))
@click.option("--url", metavar="URL", help="Download from this exact URL (a mirror or a local copy, "
                                           "e.g. file:///data/AASIST.pth); the SHA-256 is still checked.")
@click.option("--force", is_flag=True, help="Download again even when a verified copy is already cached.")
def fetch_command(name: str, url: str | None, force: bool) -> None:
    """Download the official weights file NAME into the cache and verify its SHA-256.

    A copy already in the cache with the right hash is kept (nothing is downloaded) unless --force.
    The path is printed on stdout, so `--weights $(antispoof weights fetch aasist)` works.
    Scoring does not need this: the bundled copies load without a download.
    """
    where = source_url(name, url)
    click.echo(f"Fetching {name} from {where}", err=True)
    with contextlib.ExitStack() as stack:
        bars: list = []

        def progress(done: int, total: int | None) -> None:
            if total is None:  # the server did not say how much is coming: no bar
                return
            if not bars:
                bars.append(stack.enter_context(click.progressbar(length=total, file=sys.stderr,
                                                                  label=KNOWN_WEIGHTS[name].filename)))
            bars[0].update(done - bars[0].pos)

        path = fetch(name, url=url, force=force, progress=progress)
    click.echo(f"{name}: SHA-256 verified ({KNOWN_WEIGHTS[name].sha256[:12]}...)", err=True)
    click.echo(str(path))


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """List the known weights: bundled or not, cached or not, where they come from, licence and training data.

    \b
    JSON fields: name, description, bundled (verified | damaged | absent | null
    when not bundled), bundled_path, onnx and onnx_path (the same for the
    bundled ONNX graph --scorer aasist-onnx runs), status (the cache: cached | missing |
    corrupt), path (in the cache), sha256 and url (the official file),
    licence, licence_files, trained_on, source, loads_from (the file
    `--weights NAME` reads, or null).
    """
    rows = [weights_status(name) for name in KNOWN_WEIGHTS]
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    click.echo(f"bundled: {PRETRAINED_DIR}\ncache:   {cache_dir()}")
    for row in rows:
        bundled = "not bundled" if row["bundled"] is None else f"bundled: {row['bundled']}"
        click.echo(f"\n{row['name']:<17} {bundled}, cache: {row['status']}\n"
                   f"{'':<17} {row['description']}\n"
                   f"{'':<17} trained on {row['trained_on']}\n"
                   f"{'':<17} licence {row['licence']} ({', '.join(Path(f).name for f in row['licence_files'])})\n"
                   f"{'':<17} loads from {row['loads_from'] or '(nothing: fetch it)'}\n"
                   + (f"{'':<17} ONNX graph ({row['onnx']}) {row['onnx_path']}\n" if row["onnx"] else "") +
                   f"{'':<17} official {row['url']}\n{'':<17} sha256 {row['sha256']}")


@weights.command("path")
@click.argument("name", type=click.Choice(sorted(KNOWN_WEIGHTS)))
def path_command(name: str) -> None:
    """Print the file NAME loads from: the bundled copy, else the cached official file.

    Exit code 1 if there is neither, or the file's SHA-256 is wrong.
    """
    click.echo(str(weights_file(name)))


#: The demo corpus clips the export is checked on when no --check-audio is given (a bona fide and a spoof).
EXPORT_CHECK_CLIPS = ("DEMO_E_0001.flac", "DEMO_E_0002.flac")


@click.command("export")
@click.option("--scorer", "scorer_name", required=True, type=click.Choice(ARCHITECTURES),
              help="Which network the checkpoint holds.")
@click.option("--model", "--weights", "model_path", type=MODEL_FILE_OR_WEIGHTS,
              help="Model file (best.pth of `antispoof train`), official state_dict, or bundled weights by name "
                   "(aasist, aasist-l, aasist-asvspoof5). AASIST: default the bundled weights of --variant.")
@click.option("--format", "export_format", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="onnx: an ONNX graph with a dynamic batch axis, which ONNX Runtime runs without torch.")
@click.option("-o", "--output", required=True, type=NEW_FILE, help="File to write (e.g. model.onnx).")
@click.option("--variant", help=f"Bare state_dicts only: rawnet2 {'|'.join(RAWNET2_VARIANTS)} (asvspoof2021 and "
                                "icassp2021 are told by shape for the official sizes); aasist "
                                f"{'|'.join(AASIST_VARIANTS)} (which bundled weights to use).")
@click.option("--config", type=EXISTING_FILE,
              help="Bare state_dicts of a non-official size: the model config (YAML/JSON).")
@click.option("--check-audio", "check_audio", multiple=True, type=EXISTING_FILE,
              help="Audio file the export is checked on (repeatable).  [default: two clips of the demo corpus]")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata written, with the check, as JSON.")
def export_command(scorer_name: str, model_path: Path | None, export_format: str, output: Path,
                   variant: str | None, config: Path | None, check_audio: tuple[Path, ...], as_json: bool) -> None:
    """Export a RawNet2 or AASIST network as ONNX, for scoring without torch.

    \b
    The graph maps float32 (batch, nb_samp) 16 kHz waveforms, repeat-padded or
    truncated to nb_samp, to (batch, 2) outputs; index 1 is bona fide (the score,
    for RawNet2 asvspoof5 the softmax probability). Before the file is written,
    ONNX Runtime runs the graph on real audio at batch 1 and at the batch of all
    check clips, and its outputs must equal the torch network's within a float32
    bound; the largest difference is printed. nb_samp, the variant, config and
    output kind are stored in the model's metadata (key "antispoof"):
      s = onnxruntime.InferenceSession("model.onnx")
      meta = json.loads(s.get_modelmeta().custom_metadata_map["antispoof"])
      scores = s.run(None, {"waveform": batch})[0][:, 1]

    \b
    Examples:
      antispoof export --scorer aasist --format onnx -o aasist.onnx        # bundled AASIST
      antispoof export --scorer rawnet2 --model runs/rn2/best.pth -o rawnet2.onnx
    """
    from rawnet.export import export_onnx
    from rawnet.scorers import RawWaveformScorer

    if not check_audio:
        check_audio = tuple(DEMO_CORPUS / "flac" / name for name in EXPORT_CHECK_CLIPS)
        if not all(path.is_file() for path in check_audio):
            raise click.UsageError(f"the demo corpus is not at {DEMO_CORPUS}: give --check-audio FILE")
    scorer = load_scorer(scorer_name, model_path, device="cpu", variant=variant, config=config)
    if not isinstance(scorer, RawWaveformScorer):  # the registry name may belong to a plug-in
        raise click.ClickException(f"scorer {scorer_name!r} ({type(scorer).__name__}) is not a RawNet2/AASIST network")
    metadata = export_onnx(scorer, output, check_audio)
    if as_json:
        click.echo(json.dumps(metadata, indent=1))
    network = metadata["variant"] if metadata["variant"].startswith(metadata["architecture"]) else \
        f"{metadata['architecture']} {metadata['variant']}"
    check = metadata["check"]
    click.echo(f"Wrote {output}: {network}, input (batch, {metadata['nb_samp']}), output {metadata['output_kind']} "
               f"(index 1 = bona fide). ONNX Runtime vs torch on {len(check['audio'])} clip(s), batch "
               f"{' and '.join(map(str, check['batch_sizes']))}: max difference {check['max_abs_difference']:.1e} "
               f"(float32 bound {check['tolerance']:.1e}).", err=True)
