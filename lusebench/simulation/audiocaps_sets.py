"""Fixed AudioCaps benchmark sets: recipes keyed by AudioCaps ids, rendered from each user's own copy.

The audio of AudioCaps lives on YouTube and every copy holds another subset of it, so a set drawn
from the clips a user holds is a set nobody else holds. These sets were drawn once, by the paper's
protocol, from the original AudioCaps v1 caption tables (``scripts/build_audiocaps_sets.py``), and
the package ships only what was drawn: per mixture and source the ``youtube_id``, ``start_time``
and the ``audiocap_id`` of the caption row used, the azimuth and the SNR, plus an 8-hex digest of
each caption so that a copy with other caption text is caught. Captions and audio come from the
user's copy at render time.

What the draw did (paper section 3.1, DESIGN.md): the anchor is a clip drawn uniformly from the
split's clips (in the order of the split's CSV); its query is one of its five captions, drawn
uniformly; each interferer is drawn uniformly from the clips whose captions *differ* from every
clip already chosen (:func:`captions_differ`), with one of its own captions (the query the
query-swap check asks for); SNRs uniform in [-5, 5] dB, azimuths uniform in [0, 360), both rounded
to 1e-4. The mixture's rng is ``np.random.default_rng([seed, split_code, index])``.

What rendering does with a user's clip (never silently: every case is counted in ``coverage.json``
and printed): the clip is the AudioCaps segment from its start, so it is read from sample 0 (there
is nothing to draw: the paper's mixtures are as long as the clips); stereo is averaged to mono;
another sample rate is resampled (polyphase); a clip longer than the mixture is cut, and one
shorter is padded with silence at its end if it holds at least ``MIN_CLIP_SHARE`` of the mixture.
A clip that is missing, does not decode, is truncated, too short, longer than a segment by more
than ``SEGMENT_TOLERANCE_S`` (a whole video, not the segment), silent over the mixture, or whose
caption row is absent or differs, is unusable: the recipes that use it are skipped and it is
listed in ``missing.csv``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from lusebench.errors import LusebenchError
from lusebench.io import DECODE_ERRORS, atomic_write, open_regular, write_json
from lusebench.simulation.corpus import (
    AUDIOCAPS_COLUMNS,
    Clip,
    Corpus,
    audio_index,
    find_audio,
    read_audiocaps_csv,
)
from lusebench.simulation.recipe import SILENCE_POWER, place

# AudioCaps clips are 10 s segments of YouTube videos starting at start_time.
SEGMENT_S = 10.0
# A file this much longer than a segment holds more than the segment (often the whole video):
# reading it from its start would render the wrong sound.
SEGMENT_TOLERANCE_S = 1.0
# A clip shorter than this share of the mixture is unusable; a longer one is padded with silence.
MIN_CLIP_SHARE = 0.9
COVERAGE_FILE = "coverage.json"
MISSING_FILE = "missing.csv"
RECIPES_FILE = "recipes.txt"
_ASSETS = ("assets", "audiocaps_sets")

# Words that carry no sound event: articles, prepositions, adverbs of manner and time.
_STOP_WORDS = frozenset(
    "a an the and or of in on at to with by from as is are be being been while then than into onto over under "
    "for it its this that there some someone something other another near far very away loud loudly quietly "
    "softly before after during when up down out off through ahead back background foreground followed".split()
)


def caption_words(caption: str) -> frozenset[str]:
    """The content words of a caption, lower-cased, crudely stemmed (barking, barks, barked -> bark)."""
    words = set()
    for word in re.findall(r"[a-z]+", caption.lower()):
        if word in _STOP_WORDS:
            continue
        for suffix in ("ing", "es", "ed", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                if suffix in ("ing", "ed") and len(word) >= 4 and word[-1] == word[-2]:
                    word = word[:-1]  # running -> runn -> run
                break
        words.add(word)
    return frozenset(words)


def key_words(captions: Sequence[str]) -> frozenset[str]:
    """The words a majority of a clip's captions use: what its annotators agree they heard."""
    counts = Counter(word for caption in captions for word in caption_words(caption))
    return frozenset(word for word, count in counts.items() if count > len(captions) / 2)


