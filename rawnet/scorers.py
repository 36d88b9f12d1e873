"""The ``rawnet2`` and ``aasist`` scorers: the raw-waveform networks behind the common :class:`Scorer` interface.

Scoring is that of :class:`rawnet.windows.WindowScorer`: by default the model window slides over the whole file
(50 % overlap) and the file score is the speech-weighted mean of the window scores; ``crop="official"`` is the
official evaluation (SPEC §5-6), the first ``nb_samp`` samples repeat-padded. A file is loaded as 16 kHz mono
float64 by :func:`lfcc_gmm.audio.load_audio` (resampling and down-mixing are reported as
``AudioConversionWarning``), its windows cast to float32 and passed through the model in eval mode; a window's
score is output index 1 (bona fide). ``batch_size`` windows, of one file or several, go through one forward pass,
under :func:`torch.inference_mode`, on CUDA when available (``device="auto"``).

Model files are those of :mod:`rawnet.checkpoint` (``best.pth`` of a training run: a dict of plain values and
tensors with ``format`` ``"antispoof-rawnet2"`` or ``"antispoof-aasist"``); :meth:`save` writes the same format.
Bare official state_dicts are accepted too (see each scorer's ``load``). Every file is read by
:func:`rawnet.checkpoint.read_torch_file`, with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from torch import nn

from lfcc_gmm.augment import Augmenter
from lfcc_gmm.protocols import Trial
from lfcc_gmm.scorers import ScorerOptionError
from lfcc_gmm.verdicts import Threshold
from rawnet.aasist import AASIST
from rawnet.catalog import AASIST_VARIANTS, RAWNET2_VARIANTS, Recipe, official_recipe
from rawnet.checkpoint import CheckpointError, read_weights_file, state_fingerprint, write_model_file
from rawnet.data import Augment
from rawnet.rawnet2 import DEFAULT_THRESHOLDS, SCORE_OUTPUTS, RawNet2, scoring_network
from rawnet.spec import ConfigSource, ModelSpec, model_config
from rawnet.thresholds import aasist_threshold, output_threshold
from rawnet.training import resolve_device, train
from rawnet.weights import KNOWN_WEIGHTS, default_aasist_weights, identify, resolve_weights
from rawnet.windows import DEFAULT_BATCH_SIZE, WindowScorer, check_crop

_RECIPE_FIELDS = frozenset(f.name for f in dataclasses.fields(Recipe))


class RawWaveformScorer(WindowScorer):
    """What the raw-waveform scorers share: model files, the network on a batch of windows, training.

    Parameters
    ----------
    variant : the model variant (see the subclass).
    config : the model config (a mapping, or for RawNet2 a YAML/JSON file); None takes the variant's official one.
    device : ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    batch_size : windows per forward pass.
    crop : ``"none"`` (score the whole file) or ``"official"`` (the official single window), see
        :mod:`rawnet.windows`.

    Attributes
    ----------
    model_ : torch.nn.Module
        The network in eval mode on ``device_``, set by :meth:`fit` or :meth:`load`.
    network_ : torch.nn.Module
        ``model_`` seen as a map from (batch, nb_samp) to the (batch, 2) outputs.
    spec_ : rawnet.spec.ModelSpec
        What the network is (architecture, variant, config).
    info_ : dict
        ``epoch``, ``dev_eer`` and ``source`` (the file the weights came from) of the weights.
    device_ : torch.device
    training_summary_ : dict
        Set by :meth:`fit`: ``run_dir`` and ``model_file`` (None when trained in a temporary directory),
        ``best_epoch``, ``best_dev_eer``, ``epochs`` and the torchrun ``rank`` of this process (only rank 0 wrote
        the run directory). Set by :meth:`load` for published weights (:data:`rawnet.weights.KNOWN_WEIGHTS`, told
        by their SHA-256): ``weights`` (the name), ``trained_on`` and ``source``.
    """

    architecture: ClassVar[str]
    variants: ClassVar[tuple[str, ...]]
    runtime_options: ClassVar[tuple[str, ...]] = ("device", "batch_size", "crop")
    file_options: ClassVar[tuple[str, ...]] = ("variant", "config")

    def __init__(
        self,
        variant: str,
        config: ConfigSource | None = None,
        *,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: str = "none",
    ):
        self.variant = variant
        self.config = config
        self.device = device
        self.batch_size = batch_size
        self.crop = crop

    # -- what the subclasses say -------------------------------------------------------------------------------
    def _spec(self, nb_samp: int | None = None) -> ModelSpec:
        """The network this scorer's parameters describe (input length ``nb_samp`` when given)."""
        raise NotImplementedError

    @classmethod
    def _params(cls, spec: ModelSpec) -> dict[str, Any]:
        """Constructor arguments that describe ``spec``."""
        return {"variant": spec.variant, "config": spec.config}

    # The hooks below take the keyword options of :meth:`load`; each subclass names the ones it accepts, which
    # ``*args: Any, **options: Any`` lets it do (to a type checker, a signature any override may narrow).
    @classmethod
    def _spec_for_state_dict(
        cls, state: Mapping[str, torch.Tensor], path: Path, *args: Any, **options: Any
    ) -> ModelSpec:
        """The network a bare state_dict belongs to (``options`` are those of :meth:`load`)."""
        raise NotImplementedError

    @classmethod
    def _default_weights(cls, *args: Any, **options: Any) -> Path:
        """The weights :meth:`load` reads when no path is given."""
        raise ScorerOptionError(f"the {cls.name} scorer needs a model file (--model), e.g. RUN_DIR/best.pth of "
                                f"`antispoof train {cls.name}`")

    @staticmethod
    def _network(model: nn.Module) -> nn.Module:
        """A module mapping float32 (batch, nb_samp) to the (batch, 2) outputs of ``model``; class 1 is bona fide."""
        return model

    @property
    def output_kind(self) -> str:
        """``"logits"``, ``"log-softmax"`` or ``"softmax"``: what the two outputs (and so the score) are."""
        return "logits"

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def nb_samp(self) -> int:
        """Samples per model input (the config's ``nb_samp``)."""
        return self.spec_.nb_samp

    def cpu_network(self) -> nn.Module:
        """A fresh CPU copy of the network in eval mode, mapping (batch, nb_samp) to (batch, 2) outputs."""
        model = self.spec_.build()
        model.load_state_dict(self._fitted().state_dict())
        return self._network(model).eval()

    def ready(self) -> None:
        self._fitted()

    def _fitted(self) -> nn.Module:
        model = getattr(self, "model_", None)
        if model is None:
            raise ValueError(f"this {self.name} scorer has no weights yet: call fit() or {type(self).__name__}.load()")
        return model

    def _install(self, spec: ModelSpec, state: Mapping[str, torch.Tensor], info: dict[str, Any]) -> None:
        model = spec.build()
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(
                f"{info.get('source')}: weights do not fit the {spec.architecture} {spec.variant!r} model "
                f"with config {spec.config}: {exc}"
            ) from exc
        # Under torchrun each process keeps its copy on its own GPU.
        self.device_ = resolve_device(self.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.model_ = model.to(self.device_).eval()
        self.network_ = self._network(self.model_)
        self.spec_ = spec
        # Recognises published weights whatever file they came from (lfcc_gmm.cards holds their measured thresholds).
        self.info_ = {**info, "fingerprint": state_fingerprint(state)}

    # -- scoring ------------------------------------------------------------------------------------------------
    def _batch_outputs(self, batch: np.ndarray) -> np.ndarray:
        self._fitted()
        with torch.inference_mode():
            out = self.network_(torch.from_numpy(np.ascontiguousarray(batch)).to(self.device_))
        return out.float().cpu().numpy()

    # -- training and files -------------------------------------------------------------------------------------
    def fit(
        self,
        trials: Sequence[Trial],
        *,
        run_dir: str | os.PathLike | None = None,
        recipe: Recipe | None = None,
        nb_samp: int | None = None,
        augment: str | Augment | None = None,
        **options: Any,
    ) -> RawWaveformScorer:
        """Train with the shared trainer (:func:`rawnet.training.train`) and keep its best model.

        Parameters
        ----------
        trials : labelled training trials.
        run_dir : the run directory (checkpoints, metrics, ``best.pth``); None trains in a temporary directory
            that is removed afterwards (not possible under torchrun, where every rank must see the same folder).
        recipe : optimisation settings; default the official recipe of the variant.
        nb_samp : input length to train on (recorded in the model's config); default the config's.
        augment : on-the-fly augmentation of training examples: an :class:`lfcc_gmm.augment.Augmenter` spec such
            as ``"rawboost:5"``, or any ``augment(signal, seed) -> signal``.
        **options : fields of :class:`~rawnet.spec.Recipe` (``epochs``, ``batch_size``, ``lr``, ...) override
            the recipe (None keeps the recipe's value); the others go to :func:`~rawnet.training.train`
            (``dev_trials``, ``seed``, ``workers``, ``amp``, ``resume``, ``init_weights``, ``progress``,
            ``on_epoch``).
        """
        spec = self._spec(nb_samp)
        overrides = {k: options.pop(k) for k in list(options) if k in _RECIPE_FIELDS}
        recipe = dataclasses.replace(recipe or official_recipe(spec.architecture, spec.variant),
                                     **{k: v for k, v in overrides.items() if v is not None})
        options["augment"] = Augmenter(augment) if isinstance(augment, str) else augment
        if run_dir is None:
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise ValueError("training under torchrun needs run_dir= on a file system every process sees")
            with tempfile.TemporaryDirectory(prefix=f"antispoof-{self.name}-") as tmp:
                return self._train(spec, trials, Path(tmp), recipe, options, keep=False)
        return self._train(spec, trials, Path(run_dir), recipe, options, keep=True)

    def _train(self, spec: ModelSpec, trials: Sequence[Trial], run_dir: Path, recipe: Recipe,
               options: dict[str, Any], keep: bool) -> RawWaveformScorer:
        result = train(spec, trials, run_dir, recipe, device=self.device, **options)
        best = read_weights_file(result.best_path)
        self._install(spec, best.state_dict, {"epoch": best.epoch, "dev_eer": best.dev_eer,
                                              "source": str(result.best_path)})
        self.training_summary_ = {
            "run_dir": str(run_dir) if keep else None, "model_file": str(result.best_path) if keep else None,
            "best_epoch": result.best_epoch, "best_dev_eer": result.best_dev_eer, "epochs": len(result.history),
            "rank": result.rank,
        }
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write the self-describing model file (format of :mod:`rawnet.checkpoint`), atomically."""
        write_model_file(path, self.spec_.to_dict(), self._fitted().state_dict(), self.info_.get("epoch"),
                         self.info_.get("dev_eer"))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: str = "none",
        **options: Any,
    ) -> RawWaveformScorer:
        """Read a model file of this toolkit (``best.pth``, or one written by :meth:`save`) or a bare state_dict.

        Parameters
        ----------
        path : the file, or a name of :data:`rawnet.weights.KNOWN_WEIGHTS` (``"aasist"``, ``"aasist-l"``,
            ``"aasist-asvspoof5"``: the copies bundled with the package); None for the scorer's default weights
            (AASIST: ``$ANTISPOOF_AASIST_WEIGHTS``, else the bundled ``aasist``).
        device, batch_size, crop : runtime settings, see the class.
        **options : what a bare state_dict does not say (:attr:`file_options`: ``variant``, ``config``, ...); a
            model file of this toolkit describes its network and takes none.
        """
        path = cls._default_weights(**options) if path is None else resolve_weights(path)
        weights = read_weights_file(path)
        info: dict[str, Any] = {"epoch": weights.epoch, "dev_eer": weights.dev_eer, "source": str(path)}
        if weights.description is not None:
            spec = ModelSpec.from_dict(weights.description, str(path))
            if spec.architecture != cls.architecture:
                raise CheckpointError(f"{path}: a {spec.format} model file; score it with --scorer {spec.architecture}")
            given = sorted(k for k, v in options.items() if v is not None)
            if given:
                raise CheckpointError(f"{path}: the model file describes its network; {', '.join(given)} "
                                      "cannot be given")
        else:
            spec = cls._spec_for_state_dict(weights.state_dict, path, **options)
        scorer = cls(**cls._params(spec), device=device, batch_size=batch_size, crop=check_crop(crop))
        scorer._install(spec, weights.state_dict, info)
        published = identify(path)
        if published is not None:
            entry = KNOWN_WEIGHTS[published]
            scorer.training_summary_ = {"weights": published, "trained_on": entry.trained_on, "source": entry.source}
        return scorer


class RawNet2Scorer(RawWaveformScorer):
    """RawNet2 (SPEC §5, §9), any official variant.

    Parameters
    ----------
    variant : ``"asvspoof2021"`` (ASVspoof 2021 baseline; its output is a log-softmax, so the score is
        log P(bona fide)), ``"icassp2021"`` (Tak et al.; the score is the bona fide logit) or ``"asvspoof5"``
        (ASVspoof 5 baseline; the score is the softmax P(bona fide), as its official evaluation computes it).
    config : None for the variant's official full config, a mapping, or a YAML/JSON file
        (:func:`rawnet.rawnet2.load_config`).
    sinc_scale : band-edge scale of the fixed sinc filters (``"mel"``; ``icassp2021`` also ``"inverse-mel"``,
        ``"linear"``).
    device, batch_size, crop : see :class:`RawWaveformScorer`.

    ``default_threshold`` is the equal-posterior decision where the score is a posterior: log(0.5) for
    ``asvspoof2021`` (log P(bona fide)), 0.5 for ``asvspoof5`` (P(bona fide)). For ``icassp2021`` (raw logits) it
    is 0.0, the sign of the bona fide logit (see :class:`AASISTScorer` for why that approximates the argmax).

    :meth:`load` reads a model file or a bare official state_dict. For a bare state_dict the variant is told by the
    first BatchNorm's channels (20: ``asvspoof2021``, 128: ``icassp2021``; an ``asvspoof5`` state_dict has the
    ``asvspoof2021`` shapes, so it needs ``variant="asvspoof5"``) and the config is that official one; any other
    network needs ``config=`` (mapping or YAML/JSON file) and ``variant=``. ``sinc_scale=`` defaults to ``"mel"``,
    the only scale the official models build.
    """

    name: ClassVar[str] = "rawnet2"
    description: ClassVar[str] = ("RawNet2 on raw waveforms (ASVspoof 2021 or ASVspoof 5 baseline, ICASSP 2021); "
                                  "torch, CUDA when available")
    default_threshold: ClassVar[float] = math.log(0.5)
    architecture: ClassVar[str] = "rawnet2"
    variants: ClassVar[tuple[str, ...]] = RAWNET2_VARIANTS
    file_options: ClassVar[tuple[str, ...]] = ("variant", "config", "sinc_scale")

    def __init__(
        self,
        variant: str = "asvspoof2021",
        config: ConfigSource | None = None,
        sinc_scale: str = "mel",
        *,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: str = "none",
    ):
        super().__init__(variant, config, device=device, batch_size=batch_size, crop=crop)
        self.sinc_scale = sinc_scale
        if variant in DEFAULT_THRESHOLDS:
            # The class attribute is the asvspoof2021 threshold; other variants shadow it on purpose
            # (Scorer declares it a ClassVar, which mypy does not let an instance set).
            self.default_threshold = DEFAULT_THRESHOLDS[variant]  # type: ignore[misc]

    @property
    def output_kind(self) -> str:
        return SCORE_OUTPUTS[self.variant]

    @staticmethod
    def _network(model: nn.Module) -> nn.Module:
        return scoring_network(cast(RawNet2, model))

    def threshold(self) -> Threshold:
        """log 0.5 for a log-softmax output, 0.5 for a softmax (the network's posterior of bona fide is one half),
        else 0 (the sign of the bona fide logit); none is calibrated (:func:`rawnet.thresholds.output_threshold`)."""
        return output_threshold(self.output_kind, self.default_threshold)

    def _spec(self, nb_samp: int | None = None) -> ModelSpec:
        return ModelSpec.create(self.architecture, self.variant, self.config, self.sinc_scale, nb_samp)

    @classmethod
    def _params(cls, spec: ModelSpec) -> dict[str, Any]:
        return {**super()._params(spec), "sinc_scale": spec.sinc_scale}

    @classmethod
    def _spec_for_state_dict(
        cls,
        state: Mapping[str, torch.Tensor],
        path: Path,
        *,
        config: ConfigSource | None = None,
        variant: str | None = None,
        sinc_scale: str | None = None,
    ) -> ModelSpec:
        first_bn = state.get("first_bn.weight")
        if first_bn is None or "fc2_gru.weight" not in state:
            raise CheckpointError(f"{path}: not a RawNet2 state_dict (no first_bn/fc2_gru weights)")
        # Where variants share the shapes (asvspoof5 has asvspoof2021's), the one listed first is assumed.
        by_channels = {model_config(cls.architecture, name)["filts"][0]: name for name in reversed(RAWNET2_VARIANTS)}
        channels = int(first_bn.shape[0])
        variant = variant or by_channels.get(channels)
        if variant is None:
            official = ", ".join(f"{c} ({name})" for c, name in by_channels.items())
            raise CheckpointError(
                f"{path}: cannot tell the RawNet2 variant from the weights: the first BatchNorm has {channels} "
                f"channels, the official full configs have {official}; give the config and the variant, e.g. "
                "RawNet2Scorer.load(path, config='model.yaml', variant='asvspoof2021')"
            )
        if variant not in RAWNET2_VARIANTS:
            raise CheckpointError(f"{path}: unknown RawNet2 variant {variant!r}; expected one of {RAWNET2_VARIANTS}")
        return ModelSpec.create(cls.architecture, variant, config, sinc_scale or "mel")


class AASISTScorer(RawWaveformScorer):
    """AASIST or AASIST-L (SPEC §6); the official pretrained weights score out of the box.

    Parameters
    ----------
    variant : ``"aasist"`` or ``"aasist-l"``: the official config used when ``config`` is None, and the name of
        the weights :meth:`load` reads when given no path.
    config : an AASIST model config (mapping or JSON file) instead of the official one.
    device, batch_size, crop : see :class:`RawWaveformScorer`.

    The score is the bona fide logit, unbounded and not calibrated (official: 5.24 for the bona fide
    ``LA_T_1272637``, -6.56 for an espeak clip). ``default_threshold`` is 0.0, the sign of that logit: it splits
    as the two-class argmax would up to a term the training never touches, because cross-entropy pushes the two
    logits of a softmax by equal and opposite amounts, so ``l1 = (l1 - l0) / 2 + (l1 + l0) / 2`` where only the
    first half (half the log-odds) is learnt and the second keeps the output layer's small random initialisation.
    :meth:`threshold` gives the verdict threshold: for the official AASIST and AASIST-L weights (recognised by
    their tensors, :func:`rawnet.checkpoint.state_fingerprint`) their equal error rate point on the demo dev split,
    measured in whole-file mode (``docs/models/aasist.md``); for other weights ``default_threshold``. For operating
    points of your own, calibrate on labelled data (``antispoof calibrate``) or choose the threshold on a dev set.

    :meth:`load` reads a model file, an official state_dict (``AASIST.pth``, ``AASIST-L.pth``, or a
    ``.safetensors`` copy: the official config whose parameter shapes match, unless ``config=`` is given), a
    weights name (``"aasist"``, ``"aasist-l"``, ``"aasist-asvspoof5"``), or with no path the weights of
    ``variant=``; with neither, ``$ANTISPOOF_AASIST_WEIGHTS`` (a file or a name) or the bundled ``aasist``. Names
    load the copies bundled with the package (SHA-256 checked), or the cached official files where an
    installation lacks them (see :mod:`rawnet.weights`).

    ``aasist-onnx`` (:class:`rawnet.onnx_scorers.AASISTONNXScorer`) runs the same bundled weights through ONNX
    Runtime without torch, faster on the CPU (``benchmarks/bench_aasist.py``). This scorer does not switch to it
    by timing as its fast paths do: graph pooling keeps the top-k of sigmoid node scores, and where scores tie or
    nearly tie (saturated sigmoids, e.g. the ASVspoof 5 weights on a synthetic chirp) one rounding difference
    changes which nodes are kept, so the two runtimes may differ there by more than float32 rounding (up to
    0.1 on logits of 40 to 50), and this scorer's outputs would depend on timings.
    """

    name: ClassVar[str] = "aasist"
    description: ClassVar[str] = ("AASIST / AASIST-L graph attention on raw waveforms (official weights); torch, "
                                  "CUDA when available")
    default_threshold: ClassVar[float] = 0.0
    architecture: ClassVar[str] = "aasist"
    variants: ClassVar[tuple[str, ...]] = tuple(AASIST_VARIANTS)

    def __init__(
        self,
        variant: str = "aasist",
        config: ConfigSource | None = None,
        *,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
        crop: str = "none",
    ):
        super().__init__(variant, config, device=device, batch_size=batch_size, crop=crop)

    def _spec(self, nb_samp: int | None = None) -> ModelSpec:
        return ModelSpec.create(self.architecture, self.variant, self.config, nb_samp=nb_samp)

    def threshold(self) -> Threshold:
        """For the official AASIST or AASIST-L weights, their equal error rate point on the demo dev split (whole
        file, measured: :func:`lfcc_gmm.cards.official_aasist_threshold`); for any other weights 0, the sign of the
        bona fide logit."""
        return aasist_threshold(getattr(self, "info_", {}).get("fingerprint"), self.default_threshold)

    @classmethod
    def _default_weights(
        cls, *, variant: str | None = None, config: ConfigSource | None = None
    ) -> Path:
        if variant is not None and variant not in AASIST_VARIANTS:
            raise CheckpointError(f"unknown AASIST variant {variant!r}; expected one of {tuple(AASIST_VARIANTS)}")
        return default_aasist_weights(variant)

    @classmethod
    def _spec_for_state_dict(
        cls,
        state: Mapping[str, torch.Tensor],
        path: Path,
        *,
        variant: str | None = None,
        config: ConfigSource | None = None,
    ) -> ModelSpec:
        if variant is not None and variant not in AASIST_VARIANTS:
            raise CheckpointError(f"unknown AASIST variant {variant!r}; expected one of {tuple(AASIST_VARIANTS)}")
        # from_pretrained picks the official config whose parameter shapes match and checks the weights fit.
        given = None if config is None else model_config(cls.architecture, variant or "aasist", config)
        model = AASIST.from_pretrained(path, given)
        matched = [name for name in AASIST_VARIANTS if model_config(cls.architecture, name) == model.config]
        return ModelSpec(cls.architecture, variant or (matched or ["aasist"])[0], model.config)
