"""A rendered set's identity: what defines it (recipes, assets, protocol), never its audio bytes.

The last bits of a rendered sample follow the CPU's FFT kernels, and FLAC bytes carry the
encoder's version, so two correct renderings of one set on two machines differ in their bytes.
What does not differ is what the set is made of: every recipe of the manifest, the checksums of
the assets it reads (each corpus clip, the HRTF file, the BRIR bank keys), the sample rate and
the data-protocol version, all of them manifest columns. The fingerprint hashes exactly those;
how close the audio on disk is to a fresh rendering is ``lusebench simulate --verify``'s job.

Shared by ``simulation`` (which writes the columns) and ``benchmark`` (which reads them), so that
neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pandas as pd

# The rendering protocol: bump when the same recipe and assets would render other samples, or the
# same config would draw other recipes. 2: mixture gains on a 0.1 dB grid, asset checksum columns.
PROTOCOL_VERSION = 2

# Columns that describe who wrote a row, what the renderer measured or how a reader labels it, not
# the set: the DRR is measured on the BRIR, so its last bits follow the CPU like the audio's (the
# room fields and BRIR keys it is measured from are part of the identity); ``condition`` is the
# benchmark's copy of ``room``.
NOT_IDENTITY = frozenset({"lusebench_version", "schema_version", "drr_db", "condition"})

# A fixed AudioCaps set (a ``recipe_set`` column) is the same set in every user's copy of AudioCaps,
# whose clips differ by encoder and download: its identity is the recipes present (ids, queries,
# azimuths, SNRs from the shipped table, whose sha256 is a column) and the protocol, not what
# follows from one copy's audio: the clips' checksums, the gains matched to their energy, the
# headroom gain, or the copy's path in ``corpus``.
COPY_DEPENDENT = frozenset({"clip_sha256", "gains", "mixture_gain", "corpus"})


def file_columns(columns: list[str]) -> set[str]:
    """The ``<prefix>_path`` and ``<prefix>_sha256`` pairs: the written files, a copy's bytes."""
    prefixes = [name[: -len("_path")] for name in columns if name.endswith("_path")]
    return {f"{prefix}{suffix}" for prefix in prefixes for suffix in ("_path", "_sha256")}


def identity_columns(columns: list[str]) -> list[str]:
    """The manifest columns a fingerprint hashes, sorted by name."""
    excluded = NOT_IDENTITY | file_columns(columns) | (COPY_DEPENDENT if "recipe_set" in columns else frozenset())
    return sorted(name for name in columns if name not in excluded)


def _plain(value: Any) -> Any:
    """A JSON value with one spelling per number: parquet hands back numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def dataset_fingerprint(manifest: pd.DataFrame) -> str:
    """Sha256 hex of the canonical identity table of a manifest.

    The table is ``{"columns": [...], "rows": [[...], ...]}``: the :func:`identity_columns` in name
    order, the rows in ``mixture_id`` order (the written order does not matter), as compact JSON
    with sorted keys; floats are written in Python's shortest round-trip form, so equal float64
    values give equal text and any other value gives other text.
    """
    columns = identity_columns(list(manifest.columns))
    ordered = manifest.sort_values("mixture_id", kind="stable")
    rows = [[_plain(value) for value in row] for row in ordered[columns].itertuples(index=False, name=None)]
    text = json.dumps({"columns": columns, "rows": rows}, separators=(",", ":"), sort_keys=True, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()
