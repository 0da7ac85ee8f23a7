"""A rendered set as a Hugging Face ``datasets.Dataset`` (offline: built from the folder's files).

datasets 3.x decodes an ``Audio`` feature with soundfile but imports librosa to do it; the
``[hf]`` extra (``pip install lusebench[hf]``) brings librosa. datasets 4.x decodes with
torchcodec, which does not work beside the CPU torch wheels, hence ``datasets<4``.
"""

from __future__ import annotations

from pathlib import Path

from lusebench.simulation.writer import load_manifest

AUDIO_COLUMNS = ("mixture", "target")


def to_hf_dataset(data_dir: Path | str):  # -> datasets.Dataset (import deferred: ~1 s)
    """Load a dataset folder as a ``datasets.Dataset`` with ``mixture`` and ``target`` audio columns.

    Every manifest column is kept with its type. ``mixture`` and ``target`` are ``Audio(mono=False)``
    features on the files' absolute paths: they decode on access to ``{"path", "array",
    "sampling_rate"}`` with ``array`` of shape (2, time), give tensors under
    ``.with_format("torch")``, and survive ``save_to_disk``/``load_from_disk``.
    """
    import datasets
    import pyarrow.parquet as pq

    data_dir = Path(data_dir).resolve()
    load_manifest(data_dir)  # the folder check and its one-line error
    table = pq.read_table(data_dir / "manifest.parquet")
    dataset = datasets.Dataset(table)
    for name in AUDIO_COLUMNS:
        paths = [str(data_dir / path) for path in table.column(f"{name}_path").to_pylist()]
        dataset = dataset.add_column(name, paths).cast_column(name, datasets.Audio(mono=False))
    return dataset
