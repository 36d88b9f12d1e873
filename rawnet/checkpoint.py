"""Reading what users hand the deep models: config files (JSON/YAML) and weights files, safely and with clear errors.

Weights are loaded with ``torch.load(..., weights_only=True)``, so a file can never run code; YAML with
``yaml.safe_load``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

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


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a saved state_dict safely (``weights_only=True``) onto the CPU.

    A ``.safetensors`` file (the bundled weights, :mod:`rawnet.weights`) is read as plain tensors. A ``module.``
    prefix left by ``nn.DataParallel`` on every key is removed.
    """
    if Path(path).suffix == ".safetensors":
        from rawnet.weights import read_safetensors

        arrays, _ = read_safetensors(path)
        return {key: torch.from_numpy(value) for key, value in arrays.items()}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: cannot load as a weights-only torch state_dict: {err}") from err
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state_dict (a mapping of names to tensors), got {type(state).__name__}")
    prefix = "module."
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return dict(state)
