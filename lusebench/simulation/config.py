"""Configuration of a rendered set, with defaults equal to the paper (section 3.1)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from lusebench.errors import LusebenchError
from lusebench.io import AudioFormat
from lusebench.simulation.hrtf import MAX_SAMPLE_RATE
from lusebench.simulation.rooms import RoomRanges

Split = Literal["train", "val", "test"]
Interpolation = Literal["linear-aligned", "nearest"]
Room = Literal["anechoic", "reverberant"]
ROOMS: tuple[Room, ...] = ("anechoic", "reverberant")


SCHEMA_VERSION = 2
_ROOM_FIELDS = (
    "room", "rt60_range_s", "room_length_range_m", "room_width_range_m", "room_height_range_m",
    "source_distance_range_m", "max_image_order",
)
SPLITS: tuple[Split, ...] = ("train", "val", "test")
# Seeds enter numpy's SeedSequence (non-negative) and the manifest's int64 seed column.
MAX_SEED = 2**63 - 1
# The split enters every rng key as a number so that train, val and test never share a stream.
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}
# The embedded corpus the fixed test and val sets are drawn from (BENCHMARK_SETS), and so the default
# of every command that draws clips (simulate, train-baseline, replicate): a system trained on another
# corpus than the one it is scored on meets sounds of kinds it never heard. minicaps stays by name.
BENCHMARK_CORPUS = "debcaps"


def check_absent_share(share: float) -> None:
    """The one range of an absent-target share, for rendered sets and training alike (NaN fails too)."""
    if not 0.0 <= share <= 0.5:
        raise LusebenchError(f"--absent-share must lie in [0, 0.5], got {share}")


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that decides the content of a rendered set.

    Two sets with equal configs (and equal corpus and HRTF files) hold equal recipes and one fingerprint.
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
    corpus: str = BENCHMARK_CORPUS
    hrtf: str = "kemar"
    interpolation: Interpolation = "linear-aligned"
    audio_format: AudioFormat = "flac"
    save_sources: bool = False
    # The reverberant condition (rooms.py): ranges drawn uniformly per mixture, after every
    # anechoic draw, so a reverberant set holds the anechoic set's recipes in rooms.
    room: Room = "anechoic"
    rt60_range_s: tuple[float, float] = RoomRanges.rt60_s
    room_length_range_m: tuple[float, float] = RoomRanges.length_m
    room_width_range_m: tuple[float, float] = RoomRanges.width_m
    room_height_range_m: tuple[float, float] = RoomRanges.height_m
    source_distance_range_m: tuple[float, float] = RoomRanges.distance_m
    max_image_order: int = RoomRanges.max_image_order
    # A fixed recipe table shipped in the package (simulation/audiocaps_sets.py), e.g.
    # "audiocaps-test-2src": the set's recipes are the table's first num_mixtures rows that the
    # corpus (a user's AudioCaps copy) covers, not drawn from the seed.
    recipes: str = ""
    # Share of absent-target items (recipe.py): exactly round(share * num_mixtures) of them. 0 leaves
    # the set, its config.json and its fingerprint as they were before the field existed.
    absent_share: float = 0.0

    def __post_init__(self) -> None:
        _check_field_types(self)
        if self.num_sources < 2:
            raise LusebenchError(f"--sources must be at least 2 (a target and an interferer), got {self.num_sources}")
        if self.split not in SPLITS:
            raise LusebenchError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if self.num_mixtures < 1:
            raise LusebenchError(f"--num must be at least 1, got {self.num_mixtures}")
        if not 0 <= self.seed <= MAX_SEED:
            raise LusebenchError(f"--seed must lie in [0, 2**63 - 1], got {self.seed}")
        if not 8000 <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise LusebenchError(f"--sample-rate must lie in [8000, {MAX_SAMPLE_RATE}] Hz, got {self.sample_rate}")
        if not 0.1 <= self.duration_s <= 60.0:
            raise LusebenchError(f"--duration must lie in [0.1, 60] s, got {self.duration_s}")
        low, high = self.snr_range_db
        if low > high:
            raise LusebenchError(f"SNR range is empty: {self.snr_range_db}")
        if self.interpolation not in ("linear-aligned", "nearest"):
            raise LusebenchError(f"interpolation must be linear-aligned or nearest, got {self.interpolation!r}")
        if self.audio_format not in ("flac", "wav"):
            raise LusebenchError(f"audio format must be flac or wav, got {self.audio_format!r}")
        if self.room not in ROOMS:
            raise LusebenchError(f"--room must be one of {', '.join(ROOMS)}, got {self.room!r}")
        if self.room == "reverberant":
            self.room_ranges.check()
        if self.recipes:
            if not self.corpus.startswith("audiocaps:"):
                raise LusebenchError(f"{self.recipes} renders from your AudioCaps copy: add --corpus audiocaps:ROOT "
                                     "(the folder of test.csv/val.csv and the audio)")
        check_absent_share(self.absent_share)
        if self.absent_share > 0.0 and self.save_sources:
            raise LusebenchError("--save-sources does not support absent-target items yet: use --absent-share 0")
        if self.absent_share > 0.0 and self.recipes:
            raise LusebenchError(f"{self.recipes} is a fixed recipe table: it holds no absent-target items (--absent-share 0)")

    @property
    def room_ranges(self) -> RoomRanges:
        return RoomRanges(
            rt60_s=self.rt60_range_s,
            length_m=self.room_length_range_m,
            width_m=self.room_width_range_m,
            height_m=self.room_height_range_m,
            distance_m=self.source_distance_range_m,
            max_image_order=self.max_image_order,
        )

    @property
    def num_samples(self) -> int:
        return int(round(self.duration_s * self.sample_rate))

    @property
    def split_code(self) -> int:
        return SPLIT_CODES[self.split]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values; an anechoic config leaves the room fields out.

        Leaving them out keeps the config.json of an anechoic set byte-identical to the one
        written before rooms existed; readers take a missing ``room`` as ``anechoic``. ``recipes``
        is left out when empty, for the same reason, and so is a share of absent-target items of 0.
        """
        data = dataclasses.asdict(self)
        if self.room == "anechoic":
            for name in _ROOM_FIELDS:
                del data[name]
        if not self.recipes:
            del data["recipes"]
        if self.absent_share == 0.0:
            del data["absent_share"]
        return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulationConfig:
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise LusebenchError(f"unknown simulation config field(s): {', '.join(unknown)}")
        # Lists become tuples as they are; the field check says what a wrong element should be.
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
        return cls(**values)


