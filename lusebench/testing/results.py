"""Small fake ``results.json`` files (schema version 1) for leaderboard tests and users' own tests."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lusebench.io import atomic_write, write_json

FAKE_FINGERPRINT = "0" * 64


def fake_results(
    system: str = "fake-system",
    *,
    tasks: Sequence[str] = ("extraction", "localization"),
    num_sources: Sequence[int] = (3,),
    fingerprint: str = FAKE_FINGERPRINT,
    condition: str = "anechoic",
    si_snri_db: float = 10.0,
    sdri_db: float = 11.0,
    doa_accuracy_pct: float = 50.0,
    doa_mae_deg: float = 20.0,
    channels: int = 2,
    gcc_phat: bool | None = True,
    link: str | None = "https://example.org/fake-system",
    created_utc: str = "2026-11-28T18:00:00Z",
    num_items: int = 100,
) -> dict[str, Any]:
    """The JSON document ``lusebench evaluate`` would write, with the given headline figures.

    Only the metrics of ``tasks`` are present, as in a real file. Each source count ``n`` gets
    the given figures shifted by ``n - num_sources[0]`` dB / % / deg so that per-count blocks
    differ and a reader that mixes them up is caught.
    """
    headline = {
        "si_snri_db": si_snri_db,
        "sdri_db": sdri_db,
        "doa_accuracy_pct": doa_accuracy_pct,
        "doa_mae_deg": doa_mae_deg,
    }
    keys = {
        "extraction": ("si_snr_db", "si_snri_db", "sdr_db", "sdri_db"),
        "localization": ("doa_accuracy_pct", "doa_mae_deg", "doa_mae_folded_deg"),
    }
    present = [key for task in tasks for key in keys[task]]

    def block(shift: float, n: int) -> dict[str, Any]:
        return {key: {"mean": headline.get(key, 5.0) + shift, "ci95": 0.5, "n": n} for key in present}

    per_count = num_items // len(num_sources)
    return {
        "schema_version": 1,
        "lusebench_version": "0.1.0",
        "git_commit": "0123456789abcdef0123456789abcdef01234567",
        "created_utc": created_utc,
        "wall_time_s": 12.3,
        "dataset": {
            "path": "data/fake-test-set",
            "fingerprint": fingerprint,
            "split": "test",
            "num_items": num_items,
            "num_sources": list(num_sources),
            "condition": condition,
            "sample_rate": 16000,
        },
        "system": {
            "name": system,
            "tasks": list(tasks),
            "parameters": 123456,
            "description": f"{system}, a fake system for tests",
            "link": link,
            "channels": channels,
            "gcc_phat": gcc_phat,
        },
        "metrics": {
            "overall": block(0.0, num_items),
            "by_num_sources": {str(n): block(float(n - num_sources[0]), per_count) for n in num_sources},
            "by_condition": {condition: block(0.0, num_items)},
        },
        "items": "items.csv",
    }


def tiny_png() -> bytes:
    """A valid 1x1 grey PNG, to stand in for a figure."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1x1, 8-bit greyscale
    pixels = zlib.compress(b"\x00\x80")  # filter byte 0, then one grey pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def write_fake_results(folder: Path, *, figures: Sequence[str] = (), **kwargs: Any) -> Path:
    """Write ``folder/results.json`` from :func:`fake_results` (and ``figures/<name>.png``); return its path."""
    folder = Path(folder)
    path = folder / "results.json"
    write_json(path, fake_results(**kwargs))
    for name in figures:
        png = tiny_png()
        atomic_write(folder / "figures" / f"{name}.png", lambda tmp: tmp.write_bytes(png))
    return path
