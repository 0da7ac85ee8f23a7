"""A rendered set as a Hugging Face ``datasets.Dataset`` (offline: built from the folder's files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lusebench.io import read_audio
from lusebench.simulation.writer import load_config, load_manifest

AUDIO_COLUMNS = ("mixture", "target")


def to_hf_dataset(data_dir: Path | str):  # -> datasets.Dataset (import deferred: ~1 s)
    """Load a dataset folder as a ``datasets.Dataset`` with ``mixture`` and ``target`` audio columns.

    Every manifest column is kept. The audio columns hold ``{"path", "array", "sampling_rate"}``
    like datasets' ``Audio`` feature, ``array`` of shape (2, time); they are decoded with
    soundfile on access, because datasets 3.x's own ``Audio`` decoding needs librosa and 4.x
    needs torchcodec.
    """
    import datasets

    data_dir = Path(data_dir)
    sample_rate = load_config(data_dir).sample_rate
    manifest = load_manifest(data_dir)
    # Plain Python values: pandas' pyarrow-backed strings arrive as large_string.
    columns = {name: [_plain(value) for value in manifest[name]] for name in manifest.columns}
    for name in AUDIO_COLUMNS:
        columns[name] = [str(data_dir / path) for path in manifest[f"{name}_path"]]
    dataset = datasets.Dataset.from_dict(columns)

    def decode(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name in AUDIO_COLUMNS:
            if name in batch:
                batch[name] = [
                    {"path": path, "array": read_audio(Path(path))[0], "sampling_rate": sample_rate}
                    for path in batch[name]
                ]
        return batch

    dataset.set_transform(decode)
    return dataset


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value
