"""What a deep model is: :class:`ModelSpec` (architecture, variant, config, sinc scale), everything needed to
rebuild a network.

The trainer builds from it, model files record it (:mod:`rawnet.checkpoint`), and the scorers describe their
network with it. :func:`model_config` is the one place a variant's official config is looked up or a user's config
file read. How a network is trained by default is :data:`rawnet.catalog.RECIPES`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rawnet.aasist import AASIST
from rawnet.aasist import CONFIGS as AASIST_CONFIGS
from rawnet.aasist import load_config as load_aasist_config
from rawnet.catalog import AASIST_VARIANTS, ARCHITECTURES, RAWNET2_VARIANTS
from rawnet.checkpoint import CheckpointError, load_strictly, read_weights_file
from rawnet.rawnet2 import DEFAULT_CONFIGS as RAWNET2_CONFIGS
from rawnet.rawnet2 import RawNet2, score_head
from rawnet.rawnet2 import load_config as load_rawnet2_config

#: A model config: a mapping, or a YAML/JSON file (RawNet2's official YAML, AASIST's official ``.conf``).
ConfigSource = Mapping[str, Any] | str | os.PathLike


def model_config(architecture: str, variant: str, config: ConfigSource | None = None) -> dict[str, Any]:
    """The official model config of ``variant``, or ``config`` (a mapping or a YAML/JSON file) validated; a copy.

    Raises
    ------
    ValueError
        for an unknown architecture or variant; :class:`rawnet.checkpoint.ConfigError` for a bad config.
    """
    if architecture == "rawnet2":
        if variant not in RAWNET2_VARIANTS:
            raise ValueError(f"unknown RawNet2 variant {variant!r}; expected one of {RAWNET2_VARIANTS}")
        return copy.deepcopy(RAWNET2_CONFIGS[variant]) if config is None else load_rawnet2_config(config)
    if architecture == "aasist":
        if variant not in AASIST_VARIANTS:
            raise ValueError(f"unknown AASIST model {variant!r}; expected one of {sorted(AASIST_VARIANTS)}")
        official = AASIST_CONFIGS[AASIST_VARIANTS[variant]]
        return copy.deepcopy(official) if config is None else load_aasist_config(config)
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {ARCHITECTURES}")


@dataclass(frozen=True)
class ModelSpec:
    """What to build: architecture, variant and config; everything a model file needs to rebuild the network.

    Attributes
    ----------
    architecture : ``"rawnet2"`` or ``"aasist"``.
    variant : RawNet2 ``"asvspoof2021"``/``"icassp2021"``/``"asvspoof5"``; AASIST ``"aasist"``/``"aasist-l"``.
    config : model config (RawNet2 keys as :func:`rawnet.rawnet2.load_config`; AASIST as the official JSON).
    sinc_scale : RawNet2's sinc band-edge scale.
    """

    architecture: str
    variant: str
    config: dict[str, Any]
    sinc_scale: str = "mel"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; expected one of {ARCHITECTURES}")
        if "nb_samp" not in self.config:
            raise ValueError(f"{self.architecture} config has no 'nb_samp' (the input length)")

    @classmethod
    def create(
        cls,
        architecture: str,
        variant: str,
        config: ConfigSource | None = None,
        sinc_scale: str = "mel",
        nb_samp: int | None = None,
    ) -> ModelSpec:
        """The spec of ``variant`` with its official config or ``config`` (see :func:`model_config`), the input
        length replaced by ``nb_samp`` when given."""
        resolved = model_config(architecture, variant, config)
        if nb_samp is not None:
            resolved["nb_samp"] = int(nb_samp)
        return cls(architecture, variant, resolved, sinc_scale)

    @property
    def format(self) -> str:
        """The ``format`` tag of this model's files."""
        return f"antispoof-{self.architecture}"

    @property
    def nb_samp(self) -> int:
        return int(self.config["nb_samp"])

    def build(self) -> nn.Module:
        """A freshly initialised model (draws from torch's global generator)."""
        if self.architecture == "rawnet2":
            return RawNet2(self.config, variant=self.variant, sinc_scale=self.sinc_scale)
        return AASIST(self.config)

    def score_head(self) -> nn.Module:
        """What the official evaluation applies to the network's outputs before it reads class 1, the score: a
        softmax for RawNet2 ``asvspoof5`` (:func:`rawnet.rawnet2.score_head`), nothing for the others."""
        return score_head(self.variant) if self.architecture == "rawnet2" else nn.Identity()

    def to_dict(self) -> dict[str, Any]:
        """The model-file fields that describe the network (JSON-compatible)."""
        fields = {"format": self.format, "variant": self.variant, "config": copy.deepcopy(self.config)}
        if self.architecture == "rawnet2":
            fields["sinc_scale"] = self.sinc_scale
        return fields

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any], source: str = "model file") -> ModelSpec:
        """Inverse of :meth:`to_dict`."""
        fmt = fields.get("format")
        architecture = fmt[len("antispoof-") :] if isinstance(fmt, str) and fmt.startswith("antispoof-") else None
        if architecture not in ARCHITECTURES:
            known = ", ".join(f"antispoof-{a}" for a in ARCHITECTURES)
            raise ValueError(f"{source}: format {fmt!r} is not a model file format ({known})")
        if not isinstance(fields.get("config"), Mapping) or not isinstance(fields.get("variant"), str):
            raise ValueError(f"{source}: needs a 'variant' string and a 'config' dict")
        return cls(architecture, fields["variant"], dict(fields["config"]), fields.get("sinc_scale", "mel"))


def load_model_file(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of a model file (``best.pth``), in eval mode on ``device``.

    Returns
    -------
    model, info
        ``info`` holds every field of the file except ``state_dict``.
    """
    weights = read_weights_file(path)
    if weights.description is None:
        raise CheckpointError(f"{path}: not an antispoof model file (no 'format'/'state_dict' fields)")
    model = ModelSpec.from_dict(weights.description, str(path)).build()
    load_strictly(model, weights.state_dict, path)
    info = {**weights.description, "epoch": weights.epoch, "dev_eer": weights.dev_eer}
    return model.to(device).eval(), info
