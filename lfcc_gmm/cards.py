"""Model cards of the built-in scorers: what each was trained on, what its score and threshold mean, how it was
measured here and where it fails. One source for ``antispoof scorers --info NAME``, ``docs/models/NAME.md``
(``make model-cards`` writes them from here; ``tests/test_cards.py`` checks they agree) and any program that wants
a summary without importing torch.

The numbers come from :mod:`lfcc_gmm.card_measurements`, which ``docs/models/measure.py`` writes: every table and
every measured figure in the prose below is read from it, none is typed by hand. The prose states what the
measurements cannot: the training data, the licences, the published numbers.

The AASIST threshold is measured, not assumed: the equal error rate point of the official weights on the demo dev
split in whole-file mode. A scorer holding other weights (fine-tuned, or trained here) cannot use it; it recognises
the official ones by :data:`OFFICIAL_AASIST_FINGERPRINTS` (:func:`rawnet.checkpoint.state_fingerprint`, the
SHA-256 of the tensors, the same for the ``.pth`` release and any exact copy).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .card_measurements import MEASUREMENTS
from .verdicts import Threshold

#: Fingerprints of the official clovaai/aasist weights (AASIST.pth, AASIST-L.pth) → their name in the measurements.
OFFICIAL_AASIST_FINGERPRINTS = {
    "298e115ccc6b1df52591ba4ee2183ae7a5963356e7138b6708dfd929627f5409": "aasist",
    "e6e780135da3c715a44d97c340e5ea2bda822c14a94e32d0e9abc62ed8fbabba": "aasist-l",
}
#: The sets of the measurements, in the order the cards show them, with a description for a reader.
SETS = {
    "dev": "demo dev split (fr-CA and en speakers, attacks D01-D04)",
    "eval": "demo eval split (a ru-RU speaker, attacks D01 and D03-D07; D05-D07 unseen)",
    "concat": "eval clips joined by three, same class and attack (8-14 s)",
    "late": "the same after 5 s of near-silence",
    "late-single": "an eval clip after 5 s of near-silence",
    "spliced": "one spoofed eval clip between two bona fide ones, against three bona fide",
}
CONDITION_NAMES = {
    "noise:20": "white noise, 20 dB SNR", "noise:10": "white noise, 10 dB", "noise:5": "white noise, 5 dB",
    "mulaw": "μ-law (G.711)", "alaw": "A-law (G.711)", "tel8k": "8 kHz round trip (telephone band)",
    "g722": "G.722 round trip", "reverb:0.3": "reverberation, RT60 0.3 s",
}
FILE_SCORE = "file score"
OFFICIAL = "official crop"


@dataclass(frozen=True)
class ModelCard:
    """What a person should know about a scorer before trusting its verdict.

    Attributes are one paragraph or line each, Markdown allowed; ``facts`` are the short "at a glance" rows.
    """

    name: str
    title: str
    summary: str
    facts: tuple[tuple[str, str], ...]
    scoring: str
    published: tuple[str, ...]
    failures: tuple[str, ...]
    reproduce: str

    def to_text(self) -> str:
        """The card for a terminal: summary, the facts, the measured EERs, the known failures."""
        lines = [f"{self.name}: {self.title}", "", _wrap(self.summary), ""]
        width = max(len(key) for key, _ in self.facts)
        lines += [f"{key:<{width}}  {_plain(value)}" for key, value in self.facts]
        lines += ["", "Known failures (measured here):"] + [f"- {_plain(f)}" for f in self.failures]
        lines += ["", f"Full card: docs/models/{self.name}.md"]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """The card as ``docs/models/NAME.md`` holds it."""
        parts = [f"# `{self.name}`: {self.title}", "", self.summary, "",
                 "*Generated from `lfcc_gmm/cards.py` by `make model-cards`; the measured numbers come from "
                 "`docs/models/measure.py` (see *Reproduce*). Do not edit by hand.*", "",
                 "## At a glance", "", "| | |", "|---|---|"]
        parts += [f"| {key} | {value} |" for key, value in self.facts]
        parts += ["", "## How a file is scored", "", self.scoring, ""]
        parts += _measured_sections(self.name)
        parts += ["## Published numbers", ""] + [f"- {line}" for line in self.published]
        parts += ["", "## Known failures, measured here", ""] + [f"- {line}" for line in self.failures]
        parts += ["", "## Reproduce", "", self.reproduce, ""]
        return "\n".join(parts)


def _plain(text: str) -> str:
    return text.replace("`", "").replace("**", "")


def _wrap(text: str, width: int = 100) -> str:
    import textwrap

    return textwrap.fill(_plain(text), width)


# -- reading the measurements ------------------------------------------------------------------------------------

def measured(scorer: str) -> Mapping[str, Any]:
    """The measurements of ``scorer`` (a key of ``MEASUREMENTS["scorers"]``)."""
    return MEASUREMENTS["scorers"][scorer]


def eer(scorer: str, set_name: str, way: str = FILE_SCORE) -> float:
    """EER (%) of ``scorer`` on a measured set, its file scores made ``way``."""
    return float(measured(scorer)["sets"][set_name]["eer"][way])


def errors(scorer: str, set_name: str, way: str = FILE_SCORE) -> tuple[float, float]:
    """(bona fide rejected %, spoof accepted %) at the dev split's EER threshold."""
    low, high = measured(scorer)["sets"][set_name]["errors_at_dev_threshold"][way]
    return float(low), float(high)


