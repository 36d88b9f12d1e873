"""The ``aasist-onnx`` and ``rawnet2-onnx`` scorers: exported networks run by ONNX Runtime, without torch.

A model file is an ONNX graph written by ``antispoof export`` (:func:`rawnet.export.export_onnx`), whose metadata
(:mod:`rawnet.onnx_format`) says what network it is, its input length, what its outputs are and its default
threshold. For AASIST the official weights are also bundled as such graphs (``aasist``, ``aasist-l``,
``aasist-asvspoof5``; made from the bundled safetensors by ``data/bundle_weights.py``, their SHA-256 in
:data:`rawnet.weights.KNOWN_WEIGHTS`, checked at every load), so ``aasist-onnx`` scores out of the box.

Everything but the network is :class:`rawnet.windows.WindowScorer`, the code the torch scorers use too: the
whole-file windows and their aggregation, ``crop="official"``, the segments, the speech checks, the thresholds
(:mod:`rawnet.thresholds`) and the JSON results. A window's score is output :data:`~rawnet.onnx_format.BONAFIDE_INDEX`
of the graph, as in the torch scorer, so both give the same scores up to float32 rounding. Nothing on this path
imports torch (``pip install antispoof[onnx]`` is enough).

Threads: ONNX Runtime runs one graph node at a time (sequential execution, one inter-op thread) and splits each
node over ``threads`` intra-op threads; the default is every core this process may use
(``os.sched_getaffinity``), which is what ONNX Runtime's own default (the physical cores) misses under a CPU
affinity or container limit. Set ``threads`` lower when several scorers share a machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lfcc_gmm.atomic import atomic_write
from lfcc_gmm.scorers import ScorerOptionError
from lfcc_gmm.verdicts import Threshold
from rawnet.onnx_format import INPUT_NAME, OUTPUT_NAME, ONNXFormatError, decode_metadata
from rawnet.thresholds import aasist_threshold, output_threshold
from rawnet.weights import KNOWN_WEIGHTS, default_aasist_weights, identify, resolve_weights
from rawnet.windows import DEFAULT_BATCH_SIZE, WindowScorer, check_crop


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def inference_session(model: bytes, threads: int | None = None, source: str = "ONNX model") -> Any:
    """An ONNX Runtime CPU session (``onnxruntime.InferenceSession``) for the serialized graph ``model``.

    ``threads`` intra-op threads (None: :func:`available_cores`), one inter-op thread, sequential execution, every
    graph optimisation.

    Raises
    ------
    ImportError
        onnxruntime is not installed (says which extra brings it).
    ONNXFormatError
        naming ``source``, when ONNX Runtime cannot load the bytes.
    """
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("the ONNX scorers need onnxruntime: pip install 'antispoof[onnx]'") from exc
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: its notes on graph fusions are not the user's business
    try:
        return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for a malformed or unsupported graph
        raise ONNXFormatError(f"{source}: not an ONNX model ONNX Runtime can load ({str(exc).strip()})") from exc


class ONNXScorer(WindowScorer):
    """What the ONNX Runtime scorers share: the exported graph on a batch of windows, the model file.

    Parameters
    ----------
    batch_size : windows per ``session.run``.
    crop : ``"none"`` (score the whole file) or ``"official"`` (the official single window), see
        :mod:`rawnet.windows`.
    threads : ONNX Runtime intra-op threads; None for every core this process may use (module docstring).

    Attributes
    ----------
    session_ : onnxruntime.InferenceSession
        The graph, set by :meth:`load`.
    metadata_ : dict
        The export's metadata (:mod:`rawnet.onnx_format`): ``architecture``, ``variant``, ``config``,
        ``nb_samp``, ``output_kind``, ``default_threshold``, the export check, ...
    model_ : bytes
        The serialized graph (what :meth:`save` writes).
    info_ : dict
        ``source`` (the file the graph came from) and ``fingerprint`` (of the weights, from the metadata).
    training_summary_ : dict
        For published weights (:data:`rawnet.weights.KNOWN_WEIGHTS`, told by the graph's SHA-256): ``weights``
        (the name), ``trained_on`` and ``source``.
    """

    architecture: ClassVar[str]
    runtime_options: ClassVar[tuple[str, ...]] = ("batch_size", "crop", "threads")

    def __init__(self, *, batch_size: int = DEFAULT_BATCH_SIZE, crop: str = "none", threads: int | None = None):
        self.batch_size = batch_size
        self.crop = crop
        self.threads = threads

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def nb_samp(self) -> int:
        """Samples per model input (the export's ``nb_samp``)."""
        self.ready()
        return int(self.metadata_["nb_samp"])

    @property
    def output_kind(self) -> str:
        """``"logits"``, ``"log-softmax"`` or ``"softmax"``: what the two outputs (and so the score) are."""
        self.ready()
        return str(self.metadata_["output_kind"])

    def ready(self) -> None:
        if getattr(self, "session_", None) is None:
            raise ValueError(f"this {self.name} scorer has no model yet: call {type(self).__name__}.load()")

    # -- scoring ------------------------------------------------------------------------------------------------
    def _batch_outputs(self, batch: np.ndarray) -> np.ndarray:
        self.ready()
        rows = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session_.run([OUTPUT_NAME], {INPUT_NAME: rows})[0]

    # -- files --------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the ONNX graph (with its metadata), atomically."""
        self.ready()
        with atomic_write(path, "wb") as handle:
            handle.write(self.model_)

    @classmethod
    def _default_model(cls) -> Path:
        """The graph :meth:`load` reads when given no path."""
        raise ScorerOptionError(
            f"the {cls.name} scorer needs an ONNX model file (--model), e.g. from `antispoof export --scorer "
            f"{cls.architecture} --model RUN_DIR/best.pth --format onnx -o model.onnx`")

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: str = "none",
        threads: int | None = None,
        **options: Any,
    ) -> ONNXScorer:
        """Read an ONNX file written by ``antispoof export`` (or :meth:`save`), or a bundled graph by weights name.

        Parameters
        ----------
        path : the ``.onnx`` file, or a name of :data:`rawnet.weights.KNOWN_WEIGHTS` with a bundled graph
            (``"aasist"``, ``"aasist-l"``, ``"aasist-asvspoof5"``); None for the scorer's default (see the
            subclass).
        batch_size, crop, threads : runtime settings, see the class.
        **options : none: the exported file describes its network (the variant and config of a torch model file).

        Raises
        ------
        ONNXFormatError
            naming the file: not an ONNX graph, not an antispoof export, or an export of another architecture.
        WeightsNotFoundError, WeightsError
            no such file or name; a bundled graph whose SHA-256 is wrong.
        """
        if options:
            raise ScorerOptionError(f"the {cls.name} scorer takes no {', '.join(sorted(options))}: the ONNX file "
                                    "describes its network")
        model_path = cls._default_model() if path is None else resolve_weights(path, onnx=True)
        scorer = cls(batch_size=batch_size, crop=check_crop(crop), threads=threads)
        scorer._install(model_path.read_bytes(), str(model_path))
        published = identify(model_path)
        if published is not None:
            entry = KNOWN_WEIGHTS[published]
            scorer.training_summary_ = {"weights": published, "trained_on": entry.trained_on, "source": entry.source}
        return scorer

    def _install(self, model: bytes, source: str) -> None:
        session = inference_session(model, self.threads, source)
        metadata = decode_metadata(session.get_modelmeta().custom_metadata_map, source)
        if metadata.get("architecture") != self.architecture:
            raise ONNXFormatError(f"{source}: an export of {metadata.get('architecture')!r}; score it with "
                                  f"--scorer {metadata.get('architecture')}-onnx")
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        if inputs != [INPUT_NAME] or OUTPUT_NAME not in outputs:
            raise ONNXFormatError(f"{source}: the graph takes {inputs} and gives {outputs}; an antispoof export "
                                  f"takes [{INPUT_NAME!r}] and gives {OUTPUT_NAME!r}")
        self.session_ = session
        self.metadata_ = metadata
        self.model_ = model
        self.info_ = {"source": source, "fingerprint": metadata.get("weights_fingerprint")}
        # Each export records its own default threshold (RawNet2's depends on the variant); an instance value
        # shadows the class attribute on purpose (Scorer declares it a ClassVar, which mypy does not let one set).
        self.default_threshold = float(metadata["default_threshold"])  # type: ignore[misc]


class AASISTONNXScorer(ONNXScorer):
    """AASIST or AASIST-L exported to ONNX, run by ONNX Runtime; the bundled official graphs score out of the box.

    :meth:`load` with no path reads the bundled graph of ``$ANTISPOOF_AASIST_WEIGHTS`` when that names bundled
    weights (``aasist``, ``aasist-l``, ``aasist-asvspoof5``) or is an ONNX file, else the bundled ``aasist``. The
    score and its threshold are those of :class:`rawnet.scorers.AASISTScorer`: the bona fide logit, and for the
    official AASIST and AASIST-L weights (told by the export's ``weights_fingerprint``) their equal error rate
    point on the demo dev split.
    """

    name: ClassVar[str] = "aasist-onnx"
    description: ClassVar[str] = ("AASIST / AASIST-L exported to ONNX, run by ONNX Runtime without torch (bundled "
                                  "official weights); CPU")
    default_threshold: ClassVar[float] = 0.0
    architecture: ClassVar[str] = "aasist"

    @classmethod
    def _default_model(cls) -> Path:
        return default_aasist_weights(onnx=True)

    def threshold(self) -> Threshold:
        """As :meth:`rawnet.scorers.AASISTScorer.threshold` (:func:`rawnet.thresholds.aasist_threshold`)."""
        return aasist_threshold(getattr(self, "info_", {}).get("fingerprint"), self.default_threshold)


class RawNet2ONNXScorer(ONNXScorer):
    """RawNet2 (any variant) exported to ONNX, run by ONNX Runtime; needs an exported file.

    The score is what the variant's torch scorer gives (:class:`rawnet.scorers.RawNet2Scorer`: log P(bona fide)
    for ``asvspoof2021``, the bona fide logit for ``icassp2021``, P(bona fide) for ``asvspoof5``), and so is the
    threshold (:func:`rawnet.thresholds.output_threshold`).
    """

    name: ClassVar[str] = "rawnet2-onnx"
    description: ClassVar[str] = "RawNet2 exported to ONNX (antispoof export), run by ONNX Runtime without torch; CPU"
    default_threshold: ClassVar[float] = 0.0
    architecture: ClassVar[str] = "rawnet2"

    def threshold(self) -> Threshold:
        """The equal-posterior point of a (log-)probability, or the sign of a logit; not calibrated."""
        return output_threshold(self.output_kind, self.default_threshold)
