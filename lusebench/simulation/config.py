"""Configuration of a rendered set, with defaults equal to the paper (section 3.1)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from lusebench.errors import LusebenchError
from lusebench.io import AudioFormat

Split = Literal["train", "val", "test"]
Interpolation = Literal["linear-aligned", "nearest"]


SCHEMA_VERSION = 1
SPLITS: tuple[Split, ...] = ("train", "val", "test")
# The split enters every rng key as a number so that train, val and test never share a stream.
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that decides the content of a rendered set.

    Two sets with equal configs (and equal corpus and HRTF files) are byte-identical.
    """

    num_sources: int = 3
    split: Split = "test"
    num_mixtures: int = 1000
    seed: int = 0
    sample_rate: int = 16000
    duration_s: float = 10.0
    snr_range_db: tuple[float, float] = (-5.0, 5.0)
    # Level of the dry target before the common anti-clipping gain: -25 dBFS RMS leaves the
    # headroom of three sources summed through the HRTF's gain of up to ~+10 dB at the near ear.
    target_rms_dbfs: float = -25.0
    corpus: str = "minicaps"
    hrtf: str = "kemar"
    interpolation: Interpolation = "linear-aligned"
    audio_format: AudioFormat = "flac"
    save_sources: bool = False

    def __post_init__(self) -> None:
        if self.num_sources < 2:
            raise LusebenchError(f"--sources must be at least 2 (a target and an interferer), got {self.num_sources}")
        if self.split not in SPLITS:
            raise LusebenchError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.num_mixtures < 1:
            raise LusebenchError(f"--num must be at least 1, got {self.num_mixtures}")
        if self.sample_rate < 8000:
            raise LusebenchError(f"sample rate must be at least 8000 Hz, got {self.sample_rate}")
        if not 0.1 <= self.duration_s <= 60.0:
            raise LusebenchError(f"--duration must lie in [0.1, 60] s, got {self.duration_s}")
        low, high = self.snr_range_db
        if low > high:
            raise LusebenchError(f"SNR range is empty: {self.snr_range_db}")
        if self.interpolation not in ("linear-aligned", "nearest"):
            raise LusebenchError(f"interpolation must be linear-aligned or nearest, got {self.interpolation!r}")
        if self.audio_format not in ("flac", "wav"):
            raise LusebenchError(f"audio format must be flac or wav, got {self.audio_format!r}")

    @property
    def num_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def split_code(self) -> int:
        return SPLIT_CODES[self.split]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["snr_range_db"] = list(self.snr_range_db)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LusebenchError(f"unknown simulation config field(s): {', '.join(unknown)}")
        values = dict(data)
        if "snr_range_db" in values:
            values["snr_range_db"] = tuple(float(v) for v in values["snr_range_db"])
        return cls(**values)


@dataclass(frozen=True)
class BenchmarkSet:
    """A fixed set that everyone renders identically: the seed lives here, not on a command line."""

    split: Split
    num_sources: int
    num_mixtures: int
    seed: int

    def config(self, **overrides: Any) -> SimulationConfig:
        return SimulationConfig(
            num_sources=self.num_sources,
            split=self.split,
            num_mixtures=self.num_mixtures,
            seed=self.seed,
            **overrides,
        )


# The benchmark's test and validation sets (10 s, 16 kHz, the paper preset). Changing a seed or a
# count here changes the benchmark: bump SCHEMA_VERSION and say so in the changelog.
BENCHMARK_SETS: dict[str, BenchmarkSet] = {
    "test-2src": BenchmarkSet("test", 2, 1000, 20251),
    "test-3src": BenchmarkSet("test", 3, 1000, 20252),
    "val-2src": BenchmarkSet("val", 2, 500, 20261),
    "val-3src": BenchmarkSet("val", 3, 500, 20262),
}