def dev_threshold(scorer: str, way: str = FILE_SCORE) -> float:
    """The EER threshold of ``scorer`` on the demo dev split (file scores made ``way``)."""
    return float(measured(scorer)["dev_thresholds"][way])


def non_speech(scorer: str) -> Mapping[str, float]:
    return measured(scorer)["sets"]["non-speech"]["scores"]


def official_aasist_threshold(fingerprint: str | None) -> Threshold | None:
    """The measured threshold of the official AASIST or AASIST-L weights, or None for any other weights."""
    name = OFFICIAL_AASIST_FINGERPRINTS.get(fingerprint or "")
    if name is None:
        return None
    label = "AASIST" if name == "aasist" else "AASIST-L"
    return Threshold(round(dev_threshold(name), 4),
                     f"the equal error rate point of the official {label} weights on the demo dev split, whole file "
                     f"(EER {eer(name, 'dev'):.2f} %; docs/models/aasist.md)")


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return [_row(header), _row(align), *(_row(r) for r in rows), ""]


def _pair(values: tuple[float, float]) -> str:
    return f"{values[0]:.1f} / {values[1]:.1f}"


def _measured_sections(name: str) -> list[str]:
    data = measured(name)
    deep = OFFICIAL in data["dev_thresholds"]
    sets = data["sets"]
    lines = ["## Measured on the demo corpus", "",
             f"EER in %, lower is better; *errors* are the bona fide rejected / spoofs accepted (%) at this scorer's "
             f"EER threshold on the dev split ({dev_threshold(name):.4f}{', whole file' if deep else ''}), which is "
             "what a verdict does. Files without speech would get \"no speech\"; here: "
             f"{sum(sets[s]['no_speech_verdicts'] for s in SETS if s in sets)} of "
             f"{sum(sets[s]['files'] for s in SETS if s in sets)}.", ""]
    header = ["set", "EER, whole file", *(["EER, official crop"] if deep else []), "errors at the threshold"]
    rows = [[f"{s}: {SETS[s]} ({sets[s]['files']} files)", f"{eer(name, s):.2f}",
             *([f"{eer(name, s, OFFICIAL):.2f}"] if deep else []), _pair(errors(name, s))] for s in SETS if s in sets]
    lines += _table(header, rows)
    conditions = [c for c in MEASUREMENTS["conditions"] if f"eval/{c}" in sets]
    if conditions:
        lines += ["### Under degradations (eval split, as `antispoof robustness` makes them)", ""]
        rows = [["clean", f"{eer(name, 'eval'):.2f}", *([f"{eer(name, 'eval', OFFICIAL):.2f}"] if deep else []),
                 _pair(errors(name, "eval"))]]
        rows += [[CONDITION_NAMES.get(c, c), f"{eer(name, f'eval/{c}'):.2f}",
                  *([f"{eer(name, f'eval/{c}', OFFICIAL):.2f}"] if deep else []), _pair(errors(name, f"eval/{c}"))]
                 for c in conditions]
        lines += _table(["condition", *header[1:]], rows)
    if deep:
        rules = [r for r in data["dev_thresholds"] if r not in (FILE_SCORE, OFFICIAL)]
        lines += ["### From window scores to a file score", "",
                  "Each candidate: EER (%), then bona fide rejected / spoofs accepted (%) at the candidate's own "
                  "dev EER threshold. *Over the file* rules read the timeline's windows, laid over the whole file; "
                  "the default lays its windows over the speech (from 0.5 s before the first detected speech to "
                  "0.5 s after the last). Files shorter than the model window (all but a few demo clips) have one "
                  "window, where the rules over the file agree; the constructed long files are where they "
                  "differ.", ""]
        chosen = [s for s in ("eval", "concat", "late", "late-single", "spliced") if s in sets]
        labels = {OFFICIAL: "official crop (first window)",
                  FILE_SCORE: "**speech-weighted mean, windows over the speech (the default)**",
                  **{rule: f"{rule}, windows over the file" for rule in rules}}
        rows = [[labels[rule], *(f"{eer(name, s, rule):.2f} ({_pair(errors(name, s, rule))})" for s in chosen)]
                for rule in [FILE_SCORE, OFFICIAL, *rules]]
        lines += _table(["rule", *(f"{s} ({sets[s]['files']} files)" for s in chosen)], rows)
    if "non-speech" in sets:
        scores = non_speech(name)
        lines += ["### Recordings without speech", "",
                  f"The raw score of each 3 s recording (the checks turn all {sets['non-speech']['no_speech_verdicts']}"
                  f" of {sets['non-speech']['files']} into \"no speech\"; a score at or above the threshold "
                  f"{dev_threshold(name):.4f} would otherwise read as bona fide):", ""]
        lines += _table(["recording", "score", "without the checks"],
                        [[label, f"{value:.4f}", "bona fide" if value >= dev_threshold(name) else "spoof"]
                         for label, value in scores.items()])
    return lines


