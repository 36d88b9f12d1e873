"""GPU proof of the deep models (issue 23): parity, mixed precision, scoring throughput, training, several GPUs.

One command on a machine with a GPU writes the "GPU" section of benchmarks/RESULTS.md::

    python benchmarks/gpu_check.py --write            # about 6 minutes on one GPU (--budget-s 330)

It prints a Markdown section (and with ``--write`` replaces only the "## GPU" section of ``--output``):

- Device: GPU name and memory, torch, CUDA and cuDNN versions, the host CPU.
- Parity: every network with official outputs (RawNet2 reduced reference state_dicts of each variant; AASIST,
  AASIST-L and the ASVspoof 5 AASIST with the official weights) on the shared clips: device float32 within 1e-4 of
  the CPU and of the official outputs; under autocast (bfloat16, float16) the difference from float32 is reported.
- EER on the demo eval split of the trained networks (the AASIST family) in float32 and under each autocast dtype:
  unchanged within one trial's share, max(1 / bona fide trials, 1 / spoof trials).
- Scoring throughput: files/s over whole-file windows at batch 1, 8, 32 and 128, float32 and autocast, beside the
  CPU's figure (2 threads, float32) from the same run; ONNX Runtime's CUDA provider where the build has one.
- Training: the full-config RawNet2 and AASIST recipes with AMP on the demo train split for a few hundred steps:
  steps/s, peak GPU memory, whether the loss fell, and a checkpoint resumed exactly (the resumed run's next epoch
  equals the uninterrupted run's, bit for bit, or within the measured run-to-run nondeterminism of the kernels).
- Multi-GPU: ``torchrun --nproc_per_node=N`` on the RawNet2 recipe and its speed-up, when there are N > 1 GPUs.

Every part checks the time left and skips, saying so, what would overrun ``--budget-s``. The exit status is 1 when a
check failed. ``--device cpu --quick`` runs the same code paths on the CPU with small configs, few steps and batch
sizes 1 and 2, autocast in bfloat16 (the CPU's), as a dry run (tests/test_gpu_check.py runs it).

Run from the repository root. The official reference files (``../shared/reference`` or
``$ANTISPOOF_REFERENCE_DIR``) are needed for the parity part only; it is skipped, saying why, without them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import importlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import REFERENCE_DIR, REPO_ROOT, machine_summary

from lfcc_gmm.audio import load_audio
from lfcc_gmm.demo import load_corpus
from lfcc_gmm.metrics import compute_eer
from lfcc_gmm.protocols import Trial
from rawnet.catalog import RAWNET2_VARIANTS, Recipe, official_recipe
from rawnet.checkpoint import read_torch_file, write_model_file
from rawnet.scorers import AASISTScorer, RawNet2Scorer, RawWaveformScorer
from rawnet.spec import ModelSpec, model_config
from rawnet.training import CHECKPOINT, METRICS_JSON, train
from rawnet.weights import KNOWN_WEIGHTS

SECTION = "GPU"
#: Largest difference allowed between the device's float32 outputs and the CPU's or the official ones.
PARITY_TOLERANCE = 1e-4
#: Where each part must end, as fractions of the budget; time a part leaves unused passes to the next.
PART_ENDS = {"parity": 0.12, "eer": 0.2, "throughput": 0.42, "training": 0.9, "multi-gpu": 1.0}
DEMO_DIR = REPO_ROOT / "data" / "demo"
#: Small configs of the dry run (``--quick``): the same code paths in a fraction of a second per step.
QUICK_CONFIGS: dict[str, dict[str, Any]] = {
    "rawnet2": {"nb_samp": 8000, "first_conv": 129, "in_channels": 1, "filts": [8, [8, 8], [8, 16], [16, 16]],
                "blocks": [2, 4], "nb_fc_node": 16, "gru_node": 16, "nb_gru_layer": 1, "nb_classes": 2},
    "aasist": {"architecture": "AASIST", "nb_samp": 8000, "first_conv": 65,
               "filts": [16, [1, 8], [8, 8], [8, 16], [16, 16]], "gat_dims": [16, 16],
               "pool_ratios": [0.5, 0.7, 0.5, 0.5], "temperatures": [2.0, 2.0, 100.0, 100.0]},
}


class Budget:
    """Seconds left of the run's budget, and of the current part (see :data:`PART_ENDS`); what was skipped."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.start = time.perf_counter()
        self.part_end = seconds
        self.skipped: list[str] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def enter(self, part: str) -> None:
        self.part_end = PART_ENDS[part] * self.seconds

    def left(self) -> float:
        return self.part_end - self.elapsed()

    @contextlib.contextmanager
    def share(self, items: int) -> Iterator[None]:
        """Within the block, the part ends after an even share of its time left among ``items`` items."""
        end = self.part_end
        self.part_end = self.elapsed() + self.left() / items
        try:
            yield
        finally:
            self.part_end = end

    def allows(self, estimate: float, what: str) -> bool:
        """Whether ``estimate`` seconds fit in the part's time left; if not, ``what`` is recorded as skipped."""
        if estimate <= self.left():
            return True
        self.skipped.append(f"{what}: needs about {estimate:.0f} s, {max(self.left(), 0):.0f} s of its part's "
                            "budget left")
        return False


@dataclass
class Settings:
    """What the command line chose."""

    device: torch.device
    quick: bool
    reference_dir: Path
    cpu_threads: int
    steps: int
    workers: int
    amp_dtypes: tuple[str, ...] = ()

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"


