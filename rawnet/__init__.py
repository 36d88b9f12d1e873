"""antispoof deep plug-in: RawNet2 (the three official variants) and AASIST in PyTorch.

This is the only package of the toolkit that imports torch. Public names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SincConv": "sinc",
    "RawNet2": "rawnet2",
    "AASIST": "aasist",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rawnet' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