def _type_problem(value: Any, default: Any) -> str | None:
    """What ``value`` should be, judged by the field's default, or None when it fits."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if isinstance(default, float):
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if number else "a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string"
    if isinstance(default, tuple):
        pair = isinstance(value, tuple) and len(value) == len(default)
        return None if pair and all(_type_problem(v, d) is None for v, d in zip(value, default)) else (
            f"a list of {len(default)} numbers"
        )
    raise TypeError(f"no type rule for a default of type {type(default).__name__}")


def _check_field_types(config: SimulationConfig) -> None:
    # A config.json is user data: "num_sources": "two" must be a one-line error, not a TypeError
    # deep in a comparison; the defaults say what each field holds.
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        wanted = _type_problem(value, field.default)
        if wanted is not None:
            raise LusebenchError(f"simulation config field {field.name!r} must be {wanted}, got {json.dumps(value, default=repr)[:40]}")


@dataclass(frozen=True)
class BenchmarkSet:
    """A fixed set that everyone renders identically: the seed and corpus live here, not on a command line."""

    split: Split
    num_sources: int
    num_mixtures: int
    seed: int
    room: Room = "anechoic"
    # The shipped recipe table (audiocaps_sets.py), for the sets rendered from a user's AudioCaps copy.
    recipes: str = ""
    # The share of absent-target items: 10 % of the debcaps test sets (a query for a sound that is not
    # there); 0 for val sets (training selects on them) and for the sets that predate the track.
    absent_share: float = 0.0
    # The audiocaps-* sets render from the user's copy, which --corpus audiocaps:ROOT must name.
    corpus: str = BENCHMARK_CORPUS
    # The head(s): a comma-separated list renders each mixture on one of them (writer.py), the
    # unseen-listener track's sets on heads that training by default never hears.
    hrtf: str = "kemar"

    def config(self, **overrides: Any) -> SimulationConfig:
        return SimulationConfig(
            **{
                "num_sources": self.num_sources,
                "split": self.split,
                "num_mixtures": self.num_mixtures,
                "seed": self.seed,
                "room": self.room,
                "recipes": self.recipes,
                "absent_share": self.absent_share,
                "corpus": self.corpus,
                "hrtf": self.hrtf,
                **overrides,
            }
        )


# The heads of the unseen-head sets: no default training run renders on them (train-baseline's
# --hrtf defaults to kemar; a multi-head run should leave these out to keep the track unseen).
UNSEEN_HEADS = "sonicom-1,sonicom-2"


# The benchmark's test and validation sets (10 s, 16 kHz, the paper preset), drawn from debcaps
# (about 2,000 clips, 20% of them test clips). Changing a seed, a count or the corpus here changes
# the benchmark: bump SCHEMA_VERSION and say so in the changelog.
BENCHMARK_SETS: dict[str, BenchmarkSet] = {
    "test-2src": BenchmarkSet("test", 2, 1000, 20351, absent_share=0.1),
    "test-3src": BenchmarkSet("test", 3, 1000, 20352, absent_share=0.1),
    "val-2src": BenchmarkSet("val", 2, 500, 20361),
    "val-3src": BenchmarkSet("val", 3, 500, 20362),
    # The reverberant condition: the same seeds, hence the same recipes, each placed in a room.
    "test-2src-reverb": BenchmarkSet("test", 2, 1000, 20351, room="reverberant", absent_share=0.1),
    "test-3src-reverb": BenchmarkSet("test", 3, 1000, 20352, room="reverberant", absent_share=0.1),
    # The unseen-listener track: the same seeds, hence the same recipes (clips, queries, gains,
    # azimuths, absent items, ids), each rendered on one of the two SONICOM subjects (drawn per
    # mixture from the seed), heads that default training (KEMAR) never hears. Scored beside
    # test-Nsrc, the difference is the head alone.
    "test-2src-unseen-head": BenchmarkSet("test", 2, 1000, 20351, absent_share=0.1, hrtf=UNSEEN_HEADS),
    "test-3src-unseen-head": BenchmarkSet("test", 3, 1000, 20352, absent_share=0.1, hrtf=UNSEEN_HEADS),
    # The first fixed sets, from minicaps' 33 test clips: too few clips to order systems (the
    # interval over clips is about +-1 dB wide), kept for demos and for the entries scored on them,
    # whose fingerprints stay valid and are never ranked with the sets above.
    "minicaps-test-2src": BenchmarkSet("test", 2, 1000, 20251, corpus="minicaps"),
    "minicaps-test-3src": BenchmarkSet("test", 3, 1000, 20252, corpus="minicaps"),
    "minicaps-val-2src": BenchmarkSet("val", 2, 500, 20261, corpus="minicaps"),
    "minicaps-val-3src": BenchmarkSet("val", 3, 500, 20262, corpus="minicaps"),
    "minicaps-test-2src-reverb": BenchmarkSet("test", 2, 1000, 20251, room="reverberant", corpus="minicaps"),
    "minicaps-test-3src-reverb": BenchmarkSet("test", 3, 1000, 20252, room="reverberant", corpus="minicaps"),
    # AudioCaps as users hold it: recipes keyed by AudioCaps ids, drawn once from the original
    # test and val caption tables with these seeds (scripts/build_audiocaps_sets.py) and shipped
    # as tables; each user renders the recipes their copy covers.
    "audiocaps-test-2src": BenchmarkSet("test", 2, 1000, 20271, recipes="audiocaps-test-2src"),
    "audiocaps-test-3src": BenchmarkSet("test", 3, 1000, 20272, recipes="audiocaps-test-3src"),
    "audiocaps-val-2src": BenchmarkSet("val", 2, 500, 20281, recipes="audiocaps-val-2src"),
    "audiocaps-val-3src": BenchmarkSet("val", 3, 500, 20282, recipes="audiocaps-val-3src"),
    # Their reverberant twins: the same recipes, each placed in a room drawn from the recipe's index.
    "audiocaps-test-2src-reverb": BenchmarkSet("test", 2, 1000, 20271, room="reverberant", recipes="audiocaps-test-2src"),
    "audiocaps-test-3src-reverb": BenchmarkSet("test", 3, 1000, 20272, room="reverberant", recipes="audiocaps-test-3src"),
}