@dataclass
class Part:
    """A subsection of the report: its title, Markdown lines and the checks that failed."""

    title: str
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------- helpers


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def number(value: float, digits: int = 3) -> str:
    """A float as the tables print it: ``1.2e-05``, ``0.0123``, ``154``; NaN and infinities as words."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.2e}"


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` for the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def autocast(device: torch.device, dtype: str | None):
    """Autocast to ``dtype`` (``"bfloat16"``/``"float16"``) on ``device``'s type, or nothing for None (float32)."""
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=getattr(torch, dtype))


@contextlib.contextmanager
def tensor_float32(allowed: bool) -> Iterator[None]:
    """cuDNN convolutions and CUDA matrix products allowed to round their inputs to TF32 (10-bit mantissas) in the
    block, or not. torch's defaults: allowed for convolutions, not for matrix products. No effect on the CPU."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def precisions(settings: Settings) -> list[str | None]:
    """float32 (None) and the autocast dtypes."""
    return [None, *settings.amp_dtypes]


def precision_name(dtype: str | None) -> str:
    return "float32" if dtype is None else f"autocast {dtype}"


def supported_amp_dtypes(device: torch.device, quick: bool) -> tuple[str, ...]:
    """The autocast dtypes to check: bfloat16 where the GPU has it, and float16; on the CPU both, but only bfloat16
    in the dry run (float16 autocast on a CPU is slow)."""
    if device.type == "cuda":
        return ("bfloat16", "float16") if torch.cuda.is_bf16_supported() else ("float16",)
    return ("bfloat16",) if quick else ("bfloat16", "float16")


def window_options(whole_file: bool) -> dict[str, Any]:
    """The scorer option choosing windows covering the whole file, or the official single window."""
    return {"crop": "none" if whole_file else "official"}


def random_scorer(spec: ModelSpec, folder: Path, **runtime: Any) -> RawWaveformScorer:
    """A scorer of a freshly initialised ``spec`` (timing needs no trained weights), through a model file written
    once into ``folder``."""
    path = folder / f"{spec.architecture}-{spec.variant}-{spec.nb_samp}.pth"
    if not path.exists():
        torch.manual_seed(0)
        write_model_file(path, spec.to_dict(), spec.build().state_dict())
    cls = RawNet2Scorer if spec.architecture == "rawnet2" else AASISTScorer
    return cls.load(path, **runtime)


def network_scorer(network: ModelSpec | str, device: torch.device, batch: int, folder: Path) -> RawWaveformScorer:
    """A whole-file scorer of bundled AASIST weights (a name) or of a randomly initialised ``spec``."""
    runtime: dict[str, Any] = {"device": str(device), "batch_size": batch, **window_options(True)}
    if isinstance(network, str):
        return AASISTScorer.load(network, **runtime)
    return random_scorer(network, folder, **runtime)


def demo_signals(trials: Sequence[Trial]) -> list[np.ndarray]:
    return [load_audio(t.path).signal for t in trials if t.path is not None]


def balanced(trials: Sequence[Trial], per_class: int) -> list[Trial]:
    """The first ``per_class`` bona fide and spoof trials, in protocol order."""
    picked = [t for key in ("bonafide", "spoof") for t in [t for t in trials if t.key == key][:per_class]]
    return sorted(picked, key=trials.index)


# ---------------------------------------------------------------------------------------------------- device


def device_part(settings: Settings) -> Part:
    part = Part("Device")
    device = settings.device
    rows: list[tuple[str, str]] = []
    if settings.on_gpu:
        props = torch.cuda.get_device_properties(device)
        rows += [("device", f"{props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability "
                            f"{props.major}.{props.minor}"),
                 ("GPUs", str(torch.cuda.device_count())),
                 ("CUDA", f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")]
    else:
        rows += [("device", "the CPU (dry run: no GPU in this run)"), ("GPUs", "0")]
    rows += [("torch", torch.__version__),
             ("autocast dtypes", ", ".join(settings.amp_dtypes) or "none"),
             ("host", machine_summary()),
             ("CPU figures", f"{settings.cpu_threads} torch threads")]
    part.lines += table(("", ""), rows)
    return part


# ---------------------------------------------------------------------------------------------------- parity


@dataclass(frozen=True)
class Reference:
    """A network with official outputs: how to load it, and where its official outputs are.

    ``weights`` and ``config`` are paths under the reference folder, or for AASIST a bundled weights name; the
    config ``"outputs"`` is the ``config`` of the official JSON with the variant's official input length.
    ``outputs`` is the official JSON and ``keys`` the path inside it to ``{clip: {field: value}}``, the value the
    scorer's (spoof, bona fide) outputs, or for ``field="score"`` its bona fide output.
    ``trained``: official trained weights, whose EER means something.
    """

    name: str
    architecture: str
    variant: str
    weights: str
    config: str | None
    outputs: str
    keys: tuple[str, ...]
    field: str
    trained: bool

    def missing(self) -> str | None:
        """Why this build cannot load the network, or None."""
        if self.architecture == "rawnet2" and self.variant not in RAWNET2_VARIANTS:
            return f"RawNet2 variant {self.variant!r} not available in this build"
        if self.architecture == "aasist" and self.weights not in KNOWN_WEIGHTS:
            return f"weights {self.weights!r} not available in this build"
        return None

    def load(self, reference_dir: Path, device: torch.device, batch_size: int = 8) -> RawWaveformScorer:
        runtime: dict[str, Any] = {"device": str(device), "batch_size": batch_size, **window_options(False)}
        if self.architecture == "aasist":
            return AASISTScorer.load(self.weights, **runtime)
        config: Any = None if self.config is None else str(reference_dir / self.config)
        if self.config == "outputs":
            official = json.loads((reference_dir / self.outputs).read_text())["config"]
            config = {**official, "nb_samp": model_config(self.architecture, self.variant)["nb_samp"]}
        return RawNet2Scorer.load(reference_dir / self.weights, config=config, variant=self.variant, **runtime)

    def official(self, reference_dir: Path) -> dict[str, np.ndarray]:
        cases: Any = json.loads((reference_dir / self.outputs).read_text())
        for key in self.keys:
            cases = cases[key]
        return {clip: np.asarray(case[self.field], dtype=np.float64) for clip, case in cases.items()}

    def compared(self, outputs: np.ndarray) -> np.ndarray:
        """What of the scorer's (n, 2) outputs the official values give."""
        return outputs[:, 1] if self.field == "score" else outputs


