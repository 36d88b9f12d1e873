"""``antispoof demo``: the demo application, the main job on the embedded demo corpus.

The settings of this application live here, not in the library (:func:`lfcc_gmm.demo.run_demo` takes them as
arguments): where the corpus sits in a source checkout, and the reduced RawNet2 it quick-trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import MODEL_FILE_OR_WEIGHTS, staged_progress

#: The embedded corpus in a source checkout (``data/demo`` beside the packages); elsewhere ``--corpus`` says where.
DEMO_CORPUS = Path(__file__).resolve().parents[1] / "data" / "demo"

#: The demo's quick RawNet2: the asvspoof2021 architecture with narrower layers and 2 s inputs, so a few
#: epochs train in minutes on a CPU (the official config has 17.6 M parameters and 4 s inputs).
DEMO_RAWNET2_CONFIG = {
    "nb_samp": 32000,
    "first_conv": 129,
    "in_channels": 1,
    "filts": [20, [20, 20], [20, 64], [64, 64]],
    "blocks": [2, 4],
    "nb_fc_node": 128,
    "gru_node": 128,
    "nb_gru_layer": 1,
    "nb_classes": 2,
}

STAGES = {
    "features": "LFCC-GMM: extracting train LFCCs",
    "bonafide": "LFCC-GMM: EM, bona fide GMM",
    "spoof": "LFCC-GMM: EM, spoof GMM",
    "dev": "LFCC-GMM: scoring dev",
    "eval": "LFCC-GMM: scoring eval",
    "aasist dev": "AASIST: scoring dev",
    "aasist eval": "AASIST: scoring eval",
    "epoch": "RawNet2: training",
    "rawnet2": "RawNet2: scoring eval",
}


@click.command()
@click.option("-o", "--output-dir", default="demo-report", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Report folder to write.")
@click.option("--corpus", "corpus_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Demo corpus folder (default: data/demo of the source checkout).")
@click.option("--weights", type=MODEL_FILE_OR_WEIGHTS,
              help="AASIST weights for the AASIST row: a file or a name (default: the bundled aasist; see "
                   "`antispoof weights list`).")
@click.option("--no-aasist", is_flag=True, help="Leave AASIST out even if its weights are available.")
@click.option("--with-rawnet2", is_flag=True, help="Also quick-train a RawNet2 on the CPU (a few minutes more).")
@click.option("--rawnet2-epochs", default=20, show_default=True, type=click.IntRange(min=1),
              help="Epochs of the quick RawNet2 training.")
@click.option("--components", default=64, show_default=True, type=click.IntRange(min=1),
              help="GMM components per class (the corpus is small; ASVspoof-scale training uses 512).")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(min=1), help="Parallel processes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def demo(output_dir, corpus_dir, weights, no_aasist, with_rawnet2, rawnet2_epochs, components, jobs, seed,
         as_json) -> None:
    """Train, score, compare and plot on the embedded demo corpus, in a few minutes on a CPU.

    \b
    1. trains the LFCC-GMM baseline on the train split;
    2. scores dev and eval with it;
    3. scores them with the pretrained AASIST when its weights are available;
    4. with --with-rawnet2, quick-trains a reduced RawNet2 (about a minute) and scores eval;
    5. when AASIST ran, fuses it with LFCC-GMM on dev and applies the fusion to eval;
    6. prints pooled and per-attack EER on eval (attacks unseen in train/dev marked) and writes
       OUTPUT_DIR/report.md with DET curves, score histograms and all score files.
    Nothing is tuned on eval.
    """
    from lfcc_gmm.demo import run_demo

    with staged_progress(STAGES) as progress:
        result = run_demo(output_dir, corpus_dir=corpus_dir or DEMO_CORPUS, components=components, jobs=jobs,
                          aasist_weights=weights, use_aasist=not no_aasist, with_rawnet2=with_rawnet2,
                          rawnet2_config=DEMO_RAWNET2_CONFIG, rawnet2_epochs=rawnet2_epochs, seed=seed,
                          progress=progress)
    if as_json:
        click.echo(json.dumps(result.comparison.to_dict(), indent=1))
    else:
        click.echo(result.comparison.to_text())
    for name, reason in result.skipped.items():
        click.echo(f"{name} skipped: {reason}", err=True)
    timing = ", ".join(f"{name} {s:.0f} s" for name, s in result.seconds.items())
    click.echo(f"Report: {result.report} ({timing}).", err=True)
