"""The paper's five systems, their parts, losses and registry.

Names are loaded on first use (PEP 562): ``lusebench.baselines.presets`` is read by ``--help``,
which must not wait for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SYSTEMS": "systems",
    "BaselineSystem": "systems",
    "SystemConfig": "systems",
    "SystemOutput": "systems",
    "build_system": "systems",
    "system_config": "systems",
    "system_from_checkpoint_dict": "systems",
    "system_table": "systems",
    "TextEmbedding": "text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