REFERENCES = (
    Reference("RawNet2 asvspoof2021 (reduced)", "rawnet2", "asvspoof2021", "rawnet2/rawnet2_asvspoof2021_small.pth",
              "rawnet2/rawnet2_asvspoof2021_small.json", "rawnet2/official_outputs.json",
              ("cases", "asvspoof2021"), "output", False),
    Reference("RawNet2 icassp2021 (reduced)", "rawnet2", "icassp2021", "rawnet2/rawnet2_icassp2021_small.pth",
              "rawnet2/rawnet2_icassp2021_small.json", "rawnet2/official_outputs.json",
              ("cases", "icassp2021"), "output", False),
    Reference("RawNet2 asvspoof5 (reduced)", "rawnet2", "asvspoof5", "rawnet2/asvspoof5/rawnet2_asvspoof5_small.pth",
              "outputs", "rawnet2/asvspoof5/official_outputs.json", ("outputs",), "score", False),
    Reference("AASIST", "aasist", "aasist", "aasist", None, "aasist/official_outputs.json", ("AASIST.pth",),
              "logits", True),
    Reference("AASIST-L", "aasist", "aasist-l", "aasist-l", None, "aasist/official_outputs.json",
              ("AASIST-L.pth",), "logits", True),
    Reference("AASIST, ASVspoof 5", "aasist", "aasist", "aasist-asvspoof5", None,
              "asvspoof5/aasist/official_outputs.json", ("AASIST-ASVspoof5.pth",), "logits", True),
)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def parity_part(settings: Settings, budget: Budget) -> Part:
    part = Part("Parity with the CPU and the official outputs")
    reference_dir = settings.reference_dir
    if not (reference_dir / "lfcc" / "audio").is_dir():
        part.lines.append(f"Skipped: the official reference files are not at {reference_dir} (set "
                          "ANTISPOOF_REFERENCE_DIR).")
        budget.skipped.append("parity: no reference files")
        return part
    amp = settings.amp_dtypes
    headers = ["network", "clips", "device fp32 vs CPU", "device fp32 vs official", "TF32 vs CPU",
               *(f"{dtype} vs fp32" for dtype in amp), "verdict"]
    dashes = ["—"] * (4 + len(amp))
    rows: list[list[Any]] = []
    estimate = 0.0
    checked: set[str] = set()
    for ref in REFERENCES:
        missing = ref.missing()
        if missing is not None:
            rows.append([ref.name, *dashes, f"not available in this build ({missing})"])
            continue
        if settings.quick and ref.architecture in checked:
            rows.append([ref.name, *dashes, "skipped (--quick: one per architecture)"])
            budget.skipped.append(f"parity of {ref.name}: --quick checks one network per architecture")
            continue
        checked.add(ref.architecture)
        if not budget.allows(estimate, f"parity of {ref.name}"):
            rows.append([ref.name, *dashes, "skipped (budget)"])
            continue
        began = time.perf_counter()
        official = ref.official(reference_dir)
        clips = sorted(official)[:1] if settings.quick else sorted(official)
        on_cpu = ref.load(reference_dir, torch.device("cpu"))
        on_device = ref.load(reference_dir, settings.device)
        inputs = np.concatenate([on_cpu.model_inputs(load_audio(reference_dir / "lfcc" / "audio" / clip).signal)
                                 for clip in clips])
        with threads(settings.cpu_threads):
            cpu = on_cpu.outputs(inputs)
        with tensor_float32(False):
            fp32 = on_device.outputs(inputs)
        expected = np.stack([official[clip] for clip in clips])
        versus_cpu, versus_official = max_difference(fp32, cpu), max_difference(ref.compared(fp32), expected)
        tf32 = "—"
        if settings.on_gpu:
            with tensor_float32(True):
                tf32 = number(max_difference(on_device.outputs(inputs), cpu))
        mixed = []
        for dtype in amp:
            with autocast(settings.device, dtype):
                outputs = on_device.outputs(inputs)
            mixed.append(max_difference(outputs, fp32))
            if not np.isfinite(outputs).all():
                part.failures.append(f"{ref.name}: non-finite outputs under {dtype} autocast")
        ok = versus_cpu <= PARITY_TOLERANCE and versus_official <= PARITY_TOLERANCE and all(map(math.isfinite, mixed))
        if not ok:
            part.failures.append(f"parity of {ref.name}")
        rows.append([ref.name, len(clips), number(versus_cpu), number(versus_official), tf32, *map(number, mixed),
                     "pass" if ok else "FAIL"])
        estimate = time.perf_counter() - began
    part.lines += [
        "Largest absolute difference of the (clips, 2) outputs (RawNet2 asvspoof5: its official score, the "
        f"softmax probability). Pass: device float32 within {PARITY_TOLERANCE:g} "
        "of the CPU's and of the official outputs, TF32 off. *TF32*: float32 with cuDNN convolutions and matrix "
        "products on TF32 (torch's default for convolutions), reported, not judged. The autocast columns report how "
        "far mixed precision moves the outputs from float32 (no bound: it is the price of the precision). RawNet2 "
        "has no published trained "
        "weights: its rows use the reduced reference state_dicts of each official variant.", "",
        *table(headers, rows)]
    return part