# -- the cards ------------------------------------------------------------------------------------------------------

def _lfcc_gmm() -> ModelCard:
    name = "lfcc-gmm"
    silence = non_speech(name)
    return ModelCard(
        name=name,
        title="LFCC front end and two Gaussian mixtures (the ASVspoof 2019 B2 / 2021 LA and DF baseline)",
        summary=("The classical countermeasure: linear-frequency cepstral coefficients of every 20 ms frame, scored "
                 "by one GMM trained on bona fide frames and one trained on spoofed frames. The toolkit reproduces "
                 "the official MATLAB front end to 1e-8 and the official scoring. It ships no trained model: you "
                 "train one (`antispoof train lfcc-gmm`), which is what the measurements below did on the demo "
                 "corpus (64 components per class, seed 0)."),
        facts=(
            ("Scorer", "`lfcc-gmm` (CPU, no torch)"),
            ("Front end", "`asvspoof2019`: 20 LFCC + Δ + ΔΔ (60 dims), 20 ms frames every 10 ms, 20 linear "
                          "filters; `asvspoof2021`: 19 + Δ + ΔΔ (57 dims) from 30 ms frames"),
            ("Back end", "two diagonal GMMs (official: 512 components, 10 EM iterations per class)"),
            ("Input", "the whole file at 16 kHz mono (other rates and channels converted, and said so); no window, "
                      "no padding"),
            ("Training data", "yours: the official B2 model was trained on ASVspoof 2019 LA train (English, "
                              "VCTK speakers, attacks A01-A06); the measured model here on the demo train split "
                              "(210 files, en/es/it speakers, attacks D01-D04)"),
            ("Languages", "those it was trained on"),
            ("Score", "mean frame log-likelihood ratio, natural log, bona fide GMM − spoof GMM (higher = more "
                      "bona fide)"),
            ("Default threshold", "the EER point on the dev set given at training (`--dev-protocol`/`--dev-list`), "
                                  "stored in the model file; without one, 0 (where the two GMMs are equally likely, "
                                  "not calibrated). The demo model: "
                                  f"{dev_threshold(name):.4f} (dev EER {eer(name, 'dev'):.2f} %)"),
            ("Calibration", "none: the ratio of two GMMs trained on unbalanced data is not a calibrated LLR; "
                            "`antispoof calibrate` fits one on labelled dev scores"),
            ("Licence", "code MIT; no weights are shipped, a model you train carries the terms of your data"),
        ),
        scoring=("The file score is the official one: the mean over every frame of the file of the log-likelihood "
                 "ratio, computed once per frame (long files are read in 30 s blocks). The timeline's segments "
                 "(by default 4.04 s every 2.02 s, the deep models' grid) are the means of the same per-frame "
                 "ratios over the frames centred in each segment, so they cost one cumulative sum. Silence and "
                 "background count like speech in the file score: see the known failures."),
        published=(
            "ASVspoof 2019 LA eval, B2 (LFCC-GMM, 512 components): EER 8.09 %, min t-DCF 0.2116 "
            "(Todisco et al., Interspeech 2019). `antispoof train lfcc-gmm` + `score` + `evaluate` reproduce it "
            "within a few tenths of a point (random initialisation); see the README.",
            "ASVspoof 2021 eval (LFCC-GMM, `asvspoof2021` front end): LA EER 19.30 %, min t-DCF 0.5758; DF EER "
            "25.25 % (Yamagishi et al., ASVspoof 2021 workshop).",
        ),
        failures=(
            f"Silence reads as bona fide: 3 s of digital silence scores {silence['silence']:.2f}, far above every "
            "genuine demo file; the speech check makes it \"no speech\".",
            f"Leading silence drags a file towards bona fide: after 5 s of near-silence, "
            f"{errors(name, 'late-single')[1]:.1f} % of the spoofed eval clips are accepted at the dev threshold "
            f"(clean: {errors(name, 'eval')[1]:.1f} %). The frame average is the official definition, so it is "
            "kept; the timeline shows the speech segments' own scores and the `long-silence` warning flags such "
            "files.",
            f"Noise and band-limiting: EER {eer(name, 'eval/noise:10'):.2f} % at 10 dB SNR and "
            f"{eer(name, 'eval/tel8k'):.2f} % through the telephone band (clean {eer(name, 'eval'):.2f} %); "
            "`--augment` at training recovers part of it (README, Robustness).",
            f"Short spoofed inserts: a spoofed clip spliced between bona fide speech moves the frame average "
            f"little (EER {eer(name, 'spliced'):.2f} % on the spliced set); look at the segments.",
        ),
        reproduce=("```bash\n"
                   "antispoof train lfcc-gmm --protocol data/demo/protocols/train.txt --audio-dir data/demo/flac \\\n"
                   "    --components 64 --jobs 2 --dev-protocol data/demo/protocols/dev.txt "
                   "--dev-audio-dir data/demo/flac -o demo.npz\n"
                   "antispoof score --model demo.npz --protocol data/demo/protocols/eval.txt "
                   "--audio-dir data/demo/flac -o eval.txt\n"
                   "antispoof evaluate eval.txt\n"
                   ".venv/bin/python docs/models/measure.py -o docs/models/measurements.json "
                   "--module lfcc_gmm/card_measurements.py --rawnet2   # every number of the cards\n"
                   "```"),
    )


