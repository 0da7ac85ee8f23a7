"""The paper's five systems, their parts, losses and registry (training and inference come later)."""

from __future__ import annotations

from lusebench.baselines.systems import (
    SYSTEMS,
    BaselineSystem,
    SystemConfig,
    SystemOutput,
    build_system,
    system_config,
    system_from_checkpoint_dict,
    system_table,
)
from lusebench.baselines.text import TextEmbedding

__all__ = [
    "SYSTEMS",
    "BaselineSystem",
    "SystemConfig",
    "SystemOutput",
    "TextEmbedding",
    "build_system",
    "system_config",
    "system_from_checkpoint_dict",
    "system_table",
]