def eer_part(settings: Settings, budget: Budget, eval_trials: Sequence[Trial]) -> Part:
    part = Part("EER on the demo eval split, float32 vs autocast")
    trained = [ref for ref in REFERENCES if ref.trained and ref.missing() is None]
    if settings.quick:
        trained, eval_trials = trained[:1], balanced(eval_trials, 2)
    n_bonafide = sum(t.key == "bonafide" for t in eval_trials)
    share = max(1 / n_bonafide, 1 / (len(eval_trials) - n_bonafide))
    signals = demo_signals(eval_trials)
    amp = settings.amp_dtypes
    rows: list[list[Any]] = []
    estimate = 0.0
    for ref in trained:
        if not budget.allows(estimate, f"EER of {ref.name}"):
            rows.append([ref.name, len(eval_trials), "—", *("—" for _ in amp), "—", "skipped (budget)"])
            continue
        began = time.perf_counter()
        scorer = ref.load(settings.reference_dir, settings.device, batch_size=32)
        eers = []
        for dtype in precisions(settings):
            with autocast(settings.device, dtype), tensor_float32(False):
                scores = scorer.score_signals(signals)
            labels = np.array([t.key == "bonafide" for t in eval_trials])
            eers.append(compute_eer(scores[labels], scores[~labels])[0])
        change = max(abs(e - eers[0]) for e in eers)
        ok = change <= share
        if not ok:
            part.failures.append(f"EER of {ref.name} under autocast")
        rows.append([ref.name, len(eval_trials), f"{100 * eers[0]:.2f}", *(f"{100 * e:.2f}" for e in eers[1:]),
                     f"{100 * change:.2f}", "pass" if ok else "FAIL"])
        estimate = time.perf_counter() - began
    part.lines += [
        f"EER (%) of the networks with official trained weights, one window per file as the official evaluation. "
        f"Pass: every autocast EER within one trial's share of the float32 EER, max(1/bona fide, 1/spoof) = "
        f"{100 * share:.2f} %.", "",
        *table(["network", "trials", "fp32 EER", *(f"{d} EER" for d in amp), "max change", "verdict"], rows)]
    return part


# ------------------------------------------------------------------------------------------------ throughput


def onnx_provider(settings: Settings) -> tuple[str | None, str]:
    """ONNX Runtime's execution provider to time (CUDA on a GPU; the CPU's in the dry run), or None and why not."""
    wanted = "CUDAExecutionProvider" if settings.on_gpu else "CPUExecutionProvider"
    if not hasattr(importlib.import_module("rawnet.export"), "export_onnx"):
        return None, "not available in this build (no ONNX export in rawnet.export)"
    if importlib.util.find_spec("onnxruntime") is None:
        return None, "not available: onnxruntime is not installed (pip install antispoof[onnx])"
    import onnxruntime

    if wanted not in onnxruntime.get_available_providers():
        return None, f"not available: onnxruntime {onnxruntime.__version__} has no {wanted} here"
    return wanted, wanted


def onnx_rows(settings: Settings, budget: Budget, signals: Sequence[np.ndarray], check_audio: Sequence[Path],
              network: ModelSpec | str, name: str, batches: Sequence[int], folder: Path) -> list[list[Any]]:
    """Throughput rows of ``network`` exported to ONNX (:func:`rawnet.export.export_onnx`) and run by ONNX Runtime
    over the same whole-file windows, with its largest difference to the torch CPU outputs."""
    provider, why = onnx_provider(settings)
    label = f"{name}, ONNX Runtime" + (f" {provider}" if provider else "")
    if provider is None:
        return [[label, "—", "float32", "—", why, "—", "—"]]
    if not budget.allows(60.0, f"ONNX export of {name}"):  # the exporter takes tens of seconds for AASIST
        return [[label, "—", "float32", "—", "skipped (budget)", "—", "—"]]
    import onnxruntime

    export = importlib.import_module("rawnet.export")
    scorer = network_scorer(network, torch.device("cpu"), 8, folder)
    path = folder / "network.onnx"
    export.export_onnx(scorer, path, check_audio=list(check_audio))
    session = onnxruntime.InferenceSession(str(path), providers=[provider])
    windows = [scorer.model_inputs(signal) for signal in signals]
    per_file = f"{np.mean([len(w) for w in windows]):.2f}"
    probe = np.concatenate(windows[:4])
    with torch.inference_mode():
        expected = scorer.outputs(probe)
    difference = max_difference(session.run(None, {"waveform": probe})[0], expected)
    rows = []
    for batch in batches:
        n = max(2 * batch, 16) if settings.on_gpu else batch + 1
        inputs = np.concatenate([windows[i % len(windows)] for i in range(n)])
        session.run(None, {"waveform": inputs[:batch]})  # warm-up
        began = time.perf_counter()
        for start in range(0, len(inputs), batch):
            session.run(None, {"waveform": inputs[start : start + batch]})
        rate = n / (time.perf_counter() - began)
        rows.append([f"{label}, max diff to torch CPU {number(difference)}", per_file, "float32", batch, number(rate),
                     "—", "—"])
    return rows


