"""Rendered dataset folders (docs/dataset-format.md) as torch datasets, for validation and inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lusebench.errors import LusebenchError
from lusebench.io import read_audio
from lusebench.simulation.writer import load_manifest

class RenderedSet(Dataset):
    """Items of a rendered folder: ``mixture`` (2, N), ``target`` (2, N), ``azimuth_deg``, ``caption``,
    ``interferer_caption`` (the first interferer's, for the query-swap check), ``mixture_id``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir)
        self.manifest = load_manifest(self.root)
        if self.manifest.empty:
            raise LusebenchError(f"{data_dir} holds no mixtures")
        self.sample_rate = int(self.manifest["sample_rate"].iloc[0])
        self.num_samples = int(self.manifest["num_samples"].iloc[0])

    def __len__(self) -> int:
        return len(self.manifest)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.manifest.iloc[index]
        captions = row.get("captions")
        mixture, rate = read_audio(self.root / row["mixture_path"])
        if isinstance(row["target_path"], str):
            target, _ = read_audio(self.root / row["target_path"])
        else:  # an absent-target item (null path, NaN azimuth): nothing to extract
            target = np.zeros_like(mixture)
        if rate != self.sample_rate or mixture.shape != (2, self.num_samples):
            raise LusebenchError(f"{row['mixture_path']}: expected 2 x {self.num_samples} samples at {self.sample_rate} Hz")
        return {
            "mixture": torch.from_numpy(mixture),
            "target": torch.from_numpy(target),
            "azimuth_deg": float(row["target_azimuth_deg"]),
            "caption": str(row["caption"]),
            # None where the manifest names no second caption (a foreign set); only the query-swap
            # check reads it, and refuses None.
            "interferer_caption": str(captions[1]) if captions is not None and len(captions) > 1 else None,
            "mixture_id": str(row["mixture_id"]),
        }


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, keep captions and ids as lists."""
    return {
        "mixture": torch.stack([item["mixture"] for item in items]),
        "target": torch.stack([item["target"] for item in items]),
        "azimuth_deg": torch.tensor([item["azimuth_deg"] for item in items], dtype=torch.float32),
        "caption": [item["caption"] for item in items],
        "interferer_caption": [item["interferer_caption"] for item in items],
        "mixture_id": [item["mixture_id"] for item in items],
    }


def peak_normalise(x: np.ndarray) -> np.ndarray:
    """Scale so that the peak is under full scale; leaves quieter signals alone."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return x * (0.999 / peak) if peak >= 0.999 else x
