"""The files users hand the deep models, read safely and with clear errors: weights, model files, configs.

Every torch file of the toolkit (official state_dicts, model files, training checkpoints) is read by
:func:`read_torch_file`, the one call to ``torch.load``, with ``weights_only=True``: a file can never run code.
YAML is read with ``yaml.safe_load``.

Model file format (``best.pth`` of a training run, or :meth:`rawnet.scorers.RawWaveformScorer.save`): a dict of
plain Python values and tensors, written by :func:`write_model_file` and read by :func:`read_weights_file`:

==============  ===============================================================================================
``format``      ``"antispoof-rawnet2"`` or ``"antispoof-aasist"``
``variant``     RawNet2: ``"asvspoof2021"``, ``"icassp2021"`` or ``"asvspoof5"``; AASIST: ``"aasist"`` or
                ``"aasist-l"``
``sinc_scale``  RawNet2 only: ``"mel"``, ``"inverse-mel"`` or ``"linear"`` (the fixed sinc filters are rebuilt
                from it; they are not in the state_dict)
``config``      the model config (dict); ``config["nb_samp"]`` is the input length it was trained on
``state_dict``  parameters and buffers, names without a ``module.`` prefix, on the CPU
``epoch``       the epoch the weights come from (1-based), or None
``dev_eer``     their dev EER as a fraction, or None when no dev set was given
==============  ===============================================================================================

The first four fields describe the network (:meth:`rawnet.spec.ModelSpec.to_dict` writes them and
:meth:`~rawnet.spec.ModelSpec.from_dict` reads them); this module stores and checks the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lfcc_gmm.atomic import atomic_write
from rawnet.weights import read_safetensors

#: Config file suffixes and their parsers' names (an official AASIST ``.conf`` is JSON).
_FORMATS = {".json": "json", ".conf": "json", ".yaml": "yaml", ".yml": "yaml"}


class ConfigError(ValueError):
    """An unusable model config; the message names where it came from and the problem."""


def read_config_file(source: str | os.PathLike | Mapping[str, Any], section: str) -> tuple[Any, str]:
    """The raw model settings of a config file or mapping, and a description of where they came from.

    Official files hold training settings too, with the model under ``section`` (``"model"`` in the RawNet2
    YAML files, ``"model_config"`` in AASIST's ``.conf``): that section is returned when present.

    Raises
    ------
    ConfigError
        Unknown suffix, unreadable file, invalid JSON/YAML (with the line number).
    """
    if isinstance(source, Mapping):
        raw: Any = source
        where = "config"
    else:
        path = Path(source)
        where = str(path)
        kind = _FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ConfigError(f"{path}: unknown config format {path.suffix!r}; expected one of {', '.join(_FORMATS)}")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: cannot read config: {getattr(err, 'strerror', None) or err}") from err
        if kind == "json":
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from err
        else:
            import yaml

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                line = f":{mark.line + 1}" if mark is not None else ""
                raise ConfigError(f"{path}{line}: invalid YAML: {getattr(err, 'problem', None) or err}") from err
    if isinstance(raw, Mapping) and isinstance(raw.get(section), Mapping):
        raw = raw[section]
        where += f" ({section} section)"
    return raw, where


def require_keys(config: Any, keys: Sequence[str], source: str) -> None:
    """Raise :class:`ConfigError` unless ``config`` is a mapping holding every key in ``keys``."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"{source}: expected a mapping of model settings, got {type(config).__name__}")
    missing = [key for key in keys if key not in config]
    if missing:
        raise ConfigError(f"{source}: missing required key(s) {', '.join(missing)}")


class CheckpointError(ValueError):
    """A weights or model file that cannot be used; the message names the file and the problem."""


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights or model file")
    return path


def read_torch_file(path: str | os.PathLike) -> Any:
    """``torch.load`` a file onto the CPU with ``weights_only=True`` (never unpickling code).

    Raises
    ------
    FileNotFoundError
        when there is no file at ``path``.
    CheckpointError
        when it is not a torch file that loads without unpickling code.
    """
    path = _existing(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a torch weights file (cannot load as a weights-only file: {exc})") from exc


@dataclass(frozen=True)
class WeightsFile:
    """A weights file as read: its parameters, and for a model file of this toolkit what it says about them.

    Attributes
    ----------
    path : the file.
    state_dict : parameters and buffers by name (a ``module.`` prefix of ``nn.DataParallel`` removed).
    description : the network fields of a model file (``format``, ``variant``, ``config``, ``sinc_scale``), None
        for a bare state_dict such as the official ``AASIST.pth``.
    epoch, dev_eer : of a model file (None when unknown).
    """

    path: Path
    state_dict: dict[str, torch.Tensor]
    description: dict[str, Any] | None = None
    epoch: int | None = None
    dev_eer: float | None = None


def _tensors(state: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors), got "
                              f"{type(state).__name__}")
    prefix = "module."
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return dict(state)


def read_weights_file(path: str | os.PathLike) -> WeightsFile:
    """Read a model file of this toolkit (a dict with ``format`` and ``state_dict``) or a bare state_dict.

    A ``.safetensors`` file (the bundled weights, :mod:`rawnet.weights`) is a bare state_dict of plain tensors,
    read without torch's unpickler.

    Raises
    ------
    FileNotFoundError, CheckpointError
        naming the file: missing, not loadable with ``weights_only=True``, or holding neither.
    rawnet.weights.WeightsError
        naming the file: a ``.safetensors`` file that is malformed.
    """
    path = _existing(path)
    if path.suffix == ".safetensors":
        arrays, _ = read_safetensors(path)
        return WeightsFile(path, _tensors({key: torch.from_numpy(value) for key, value in arrays.items()}, path))
    loaded = read_torch_file(path)
    if isinstance(loaded, Mapping) and "format" in loaded:
        if not isinstance(loaded.get("state_dict"), Mapping):
            raise CheckpointError(f"{path}: not an antispoof model file (format {loaded['format']!r} but no "
                                  "'state_dict')")
        description = {k: v for k, v in loaded.items() if k not in ("state_dict", "epoch", "dev_eer")}
        return WeightsFile(path, _tensors(loaded["state_dict"], path), description, loaded.get("epoch"),
                           loaded.get("dev_eer"))
    return WeightsFile(path, _tensors(loaded, path))


def write_model_file(
    path: str | os.PathLike,
    description: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    epoch: int | None = None,
    dev_eer: float | None = None,
) -> None:
    """Write a model file (see the module docstring) atomically; the tensors are copied to the CPU."""
    fields = {
        **description,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state_dict.items()},
        "epoch": None if epoch is None else int(epoch),
        "dev_eer": None if dev_eer is None else float(dev_eer),
    }
    with atomic_write(path, "wb") as handle:
        torch.save(fields, handle)


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state_dict of a bare weights file (an official ``.pth``), read safely onto the CPU.

    A ``module.`` prefix left by ``nn.DataParallel`` on every key is removed.
    """
    weights = read_weights_file(path)
    if weights.description is not None:
        raise CheckpointError(f"{path}: expected a state_dict (a mapping of names to tensors), got an antispoof "
                              f"model file ({weights.description['format']})")
    return weights.state_dict


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load the weights of a model file or a bare state_dict into ``model`` with ``strict=True``.

    Raises
    ------
    CheckpointError
        naming the file, when it holds no state_dict or its keys or shapes do not fit ``model``.
    """
    load_strictly(model, read_weights_file(path).state_dict, path)


def load_strictly(model: nn.Module, state: Mapping[str, torch.Tensor], source: str | os.PathLike) -> None:
    """``model.load_state_dict(state, strict=True)``, a mismatch reported as :class:`CheckpointError` naming
    ``source``."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{source}: weights do not fit the model: {exc}") from exc


def state_fingerprint(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a state_dict's content: every tensor's name, dtype, shape and bytes, in name order.

    The same weights give the same fingerprint whatever file they were read from (an official ``.pth``, a
    ``.safetensors`` copy, a model file of this toolkit), which is how a scorer knows it holds the published
    weights whose measured threshold it may use (:mod:`lfcc_gmm.cards`).
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()