def files_per_second(scorer: RawWaveformScorer, signals: Sequence[np.ndarray], device: torch.device,
                     dtype: str | None) -> float:
    """Files scored per second over whole-file windows (audio already in memory), after a warm-up batch."""
    with autocast(device, dtype):
        scorer.score_signals(signals[: scorer.batch_size])
        synchronize(device)
        began = time.perf_counter()
        scorer.score_signals(signals)
        synchronize(device)
    return len(signals) / (time.perf_counter() - began)


def throughput_networks(settings: Settings) -> list[tuple[str, ModelSpec | str]]:
    """(name, spec of a randomly initialised network, or a bundled weights name) timed by the throughput part."""
    if settings.quick:
        return [("AASIST (small config)", ModelSpec("aasist", "aasist", dict(QUICK_CONFIGS["aasist"]))),
                ("RawNet2 asvspoof2021 (small config)",
                 ModelSpec("rawnet2", "asvspoof2021", dict(QUICK_CONFIGS["rawnet2"])))]
    return [("AASIST", "aasist"), *((f"RawNet2 {variant}", ModelSpec.create("rawnet2", variant))
                                    for variant in RAWNET2_VARIANTS)]


def throughput_part(settings: Settings, budget: Budget, signals: Sequence[np.ndarray], check_audio: Sequence[Path],
                    folder: Path) -> Part:
    part = Part("Scoring throughput, whole-file windows")
    cpu = torch.device("cpu")
    batches = {cpu: (1, 2) if settings.quick else (1, 8),
               settings.device: (1, 2) if settings.quick else (1, 8, 32, 128)}
    # Seconds per window measured last on each device (None: not yet), to tell what the budget allows.
    pace: dict[str, float | None] = {"cpu": None, settings.device.type: None}
    rows: list[list[Any]] = []

    def measure(make: Callable[[torch.device, int], RawWaveformScorer], device: torch.device, batch: int,
                dtype: str | None, windows: list[int], what: str) -> float | None:
        n = max(2 * batch, 16) if device.type == "cuda" else batch + 1
        files = [signals[i % len(signals)] for i in range(n)]
        total = sum(windows[i % len(signals)] for i in range(n)) + sum(windows[:batch])  # and the warm-up
        known = pace[device.type]
        if not budget.allows(0.0 if known is None else known * total, what):
            return None
        began = time.perf_counter()
        with threads(settings.cpu_threads) if device.type == "cpu" else contextlib.nullcontext():
            rate = files_per_second(make(device, batch), files, device, dtype)
        pace[device.type] = (time.perf_counter() - began) / total
        if not (rate > 0 and math.isfinite(rate)):
            part.failures.append(what)
        return rate

    for name, what in throughput_networks(settings):
        def make(device: torch.device, batch: int, what: ModelSpec | str = what) -> RawWaveformScorer:
            return network_scorer(what, device, batch, folder)

        probe = make(cpu, 1)
        windows = [len(probe.model_inputs(signal)) for signal in signals]
        per_file = f"{np.mean(windows):.2f}"
        on_cpu = {batch: measure(make, cpu, batch, None, windows, f"CPU throughput of {name}, batch {batch}")
                  for batch in batches[cpu]}
        for dtype in precisions(settings):
            for batch in batches[settings.device]:
                rate = measure(make, settings.device, batch, dtype, windows,
                               f"throughput of {name}, {precision_name(dtype)}, batch {batch}")
                reference = on_cpu.get(batch) if dtype is None else None
                rows.append([name, per_file, precision_name(dtype), batch,
                             "skipped (budget)" if rate is None else number(rate),
                             "—" if reference is None else number(reference),
                             "—" if rate is None or reference is None else f"{rate / reference:.1f}x"])
    name, network = throughput_networks(settings)[0]
    rows += onnx_rows(settings, budget, signals, check_audio, network, name, batches[settings.device], folder)
    part.lines += [
        "Files per second scoring the demo eval clips (in memory) as `score` does by default, `crop='none'`: the "
        "model's window every half window over the whole file, weighted by speech (detected on the CPU), after a "
        f"warm-up batch. *CPU*: the same scorer on the CPU, "
        f"{settings.cpu_threads} threads, float32, measured in this run. On a GPU, float32 is torch's default "
        "(cuDNN convolutions in TF32). RawNet2 timings use randomly initialised "
        "networks (no trained RawNet2 weights are published; the speed does not depend on the weights).", "",
        *table(["network", "windows/file", "precision", "batch", "device files/s", "CPU files/s", "device / CPU"],
               rows)]
    return part


# -------------------------------------------------------------------------------------------------- training


class StopTraining(Exception):
    """Raised from ``on_epoch`` to end a run early (budget, or the resumed run's one epoch)."""


def state_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest absolute difference between two checkpoints' model, optimizer and scaler tensors (inf when the
    structures differ)."""
    def tensors(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                out.update(tensors(item, f"{prefix}{key}/"))
            return out
        return {prefix: value}

    left = tensors({k: a[k] for k in ("model", "optimizer", "scaler", "scheduler")})
    right = tensors({k: b[k] for k in ("model", "optimizer", "scaler", "scheduler")})
    if left.keys() != right.keys():
        return math.inf
    worst = 0.0
    for key, x in left.items():
        y = right[key]
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape:
                return math.inf
            if not torch.equal(x, y):
                worst = max(worst, float((x.double() - y.double()).abs().max()) if x.numel() else math.inf)
        elif x != y:
            worst = max(worst, abs(float(x) - float(y)) if isinstance(x, int | float) else math.inf)
    return worst


@dataclass
class TrainingRun:
    """What one recipe's run measured."""

    steps: int
    steps_per_second: float
    first_loss: float
    last_loss: float
    peak_memory: float | None
    resume: str
    resume_ok: bool
    epoch_wall: float