def _rawnet2() -> ModelCard:
    name = "rawnet2"
    have = name in MEASUREMENTS["scorers"]
    measured_line = (f"The demo's quick RawNet2 (reduced asvspoof2021 architecture, 2 s window, 20 CPU epochs on the "
                     f"demo train split): eval EER {eer(name, 'eval'):.2f} % over the whole file, "
                     f"{eer(name, 'eval', OFFICIAL):.2f} % with the official crop.") if have else ""
    return ModelCard(
        name=name,
        title="RawNet2 on raw waveforms (ASVspoof 2021 baseline, and Tak et al., ICASSP 2021)",
        summary=("A convolutional network on the raw waveform: a fixed bank of sinc band-pass filters, residual "
                 "blocks with filter-wise attention, a GRU and a two-class output. Two official variants: "
                 "`asvspoof2021` (the challenge baseline; its output is a log-softmax) and `icassp2021` (raw "
                 "logits). No trained weights are shipped: train it (`antispoof train rawnet2`) or load an official "
                 "checkpoint with `--model`. " + measured_line),
        facts=(
            ("Scorer", "`rawnet2` (torch; CUDA when available)"),
            ("Input", "windows of 64,600 samples (4.04 s; `icassp2021`: 64,000) at 16 kHz; a model trained here "
                      "records its own `nb_samp`"),
            ("Training data", "yours, or the official checkpoints' (ASVspoof 2019 LA train for the 2021 LA and DF "
                              "baselines: English, VCTK speakers)"),
            ("Languages", "those it was trained on"),
            ("Score", "output index 1 of the window: log P(bona fide) for `asvspoof2021`, the bona fide logit for "
                      "`icassp2021`; the file score is the speech-weighted mean over the whole file's windows"),
            ("Default threshold", "log 0.5 for `asvspoof2021` (the network's posterior of bona fide is one half), 0 "
                                  "for `icassp2021` (the sign of the bona fide logit); neither is calibrated"),
            ("Calibration", "none; `antispoof calibrate` on labelled dev scores"),
            ("Licence", "code MIT; no weights shipped (official checkpoints: see their repository's terms)"),
        ),
        scoring=_deep_scoring(name if have else "aasist"),
        published=(
            "ASVspoof 2021 eval, B04 (RawNet2, `asvspoof2021`): LA EER 9.50 %, min t-DCF 0.4257; DF EER 22.38 % "
            "(Yamagishi et al., ASVspoof 2021 workshop).",
        ),
        failures=_deep_failures(name) if have else ("Not measured here: run `docs/models/measure.py --rawnet2`.",),
        reproduce=("```bash\n"
                   "antispoof demo --with-rawnet2            # the quick RawNet2 of the demo table\n"
                   "antispoof score --scorer rawnet2 --model runs/rawnet2/best.pth --crop official \\\n"
                   "    --protocol ASVspoof2019.LA.cm.eval.trl.txt --audio-dir LA/ASVspoof2019_LA_eval/flac -o r2.txt\n"
                   ".venv/bin/python docs/models/measure.py -o docs/models/measurements.json "
                   "--module lfcc_gmm/card_measurements.py --rawnet2\n"
                   "```"),
    )