def captions_differ(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two AudioCaps clips may share a mixture: no key word in common.

    AudioCaps captions are free text, so every two clips' captions differ as strings; what must
    differ is what they describe. Two clips differ when no content word is used by a majority of
    the captions of both ("A dog barks" x5 and "Dogs barking and a man speaks" x5 share ``dog``
    and ``bark``: they do not). About 80 % of the pairs of test (77 % of val) clips differ.
    """
    return not key_words(a) & key_words(b)


def caption_digest(caption: str) -> str:
    """8 hex digits of the sha256 of a caption as the CSV holds it, surrounding whitespace removed."""
    return hashlib.sha256(caption.strip().encode()).hexdigest()[:8]


@dataclass(frozen=True)
class AudiocapsClip:
    youtube_id: str
    start_time: float
    audiocap_ids: tuple[str, ...]
    captions: tuple[str, ...]


def clips_of_table(table: pd.DataFrame) -> list[AudiocapsClip]:
    """The clips of an AudioCaps CSV in the order of their first row, their caption rows in CSV order."""
    rows: dict[str, list[tuple[str, float, str]]] = {}
    for audiocap_id, youtube_id, start_time, caption in table[list(AUDIOCAPS_COLUMNS)].itertuples(index=False):
        rows.setdefault(youtube_id, []).append((audiocap_id, float(start_time), str(caption).strip()))
    return [
        AudiocapsClip(youtube_id, entries[0][1], tuple(e[0] for e in entries), tuple(e[2] for e in entries))
        for youtube_id, entries in rows.items()
    ]


def _columns(num_sources: int) -> list[str]:
    names = ["mixture_id", "index"]
    for k in range(num_sources):
        names += [f"youtube_id_{k}", f"start_time_{k}", f"audiocap_id_{k}", f"caption_digest_{k}",
                  f"azimuth_deg_{k}", f"snr_db_{k}"]
    return names


def draw_table(name: str, table: pd.DataFrame, split: str, num_sources: int, num_mixtures: int, seed: int,
               split_code: int) -> pd.DataFrame:
    """Draw a fixed set's recipes from an AudioCaps caption table (the one-time draw; see the module doc)."""
    clips = clips_of_table(table)
    keys = {clip.youtube_id: key_words(clip.captions) for clip in clips}
    rows = []
    for index in range(num_mixtures):
        rng = np.random.default_rng([seed, split_code, index])
        chosen = [clips[int(rng.integers(len(clips)))]]
        caption_rows = [int(rng.integers(len(chosen[0].audiocap_ids)))]
        for _ in range(num_sources - 1):
            candidates = [c for c in clips if all(c.youtube_id != o.youtube_id and not keys[c.youtube_id] & keys[o.youtube_id]
                                                  for o in chosen)]
            if not candidates:
                raise LusebenchError(f"split {split!r} has too few clips that differ for {num_sources}-source mixtures")
            chosen.append(candidates[int(rng.integers(len(candidates)))])
            caption_rows.append(int(rng.integers(len(chosen[-1].audiocap_ids))))
        snr = [0.0] + [round(float(rng.uniform(-5.0, 5.0)), 4) for _ in chosen[1:]]
        azimuths = [round(float(rng.uniform(0.0, 360.0)), 4) % 360.0 for _ in chosen]
        row: dict[str, Any] = {"mixture_id": f"{name}-{index:06d}", "index": index}
        for k, (clip, pick) in enumerate(zip(chosen, caption_rows)):
            row.update({
                # AudioCaps' start times are whole seconds: written as the CSVs write them.
                f"youtube_id_{k}": clip.youtube_id,
                f"start_time_{k}": int(clip.start_time) if clip.start_time.is_integer() else clip.start_time,
                f"audiocap_id_{k}": clip.audiocap_ids[pick], f"caption_digest_{k}": caption_digest(clip.captions[pick]),
                f"azimuth_deg_{k}": azimuths[k], f"snr_db_{k}": snr[k],
            })
        rows.append(row)
    return pd.DataFrame(rows, columns=_columns(num_sources))


def table_path(name: str) -> Path:
    return Path(str(resources.files("lusebench").joinpath(*_ASSETS, f"{name}.csv")))


def load_table(name: str, num_sources: int) -> tuple[pd.DataFrame, str]:
    """A shipped recipe table and the sha256 of its file.

    Raises:
        LusebenchError: the installation lacks the table, or it does not have the set's columns.
    """
    path = table_path(name)
    if not path.is_file():
        raise LusebenchError(f"the recipe table of {name} is missing from the installation ({path})")
    payload = path.read_bytes()
    table = pd.read_csv(path, dtype={f"{c}_{k}": str for c in ("youtube_id", "audiocap_id", "caption_digest")
                                     for k in range(num_sources)} | {"mixture_id": str})
    if list(table.columns) != _columns(num_sources):
        raise LusebenchError(f"{path} does not have the columns of a {num_sources}-source recipe table")
    return table, hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class FixedMixture:
    """One recipe of a fixed set as this copy renders it: ids from the table, captions from the copy."""

    mixture_id: str
    index: int
    clip_ids: tuple[str, ...]
    audiocap_ids: tuple[str, ...]
    captions: tuple[str, ...]
    azimuths_deg: tuple[float, ...]
    snr_db: tuple[float, ...]


@dataclass(frozen=True)
class Coverage:
    """How much of a fixed set a copy renders, and what was done to its clips.

    Attributes:
        recipe_set: the set's name.
        recipes: recipes rendered.
        recipes_total: recipes of the set (the first ``num_mixtures`` of its table).
        clips: distinct clips those recipes use.
        clips_unusable: of them, missing or unusable (listed in missing.csv).
        resampled, downmixed, cut, padded: usable clips per treatment; ``rates`` names the
            sample rates found other than the set's.
    """

    recipe_set: str
    recipes: int
    recipes_total: int
    clips: int
    clips_unusable: int
    resampled: int = 0
    downmixed: int = 0
    cut: int = 0
    padded: int = 0
    rates: tuple[int, ...] = ()

    def summary(self) -> str:
        """The line ``simulate`` prints, e.g. "812 of 1,000 mixtures; 171 of 975 clips missing or unusable"."""
        text = (f"{self.recipe_set}: {self.recipes:,} of {self.recipes_total:,} mixtures "
                f"({100.0 * self.recipes / self.recipes_total:.1f} %); "
                f"{self.clips_unusable:,} of {self.clips:,} clips missing or unusable")
        treated = [f"{count} {what}" for count, what in (
            (self.resampled, f"resampled (from {', '.join(f'{r} Hz' for r in self.rates)})"),
            (self.downmixed, "stereo averaged to mono"), (self.cut, "cut to the mixture's length"),
            (self.padded, "padded with silence at the end")) if count]
        return text + ("; clips " + ", ".join(treated) if treated else "")


@dataclass
class FixedSet:
    """A fixed set opened on a user's copy: the corpus of its usable clips and the recipes they cover."""

    name: str
    table_sha256: str
    size: int
    corpus: Corpus
    mixtures: dict[int, FixedMixture]
    coverage: Coverage
    missing: pd.DataFrame = field(repr=False)

    def extra_fields(self, mixture: FixedMixture) -> dict[str, Any]:
        """The manifest columns a fixed set's rows add (docs/dataset-format.md)."""
        return {"recipe_set": self.name, "recipe_set_sha256": self.table_sha256, "recipe_set_size": self.size,
                "audiocap_ids": list(mixture.audiocap_ids)}

    def write_reports(self, out: Path) -> None:
        """coverage.json, missing.csv and recipes.txt into a dataset folder, each atomically."""
        write_json(out / COVERAGE_FILE, {**asdict(self.coverage), "rates": list(self.coverage.rates),
                                         "summary": self.coverage.summary(), "missing": MISSING_FILE})
        atomic_write(out / MISSING_FILE, lambda tmp: self.missing.to_csv(tmp, index=False))
        ids = "".join(f"{m.mixture_id}\n" for _, m in sorted(self.mixtures.items()))
        atomic_write(out / RECIPES_FILE, lambda tmp: tmp.write_text(ids))


@dataclass(frozen=True)
class _ClipState:
    reason: str | None
    rate: int = 0
    channels: int = 0
    seconds: float = 0.0


class _LongerThanASegment(LusebenchError):
    """A file that holds more than an AudioCaps segment (often the whole video)."""


def _decode_segment(clip: Clip) -> tuple[np.ndarray, int]:
    """A user's clip as float32 (channels, time) and its rate, from one opening of a regular file.

    The header's length is judged before a sample is decoded, so a whole video is never decoded,
    and the clip must decode every frame its header declares (a truncated FLAC's header is intact).

    Raises:
        _LongerThanASegment: the file is longer than a segment by more than ``SEGMENT_TOLERANCE_S``.
        LusebenchError: the file is missing, not a regular file, empty, truncated or corrupt.
    """
    path = clip.path
    try:
        with open_regular(path) as handle, sf.SoundFile(handle) as sound:  # type: ignore[arg-type]
            frames, rate = int(sound.frames), int(sound.samplerate)
            if frames < 1:
                raise LusebenchError(f"audio file {path} holds no samples")
            if frames / rate > SEGMENT_S + SEGMENT_TOLERANCE_S:
                raise _LongerThanASegment(f"{frames / rate:.2f} s, longer than a {SEGMENT_S:g} s AudioCaps "
                                          "segment (cut it at start_time)")
            audio = sound.read(dtype="float32", always_2d=True).T  # (channels, time)
            if audio.shape[1] != frames:
                raise RuntimeError(f"{audio.shape[1]} of the {frames} frames its header declares decode")
    except DECODE_ERRORS as error:
        raise LusebenchError(f"cannot decode audio file {path} (truncated or corrupt?): {error}") from None
    return np.ascontiguousarray(audio), rate


def _probe(corpus: Corpus, clip: Clip, sample_rate: int, num_samples: int) -> _ClipState:
    """Whether a user's clip can serve the set, and what rendering does to it. The decode lands in
    the corpus's cache (the last 512 clips), from which rendering takes it."""
    mixture_s = num_samples / sample_rate
    try:
        audio, native = corpus.decoded(clip, sample_rate)
    except _LongerThanASegment as error:
        return _ClipState(str(error))
    except LusebenchError as error:
        return _ClipState(f"does not decode: {error}")
    seconds = native.frames / native.sample_rate
    if seconds < MIN_CLIP_SHARE * mixture_s:
        return _ClipState(f"too short: {seconds:.2f} s of the {mixture_s:g} s mixture (needs {MIN_CLIP_SHARE:.0%})")
    segment = place(audio, 0, 0, num_samples)
    if float(np.mean(np.square(segment, dtype=np.float64))) <= SILENCE_POWER:
        return _ClipState(f"silent over the first {mixture_s:g} s")
    return _ClipState(None, native.sample_rate, native.channels, seconds)


def open_fixed_set(name: str, split: str, num_sources: int, num_mixtures: int, corpus_spec: str,
                   sample_rate: int, num_samples: int) -> FixedSet:
    """Open a fixed AudioCaps set on a user's copy ``audiocaps:ROOT``: which recipes it covers.

    Raises:
        LusebenchError: ROOT or its split CSV is missing or malformed, or no recipe can be rendered.
    """
    kind, _, location = corpus_spec.partition(":")
    if kind != "audiocaps" or not location or "+" in corpus_spec:
        raise LusebenchError(f"{name} renders from your AudioCaps copy: use --corpus audiocaps:ROOT, not {corpus_spec!r}")
    root = Path(location)
    if not root.is_dir():
        raise LusebenchError(f"AudioCaps folder not found: {root}")
    csv_path = root / f"{split}.csv"
    if not csv_path.is_file():
        raise LusebenchError(f"{root} has no {split}.csv: {name} takes its captions from AudioCaps' {split}.csv")
    table, table_sha256 = load_table(name, num_sources)
    table = table.iloc[:num_mixtures]
    rows = read_audiocaps_csv(csv_path)
    # audiocap_id -> (youtube_id, start_time, caption) of the copy's rows, and each clip's rows.
    captions: dict[str, tuple[str, str, str]] = {}
    rows_of: dict[str, list[str]] = {}
    for audiocap_id, youtube_id, start_time, caption in rows[list(AUDIOCAPS_COLUMNS)].itertuples(index=False):
        captions[audiocap_id] = (youtube_id, _seconds_text(start_time), str(caption).strip())
        rows_of.setdefault(youtube_id, []).append(audiocap_id)
    index = audio_index(root, split)

    users: dict[str, Clip] = {}
    problems: dict[tuple[str, str], str] = {}  # (youtube_id, audiocap_id or "") -> reason
    starts: dict[str, float] = {}
    for k in range(num_sources):
        for youtube_id, start in table[[f"youtube_id_{k}", f"start_time_{k}"]].itertuples(index=False):
            starts[youtube_id] = float(start)
    # A module-level decoder, not a lambda: the set goes to simulate's worker processes pickled.
    corpus = Corpus(name=f"audiocaps:{root}", clips={}, _decode=_decode_segment)
    states: dict[str, _ClipState] = {}
    for youtube_id, start in starts.items():
        own_ids = rows_of.get(youtube_id, [])
        path = find_audio(index, youtube_id, start, own_ids)
        if path is None:
            problems[(youtube_id, "")] = "no audio file"
            continue
        clip = Clip(clip_id=youtube_id, captions=tuple(captions[a][2] for a in own_ids) or ("",), path=path)
        state = _probe(corpus, clip, sample_rate, num_samples)
        if state.reason is not None:
            problems[(youtube_id, "")] = f"{path.name}: {state.reason}"
            continue
        users[youtube_id], states[youtube_id] = clip, state

    mixtures: dict[int, FixedMixture] = {}
    lost: Counter[tuple[str, str]] = Counter()
    for row in table.to_dict("records"):
        ids = tuple(row[f"youtube_id_{k}"] for k in range(num_sources))
        caption_ids = tuple(row[f"audiocap_id_{k}"] for k in range(num_sources))
        texts, bad = [], []
        for youtube_id, audiocap_id, k in zip(ids, caption_ids, range(num_sources)):
            entry = captions.get(audiocap_id)
            if (youtube_id, "") in problems:
                pass  # the clip itself is unusable: its caption rows add nothing to say
            elif entry is None or entry[0] != youtube_id:
                problems.setdefault((youtube_id, audiocap_id), f"caption row {audiocap_id} absent from {split}.csv")
            elif entry[1] != _seconds_text(starts[youtube_id]):
                # Another start is another 10 s of the video: the file holds another sound.
                problems.setdefault((youtube_id, audiocap_id), f"{split}.csv gives start_time {entry[1]}, "
                                    f"AudioCaps v1 {_seconds_text(starts[youtube_id])}")
            elif caption_digest(entry[2]) != row[f"caption_digest_{k}"]:
                problems.setdefault((youtube_id, audiocap_id), f"caption {audiocap_id} differs from AudioCaps v1's")
            else:
                texts.append(entry[2])
            bad += [key for key in ((youtube_id, ""), (youtube_id, audiocap_id)) if key in problems]
        if bad:
            lost.update(set(bad))
            continue
        mixtures[int(row["index"])] = FixedMixture(
            mixture_id=row["mixture_id"], index=int(row["index"]), clip_ids=ids, audiocap_ids=caption_ids,
            captions=tuple(texts), azimuths_deg=tuple(float(row[f"azimuth_deg_{k}"]) for k in range(num_sources)),
            snr_db=tuple(float(row[f"snr_db_{k}"]) for k in range(num_sources)),
        )
    used = {youtube_id for m in mixtures.values() for youtube_id in m.clip_ids}
    corpus.clips = {split: [users[y] for y in starts if y in used]}
    unusable = {youtube_id for youtube_id, _ in problems}
    mixture_s = num_samples / sample_rate
    kept = [states[y] for y in used]
    coverage = Coverage(
        recipe_set=name, recipes=len(mixtures), recipes_total=len(table), clips=len(starts),
        clips_unusable=len(unusable),
        resampled=sum(s.rate != sample_rate for s in kept), downmixed=sum(s.channels > 1 for s in kept),
        cut=sum(s.seconds > mixture_s for s in kept), padded=sum(s.seconds < mixture_s for s in kept),
        rates=tuple(sorted({s.rate for s in kept if s.rate != sample_rate})),
    )
    missing = pd.DataFrame(
        [(y, _seconds_text(starts[y]), a, reason, lost[(y, a)]) for (y, a), reason in sorted(problems.items())],
        columns=["youtube_id", "start_time", "audiocap_id", "reason", "mixtures_lost"],
    )
    if not mixtures:
        example = next(iter(sorted(problems.items())), None)
        shown = f" (e.g. {example[0][0]}: {example[1]})" if example else ""
        raise LusebenchError(
            f"none of the {len(table)} recipes of {name} can be rendered from {root}: {len(unusable)} of "
            f"{len(starts)} clips missing or unusable{shown}; is it an AudioCaps folder ({split}.csv + audio)?"
        )
    return FixedSet(name, table_sha256, len(table), corpus, mixtures, coverage, missing)


def is_copy_of(corpus_spec: str, name: str, split: str, num_sources: int) -> bool:
    """Whether ``corpus_spec`` is one AudioCaps copy (``audiocaps:ROOT``) whose ``split``.csv holds
    caption rows of the fixed set ``name``: then the set is what that copy is validated or tested on."""
    kind, _, location = corpus_spec.partition(":")
    csv_path = Path(location) / f"{split}.csv"
    if kind != "audiocaps" or "+" in corpus_spec or not csv_path.is_file():
        return False
    table, _ = load_table(name, num_sources)
    ids = set(read_audiocaps_csv(csv_path)["audiocap_id"].astype(str))
    return any(audiocap_id in ids for audiocap_id in table["audiocap_id_0"])


def _seconds_text(value: Any) -> str:
    """A start time as AudioCaps writes it (whole seconds without ".0"); text that is no number as is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(number)


def read_coverage(data_dir: Path | str) -> dict[str, Any] | None:
    """A dataset folder's coverage.json, or None when the set is not a fixed AudioCaps set."""
    path = Path(data_dir) / COVERAGE_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LusebenchError(f"cannot read {path}: {error}") from None
    return data if isinstance(data, dict) else None