def train_and_resume(spec: ModelSpec, trials: Sequence[Trial], recipe: Recipe, settings: Settings, budget: Budget,
                     folder: Path) -> TrainingRun:
    """Train ``recipe`` with AMP until its epochs or the part's budget end; then resume the epoch-1 checkpoint for
    one epoch and compare the result with the uninterrupted run's checkpoint after epoch 2."""
    amp_dtype = "float16" if settings.on_gpu else "bfloat16"
    options: dict[str, Any] = {"device": str(settings.device), "amp": True, "amp_dtype": amp_dtype,
                               "workers": settings.workers, "seed": 7}
    run, epoch_one, epoch_two = folder / "run", folder / "after-epoch-1.pth", folder / "after-epoch-2.pth"
    epoch_walls: list[float] = []
    last = [time.perf_counter()]

    def on_epoch(row: dict[str, Any]) -> None:
        now = time.perf_counter()
        epoch_walls.append(now - last[0])
        last[0] = now
        if row["epoch"] <= 2:
            shutil.copy(run / CHECKPOINT, epoch_one if row["epoch"] == 1 else epoch_two)
        # Stop when another epoch and the one-epoch resume after it would overrun the part; never before epoch 2.
        if row["epoch"] >= 2 and budget.left() < 2.5 * max(epoch_walls):
            raise StopTraining

    if settings.on_gpu:
        torch.cuda.reset_peak_memory_stats(settings.device)
    try:
        history = train(spec, trials, run, recipe, on_epoch=on_epoch, **options).history
    except StopTraining:
        budget.skipped.append(f"training {spec.architecture}: stopped after epoch {len(epoch_walls)} of "
                              f"{recipe.epochs} (budget)")
        history = json.loads((run / METRICS_JSON).read_text())
    peak = torch.cuda.max_memory_allocated(settings.device) / 2**30 if settings.on_gpu else None
    steps_per_epoch = len(trials) // recipe.batch_size
    timed = history[1:] or history  # the first epoch warms up kernels and caches
    steps_per_second = steps_per_epoch * len(timed) / sum(row["seconds"] for row in timed)

    def stop(row: dict[str, Any]) -> None:
        raise StopTraining

    def resume(name: str) -> dict[str, Any]:
        where = folder / name
        where.mkdir()
        shutil.copy(epoch_one, where / CHECKPOINT)
        with contextlib.suppress(StopTraining):
            train(spec, trials, where, recipe, resume=True, on_epoch=stop, **options)
        return read_torch_file(where / CHECKPOINT)

    resumed = resume("resumed")
    difference = state_difference(resumed, read_torch_file(epoch_two))
    if difference == 0:
        verdict, ok = "bit for bit", True
    else:
        # Kernels that add with atomics make two runs from one state differ; a resume is exact up to that.
        floor = state_difference(resume("resumed-again"), resumed)
        ok = floor > 0 and difference <= 4 * floor
        verdict = f"differs by {number(difference)}; two resumes differ by {number(floor)}"
    return TrainingRun(steps_per_epoch * len(history), steps_per_second, history[0]["train_loss"],
                       history[-1]["train_loss"], peak, verdict, ok, max(epoch_walls))


