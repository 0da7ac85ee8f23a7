"""A cache of BRIRs on disk, checksummed, shareable between machines.

A BRIR costs ~0.1-0.15 s to compute (rooms.py) against ~10 ms to render a mixture with it, so
each one is computed once and kept. An entry is two plain files named by its key, the sha256
of everything that decides its samples (room size, wall absorption, image order, listener and
source positions, HRTF identity, sample rate, pyroomacoustics version, method version)::

    ROOT/<key[:2]>/<key>.npy    # (2, L) float32, ears (left, right)
    ROOT/<key[:2]>/<key>.json   # the key's fields, the .npy's sha256, the DRR: the bank's index

An entry whose files are missing, whose fields differ or whose checksum does not match is
recomputed and rewritten (atomically), so a bank copied between machines (rsync the folder)
is safe to use, and a damaged one repairs itself. Worker processes may share one bank: two
that compute the same entry write the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lusebench.errors import LusebenchError
from lusebench.io import load_npy, read_regular_file, write_bytes, write_json
from lusebench.schema import load_json
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.rooms import BRIR_METHOD, Brir, SphereHrirs, compute_brir, load_sphere_hrirs

log = logging.getLogger(__name__)

# A BRIR is (2, L) float32 with L a few RT60s at most: 64 MiB holds 20 s at 192 kHz, far beyond any.
_MAX_BRIR_BYTES = 64 << 20
_MAX_ENTRY_BYTES = 1 << 20


def default_bank_dir() -> Path:
    """``$LUSEBENCH_CACHE/brir`` when set, else ``~/.cache/lusebench/brir``."""
    cache = os.environ.get("LUSEBENCH_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "lusebench") / "brir"


@dataclass(frozen=True)
class BrirSpec:
    """Everything that decides one BRIR's samples (metres, room coordinates)."""

    dims_m: tuple[float, float, float]
    absorption: float
    image_order: int
    listener_m: tuple[float, float, float]
    source_m: tuple[float, float, float]

    def fields(self, sphere: SphereHrirs) -> dict[str, Any]:
        import pyroomacoustics as pra

        return {
            "dims_m": list(self.dims_m),
            "absorption": self.absorption,
            "image_order": self.image_order,
            "listener_m": list(self.listener_m),
            "source_m": list(self.source_m),
            "hrtf": sphere.identity,
            "sample_rate": sphere.sample_rate,
            "pyroomacoustics": pra.__version__,
            "method": BRIR_METHOD,
        }


class BrirBank:
    """BRIRs of one HRTF set at one sample rate, cached under ``root``.

    Attributes:
        hits, builds: entries served from disk and computed, since this object was made.
    """

    def __init__(self, root: Path | str, sphere: SphereHrirs) -> None:
        self.root = Path(root)
        self.sphere = sphere
        self.hits = 0
        self.builds = 0

    def key(self, spec: BrirSpec) -> str:
        text = json.dumps(spec.fields(self.sphere), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def paths(self, spec: BrirSpec) -> tuple[Path, Path]:
        key = self.key(spec)
        folder = self.root / key[:2]
        return folder / f"{key}.npy", folder / f"{key}.json"

    def _load(self, spec: BrirSpec) -> Brir | None:
        npy, meta = self.paths(spec)
        if not (npy.exists() and meta.exists()):
            return None
        # A bank may be copied from someone else: its files pass the same door as any stranger's.
        try:
            entry = load_json(meta, _MAX_ENTRY_BYTES)
            payload = read_regular_file(npy, max_bytes=_MAX_BRIR_BYTES)
            if not isinstance(entry, dict) or entry.get("fields") != spec.fields(self.sphere) or (
                    hashlib.sha256(payload).hexdigest() != entry.get("sha256")):
                raise LusebenchError(f"{npy.name} does not match its checksum or key")
            ir = load_npy(payload, npy, max_elements=_MAX_BRIR_BYTES // 4, kinds="f")
            drr_db = float(entry["drr_db"])
        except (LusebenchError, KeyError, TypeError, ValueError) as error:
            log.warning("BRIR bank entry %s is unusable (%s); recomputing it", npy.name, error)
            return None
        return Brir(ir=ir, drr_db=drr_db)

    def get(self, spec: BrirSpec) -> Brir:
        """The BRIR of ``spec``: read from the bank, or computed and stored."""
        brir = self._load(spec)
        if brir is not None:
            self.hits += 1
            return brir
        brir = compute_brir(spec.dims_m, spec.absorption, spec.image_order, spec.listener_m, spec.source_m, self.sphere)
        buffer = io.BytesIO()
        np.save(buffer, brir.ir, allow_pickle=False)
        npy, meta = self.paths(spec)
        digest = write_bytes(npy, buffer.getvalue())
        # The sidecar comes last: an entry with a sidecar has its samples in place.
        write_json(meta, {"fields": spec.fields(self.sphere), "sha256": digest, "drr_db": brir.drr_db,
                          "num_taps": int(brir.ir.shape[-1])})
        self.builds += 1
        return brir


def open_bank(config: SimulationConfig, root: Path | str | None = None) -> BrirBank | None:
    """The bank that renders ``config``'s rooms, at ``root`` (``default_bank_dir()`` when None);
    None for an anechoic set, which needs none."""
    if config.room != "reverberant":
        return None
    sphere = load_sphere_hrirs(config.hrtf, config.sample_rate, config.interpolation)
    return BrirBank(default_bank_dir() if root is None else Path(root), sphere)