def _deep_scoring(name: str) -> str:
    return ("By default the model window slides over the whole file with 50 % overlap (the last window aligned to "
            "the end; a file shorter than the window is repeated to fill it, as in the official evaluation and "
            "training), and the file score is the **speech-weighted mean** of the window scores: each window "
            "weighs by the share of it that is speech, so that silence and background before, between or after "
            "the speech do not vote. The windows are the timeline's segments. The rule was chosen on the table "
            "below: on clips and joined clips it equals the plain mean (EER "
            f"{eer(name, 'concat', 'speech-weighted mean'):.2f} % vs {eer(name, 'concat', 'mean'):.2f} % on the "
            "joined clips), and after 5 s of near-silence it keeps its threshold where the plain mean does not "
            f"(spoofs accepted at the dev threshold: {errors(name, 'late', 'speech-weighted mean')[1]:.1f} % vs "
            f"{errors(name, 'late', 'mean')[1]:.1f} %); a low quantile or the minimum rejects far more bona fide "
            f"files ({errors(name, 'concat', 'minimum')[0]:.1f} % with the minimum on the joined clips). "
            "`--crop official` scores the first 64,600 samples only (repeat-padded), exactly as the official "
            "evaluation and the published numbers: use it to reproduce them.")


def _deep_failures(name: str) -> tuple[str, ...]:
    silence = non_speech(name)
    return (
        f"Silence reads as bona fide: digital silence scores {silence['silence']:.2f} and near-silence "
        f"{silence['near-silence']:.2f} (threshold {dev_threshold(name):.4f}); the speech check makes them "
        "\"no speech\".",
        f"With the official crop, whatever comes first decides: after 5 s of near-silence the crop sees almost only "
        f"silence, and {errors(name, 'late-single', OFFICIAL)[1]:.1f} % of the spoofed clips pass (whole file: "
        f"{errors(name, 'late-single')[1]:.1f} %).",
        f"Spliced inserts rarely turn a file's verdict: EER {eer(name, 'spliced'):.2f} % on the spliced set; the "
        "segments show where a window scores low.",
        f"Telephone band and noise: EER {eer(name, 'eval/tel8k'):.2f} % through 8 kHz, {eer(name, 'eval/noise:10'):.2f}"
        f" % at 10 dB SNR (clean {eer(name, 'eval'):.2f} %).",
    )