def training_setup(settings: Settings, spec: ModelSpec, trials: Sequence[Trial]) -> tuple[list[Trial], Recipe]:
    """The training trials (the split repeated so that an epoch has about 30 steps, 1 in the dry run) and the
    recipe (the official one, its epochs making ``settings.steps`` steps; the dry run's learns two files)."""
    recipe = official_recipe(spec.architecture, spec.variant)
    if settings.quick:
        # One file of each class, first samples: every epoch is the same batch of one bona fide and one spoof.
        recipe = dataclasses.replace(recipe, batch_size=2, lr=1e-3, random_crop=False)
        trials = balanced(trials, 1)
    steps_per_epoch = 1 if settings.quick else 30
    repeats = max(1, math.ceil(steps_per_epoch * recipe.batch_size / len(trials)))
    repeated = list(trials) * repeats
    epochs = max(2, math.ceil(settings.steps / (len(repeated) // recipe.batch_size)))
    return repeated, dataclasses.replace(recipe, epochs=epochs)


def training_part(settings: Settings, budget: Budget, train_trials: Sequence[Trial], folder: Path
                  ) -> tuple[Part, dict[str, float]]:
    """The training table, and the examples/s of each architecture (for the multi-GPU speed-up)."""
    part = Part("Training with mixed precision")
    amp_dtype = "float16" if settings.on_gpu else "bfloat16"
    rows: list[list[Any]] = []
    rates: dict[str, float] = {}
    estimate = 0.0
    recipes = (("RawNet2 asvspoof2021", "rawnet2", "asvspoof2021"), ("AASIST", "aasist", "aasist"))
    for index, (name, architecture, variant) in enumerate(recipes):
        config = dict(QUICK_CONFIGS[architecture]) if settings.quick else None
        spec = ModelSpec.create(architecture, variant, config)
        trials, recipe = training_setup(settings, spec, train_trials)
        label = f"{name} ({'small config' if settings.quick else 'full config'})"
        # Two epochs and one more to resume, at the previous recipe's pace.
        if not budget.allows(estimate, f"training {label}"):
            rows.append([label, "—", "—", "—", "—", "—", "—", "—", "skipped (budget)"])
            continue
        with budget.share(len(recipes) - index):
            run = train_and_resume(spec, trials, recipe, settings, budget, folder / architecture)
        estimate = 3 * run.epoch_wall
        falls = run.last_loss < run.first_loss
        # A few steps of a small network move its loss less than dropout does: the dry run reports, not judges.
        judged = [(run.resume_ok, "resume not exact")] + ([] if settings.quick else [(falls, "loss did not fall")])
        failures = [what for ok, what in judged if not ok]
        part.failures += [f"training {label}: {what}" for what in failures]
        rates[architecture] = run.steps_per_second * recipe.batch_size
        rows.append([label, f"{recipe.batch_size} × {spec.nb_samp}", run.steps, number(run.steps_per_second),
                     number(run.steps_per_second * recipe.batch_size),
                     "—" if run.peak_memory is None else f"{run.peak_memory:.2f} GiB",
                     f"{run.first_loss:.4f} → {run.last_loss:.4f}",
                     ("yes" if falls else "no") + (" (not judged: --quick)" if settings.quick else "" if falls else
                                                   " (FAIL)"),
                     ("pass: " if run.resume_ok else "FAIL: ") + run.resume])
    part.lines += [
        f"The official recipes (Adam, weighted cross-entropy, AASIST's cosine schedule over the run) with AMP "
        f"(autocast {amp_dtype}{', gradient scaling' if amp_dtype == 'float16' else ''}) on the demo train split, "
        "repeated so that an epoch has about 30 steps (the dry run: one step of two files). steps/s over the epochs "
        "after the first (warm-up), data "
        "loading included, checkpoint writing not. Loss: the mean training loss of the first and the last epoch "
        "(must fall, except in the dry run). "
        "Resume: the checkpoint written after epoch 1, resumed for one epoch, against the uninterrupted run's after "
        "epoch 2 (model, optimizer, scheduler and gradient-scaler state).", "",
        *table(["recipe", "batch × samples", "steps", "steps/s", "examples/s", "peak GPU memory", "loss",
                "loss falls", "resume"], rows)]
    return part, rates


# ------------------------------------------------------------------------------------------------- multi-GPU


def antispoof_command() -> str:
    """The ``antispoof`` console script of this environment."""
    beside = Path(sys.executable).with_name("antispoof")
    return str(beside) if beside.exists() else shutil.which("antispoof") or "antispoof"


def multi_gpu_part(settings: Settings, budget: Budget, train_trials: Sequence[Trial], rates: dict[str, float],
                   folder: Path, processes: int) -> Part:
    """``torchrun`` of ``processes`` processes (one per GPU; on the CPU, gloo processes: a dry run of the command)
    on the RawNet2 recipe, each process with as many examples per epoch as the single-device run."""
    part = Part("Several GPUs")
    if processes < 2:
        part.lines.append(f"Not available: this run has {processes} GPU{'s' if processes != 1 else ''}; "
                          "`torchrun --nproc_per_node=N` needs N > 1.")
        return part
    where = f"{processes} {'GPUs' if settings.on_gpu else 'CPU processes'}"
    config = QUICK_CONFIGS["rawnet2"] if settings.quick else None
    trials, recipe = training_setup(settings, ModelSpec.create("rawnet2", "asvspoof2021", config), train_trials)
    epochs = 3
    if "rawnet2" not in rates:
        part.lines.append(f"{where}, but not timed: no single-device rate to compare with.")
        return part
    if not budget.allows(epochs * len(trials) / rates["rawnet2"] + 30, f"torchrun on {where}"):
        part.lines.append(f"{where}, but not timed: budget.")
        return part
    # Every process gets the single-device run's examples: the trials repeated once per process, as links with
    # distinct names (a list may not name one file twice).
    audio = folder / "ddp-audio"
    audio.mkdir()
    lines = []
    for index, trial in enumerate(list(trials) * processes):
        assert trial.path is not None
        link = audio / f"r{index:06d}-{Path(trial.path).name}"
        link.symlink_to(Path(trial.path).resolve())
        lines.append(f"{link},{trial.key}\n")
    listing = folder / "ddp-train.csv"
    listing.write_text("".join(lines))
    options = ["--epochs", str(epochs), "--batch-size", str(recipe.batch_size), "--lr", str(recipe.lr),
               "--device", settings.device.type, "--workers", str(settings.workers)]
    if settings.on_gpu:
        options.append("--amp")
    if config is not None:
        (folder / "ddp-config.json").write_text(json.dumps(config))
        options += ["--config", str(folder / "ddp-config.json")]
    run_dir = folder / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               antispoof_command(), "train", "rawnet2", "--list", str(listing), "-o", str(run_dir), *options]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=max(budget.left(), 60))
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-10:])
        part.failures.append(f"torchrun on {where} (exit {done.returncode})")
        part.lines += [f"torchrun on {where} FAILED (exit {done.returncode}):", "", "```", tail, "```"]
        return part
    history = json.loads((run_dir / METRICS_JSON).read_text())
    timed = history[1:]
    steps = len(trials) // recipe.batch_size * len(timed)  # per process
    examples = steps * recipe.batch_size * processes / sum(row["seconds"] for row in timed)
    part.lines += [
        f"`torchrun --nproc_per_node={processes}` of `antispoof train rawnet2 {' '.join(options)}` "
        f"({time.perf_counter() - began:.0f} s; each process {len(trials) // recipe.batch_size} steps of "
        f"{recipe.batch_size} examples per epoch, as the single-device run), timed over the epochs after the first.",
        "", *table(["processes", "examples/s", "speed-up over one"],
                   [[1, number(rates["rawnet2"]), "1.0x"],
                    [processes, number(examples), f"{examples / rates['rawnet2']:.2f}x"]])]
    return part


