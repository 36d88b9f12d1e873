"""``antispoof robustness``: EER of any scorer under noise, codecs, band-limiting and reverberation."""

from __future__ import annotations

import json

import click

from lfcc_gmm import lossy_codecs
from lfcc_gmm.scorers import load_scorer

from .options import (
    MODEL_FILE_OR_WEIGHTS,
    NEW_DIR,
    device_option,
    input_options,
    parsed_by,
    progress_bar,
    select_trials,
)

DEFAULT_CONDITIONS = "clean,noise:20,noise:10,noise:5,mulaw,alaw,tel8k,g722,reverb:0.3"


class ConditionsOption(click.Option):
    """``--conditions``: its help ends with the conditions :mod:`lfcc_gmm.degrade` offers, read when the help is
    shown (the module imports SciPy's signal tools, too slow to load for every command)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from lfcc_gmm.degrade import describe_conditions

        base, self.help = self.help, f"{self.help} Available: {describe_conditions()}."
        try:
            return super().get_help_record(ctx)
        finally:
            self.help = base


@click.command(epilog="\b\nCodec conditions (the ASVspoof 5 evaluation codecs), KBPS = bit rate in kbit/s:\n"
                      + lossy_codecs.describe()
                      + "\n\nWithout :KBPS (all but mp3, whose bare name is libsndfile's) each file gets a bit "
                        "rate drawn from the ASVspoof 5 range, seeded by --seed, its ID and the condition's name. "
                        "Every round trip keeps the length and the alignment of the input (encoder "
                        "delay and padding removed); narrow-band codecs run at 8 kHz and come back at 16 kHz. "
                        "Opus, AMR-NB, MP3 and M4A come with PyAV (pip install 'antispoof[codecs]'); AMR-WB and "
                        "Speex need the libvo-amrwbenc and libspeex libraries (make install puts them there "
                        "on Debian as root).")
@input_options
@click.option("--scorer", "scorer_name", default="lfcc-gmm", show_default=True, help="Registered scorer name.")
@click.option("--model", "--weights", "model_path", type=MODEL_FILE_OR_WEIGHTS,
              help="Model / checkpoint / weights file of the scorer, or bundled weights by name (aasist, aasist-l, "
                   "aasist-asvspoof5).")
@click.option("--conditions", cls=ConditionsOption, default=DEFAULT_CONDITIONS, show_default=True,
              callback=parsed_by("lfcc_gmm.degrade:parse_conditions"),
              help="Comma-separated conditions; chain steps with '+' (e.g. tel8k+mulaw, amr-nb:12.2).")
@click.option("-o", "--output-dir", required=True, type=NEW_DIR,
              help="Folder for robustness.csv, robustness.json, the heat map and per-condition score files.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Seed of the random degradations (combined with each file's ID and each condition's name).")
@click.option("--save-audio", is_flag=True, help="Also write the degraded audio (OUTPUT_DIR/audio/CONDITION/).")
@device_option()
@click.option("--batch-size", type=click.IntRange(min=1), help="Files per forward pass (deep scorers).")
@click.option("--jobs", type=click.IntRange(min=1), help="Parallel processes (lfcc-gmm).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def robustness(protocol, audio_dir, file_list, extensions, scorer_name, model_path, conditions, output_dir, seed,
               save_audio, device, batch_size, jobs, as_json) -> None:
    """Measure how a scorer's EER degrades under noise, codecs, band-limiting and reverberation.

    Every file of the labelled set is degraded in memory under each condition and scored; the EER is
    reported per condition for the pooled set and for each attack. Degraded audio is not written
    unless --save-audio. The random degradations are seeded by --seed, the file's ID and the
    condition's name, never by positions: reruns are identical, and a condition gives the same
    row whatever other conditions are listed, in any order.

    \b
    Example:
      antispoof robustness --scorer lfcc-gmm --model model.npz \\
          --protocol data/demo/protocols/eval.txt --audio-dir data/demo/flac \\
          --conditions clean,noise:10,mulaw,tel8k -o robustness/lfcc
    """
    from lfcc_gmm.robustness import evaluate_robustness, write_robustness_report

    trials = select_trials(protocol, audio_dir, file_list, extensions, require_labels=True)
    scorer = load_scorer(scorer_name, model_path, jobs=jobs, device=device, batch_size=batch_size)
    with progress_bar(f"Scoring {len(conditions)} conditions", len(trials) * len(conditions)) as update:
        result = evaluate_robustness(scorer, trials, conditions, seed=seed, progress=update,
                                     audio_dir=output_dir / "audio" if save_audio else None)
    write_robustness_report(result, trials, output_dir, title=f"{scorer_name}: EER (%) by condition and attack")
    click.echo(json.dumps(result.to_dict(), indent=1) if as_json else result.to_text())
    if result.failures:
        click.echo(f"{len(result.failures)} file(s) could not be read and were left out, e.g. "
                   f"{result.failures[0][1]}: {result.failures[0][2]}", err=True)
    click.echo(f"Wrote {output_dir}/robustness.csv, robustness.json, robustness.png.", err=True)