def _aasist() -> ModelCard:
    name = "aasist"
    official = official_aasist_threshold(next(iter(OFFICIAL_AASIST_FINGERPRINTS)))
    assert official is not None
    return ModelCard(
        name=name,
        title="AASIST / AASIST-L, spectro-temporal graph attention on raw waveforms (official clovaai weights)",
        summary=("AASIST (Jung et al., ICASSP 2022): a sinc front end and a residual encoder feed two graphs, one "
                 "over frequency and one over time, combined by heterogeneous graph attention. The official "
                 "pretrained weights (AASIST, 297,866 parameters; AASIST-L, 85,306) score out of the box. They were "
                 "trained on English read speech with the attacks of 2018-2019; the demo corpus is another "
                 "language, channel and generation of attacks, which the measurements below show."),
        facts=(
            ("Scorer", "`aasist` (torch; CUDA when available); `--weights` for AASIST-L or other weights"),
            ("Input", "windows of 64,600 samples (4.04 s) at 16 kHz"),
            ("Training data", "ASVspoof 2019 LA train: 2,580 bona fide and 22,800 spoofed utterances, 20 VCTK "
                              "speakers (English), attacks A01-A06 (TTS and VC systems of 2018-2019)"),
            ("Languages", "English only in training"),
            ("Score", "the bona fide logit of each window, unbounded; the file score is the speech-weighted mean "
                      "over the whole file's windows"),
            ("Default threshold", f"{official.value:.4f}, {official.meaning}. Other weights: 0, the sign of the "
                                  "bona fide logit"),
            ("Calibration", "none: logits are not LLRs; `antispoof calibrate` on labelled dev scores"),
            ("Licence", "code MIT; weights MIT (clovaai/aasist, © 2021-present NAVER Corp.)"),
        ),
        scoring=_deep_scoring(name),
        published=(
            "ASVspoof 2019 LA eval: AASIST EER 0.83 %, min t-DCF 0.0275; AASIST-L EER 0.99 %, min t-DCF 0.0309 "
            "(Jung et al., ICASSP 2022, with the official single-window evaluation: reproduce with `--crop "
            "official`).",
            "The official weights reproduce the official outputs here to within 1e-5 (LA_T_1272637: 5.2366, bona "
            "fide; an espeak clip: -6.5591, spoof).",
            f"AASIST-L on the demo: dev EER {eer('aasist-l', 'dev'):.2f} %, eval {eer('aasist-l', 'eval'):.2f} % "
            f"(whole file), EER threshold on dev {dev_threshold('aasist-l'):.4f}.",
        ),
        failures=(
            f"Another language, channel and attacks: eval EER {eer(name, 'eval'):.2f} % on the demo corpus against "
            "0.83 % published on ASVspoof 2019 LA; the dev EER point is far below 0 "
            f"({dev_threshold(name):.4f}), so bona fide speech of this corpus mostly scores negative.",
            *_deep_failures(name),
        ),
        reproduce=("```bash\n"
                   "antispoof score --scorer aasist --weights AASIST.pth --protocol data/demo/protocols/eval.txt \\\n"
                   "    --audio-dir data/demo/flac -o aasist.eval.txt                  # whole file\n"
                   "antispoof score --scorer aasist --weights AASIST.pth --crop official \\\n"
                   "    --protocol data/demo/protocols/eval.txt --audio-dir data/demo/flac -o aasist.crop.txt\n"
                   "antispoof evaluate aasist.eval.txt\n"
                   ".venv/bin/python docs/models/measure.py -o docs/models/measurements.json "
                   "--module lfcc_gmm/card_measurements.py --rawnet2\n"
                   "```"),
    )


_BUILDERS = {"lfcc-gmm": _lfcc_gmm, "rawnet2": _rawnet2, "aasist": _aasist}
#: Names of the scorers that have a card.
CARD_NAMES = tuple(_BUILDERS)


def model_card(name: str) -> ModelCard:
    """The card of a built-in scorer.

    Raises
    ------
    KeyError
        No card for ``name`` (plug-ins bring their own documentation).
    """
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise KeyError(f"no model card for {name!r}; cards exist for {', '.join(CARD_NAMES)}") from None


def write_card_files(folder: str | os.PathLike) -> list[Path]:
    """Write ``NAME.md`` of every card into ``folder`` (atomically); returns the paths."""
    from .atomic import atomic_write

    paths = []
    for name in CARD_NAMES:
        path = Path(folder) / f"{name}.md"
        with atomic_write(path) as handle:
            handle.write(model_card(name).to_markdown())
        paths.append(path)
    return paths