# ------------------------------------------------------------------------------------------------------ main


def render(settings: Settings, parts: Sequence[Part], budget: Budget, command: str) -> str:
    failures = [f for part in parts for f in part.failures]
    when = datetime.datetime.now().astimezone()
    where = "a GPU" if settings.on_gpu else "the CPU, as a dry run"
    lines = [f"## {SECTION}", "",
             f"*Issue 23: the deep models on {where}.* `{command}`, {budget.elapsed():.0f} s of a "
             f"{budget.seconds:.0f} s budget, {when:%Y-%m-%d %H:%M %Z}. "
             + ("Every check passed." if not failures else f"**{len(failures)} check(s) failed**: "
                + "; ".join(failures) + "."), ""]
    for part in parts:
        lines += [f"### {part.title}", "", *part.lines, ""]
    lines += ["### Skipped", ""]
    lines += [f"- {item}" for item in budget.skipped] or ["Nothing."]
    return "\n".join(lines) + "\n"


def replace_section(text: str, section: str) -> str:
    """``text`` (a RESULTS.md) with its "## GPU" section replaced by ``section``, or ``section`` appended."""
    lines = text.splitlines(keepends=True)
    heading = f"## {SECTION}"
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == heading]
    if not starts:
        return text.rstrip("\n") + "\n\n" + section
    start = starts[0]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to prove (default cuda; cpu for a dry run)")
    parser.add_argument("--quick", action="store_true",
                        help="small configs, batch sizes 1 and 2, few steps, one clip: the dry run")
    parser.add_argument("--budget-s", type=float, default=330.0,
                        help="seconds for the whole run; parts skip what would overrun it (default 330)")
    parser.add_argument("--steps", type=int, help="training steps per recipe (default 300; --quick 4)")
    parser.add_argument("--cpu-threads", type=int, default=2, help="torch threads of the CPU figures (default 2)")
    parser.add_argument("--workers", type=int, help="data-loader processes in training (default min(8, cores); "
                        "--quick 0)")
    parser.add_argument("--processes", type=int, help="torchrun processes of the several-GPU part (default: every "
                        "GPU; with --device cpu, 2 or more run it on CPU processes as a dry run)")
    parser.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR,
                        help=f"the official reference files (default {REFERENCE_DIR})")
    parser.add_argument("--write", action="store_true", help="replace the GPU section of --output")
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md",
                        help="the results file --write updates (default benchmarks/RESULTS.md)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: CUDA is not available (torch {torch.__version__}); on a machine without a GPU run "
              "`--device cpu --quick` for the dry run", file=sys.stderr)
        return 2
    device = torch.device(args.device if ":" in args.device or args.device == "cpu" else "cuda:0")
    workers = args.workers if args.workers is not None else 0 if args.quick else min(8, os.cpu_count() or 1)
    settings = Settings(device, args.quick, args.reference_dir, args.cpu_threads,
                        args.steps or (4 if args.quick else 300), workers)
    settings.amp_dtypes = supported_amp_dtypes(device, args.quick)
    if device.type == "cpu":
        torch.set_num_threads(args.cpu_threads)
    budget = Budget(args.budget_s)
    splits = load_corpus(DEMO_DIR)
    eval_signals = demo_signals(splits["eval"])
    eval_paths = [t.path for t in splits["eval"] if t.path is not None]
    if args.quick:  # one second: three windows of the small configs per file
        eval_signals = [signal[: 2 * QUICK_CONFIGS["rawnet2"]["nb_samp"]] for signal in eval_signals[:8]]
    command = "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    parts = [device_part(settings)]
    with tempfile.TemporaryDirectory(prefix="antispoof-gpu-check-") as tmp:
        folder = Path(tmp)
        for name, run in (
            ("parity", lambda: parity_part(settings, budget)),
            ("eer", lambda: eer_part(settings, budget, splits["eval"])),
            ("throughput", lambda: throughput_part(settings, budget, eval_signals, eval_paths[:2], folder)),
        ):
            budget.enter(name)
            print(f"gpu_check: {name} … ({budget.elapsed():.0f} s so far)", file=sys.stderr, flush=True)
            parts.append(run())
        budget.enter("training")
        print(f"gpu_check: training … ({budget.elapsed():.0f} s so far)", file=sys.stderr, flush=True)
        training, rates = training_part(settings, budget, splits["train"], folder / "training")
        parts.append(training)
        budget.enter("multi-gpu")
        processes = args.processes if args.processes is not None else torch.cuda.device_count() if \
            settings.on_gpu else 0
        parts.append(multi_gpu_part(settings, budget, splits["train"], rates, folder, processes))
    section = render(settings, parts, budget, command.strip())
    print(section)
    if args.write:
        text = args.output.read_text() if args.output.exists() else "# Benchmark results\n"
        args.output.write_text(replace_section(text, section))
        print(f"gpu_check: wrote the {SECTION} section of {args.output}", file=sys.stderr)
    return 1 if any(part.failures for part in parts) else 0


if __name__ == "__main__":
    sys.exit(main())
