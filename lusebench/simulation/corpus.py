"""Captioned clip corpora: the embedded minicaps, AudioCaps as users hold it, Hugging Face datasets.

Every loader yields the same thing: a :class:`Corpus` whose clips per split carry an id, their
captions and a way to read their audio as mono float32 at any sample rate.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from lusebench.errors import LusebenchError
from lusebench.io import AudioHeader, read_audio, sha256_file
from lusebench.simulation.resample import resample_poly

log = logging.getLogger(__name__)

AUDIOCAPS_COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
# What lusebench's own corpora (minicaps, gmcaps) add to each AudioCaps row; the loader ignores them.
PROVENANCE_COLUMNS = ("source", "licence", "credit", "duration_s", "original_name")
# debcaps adds what a clip sounds like in a word and the recording family it belongs to
# (near-duplicates and clips sharing a caption), which its splits never divide.
DEBCAPS_COLUMNS = ("category", "group")
AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3")
# AudioCaps names its splits train/val/test; Hugging Face copies often say "validation".
_HF_SPLIT_NAMES = {"train": ("train",), "val": ("val", "validation", "valid"), "test": ("test",)}


@dataclass(frozen=True)
class Clip:
    """One recording and every caption written for it (AudioCaps val/test clips have five)."""

    clip_id: str
    captions: tuple[str, ...]
    path: Path | None = None
    hf_index: int | None = None
    # A corpus's own kind of sound (debcaps' category column), where it has one.
    category: str = ""


@dataclass
class Corpus:
    """Clips per split plus the means to decode them.

    Attributes:
        name: identity recorded in every manifest row, e.g. ``minicaps`` or ``audiocaps:/data/ac``.
        clips: split name -> clips in a fixed order (the order is part of the recipe's meaning).
    """

    name: str
    clips: dict[str, list[Clip]]
    _decode: Callable[[Clip], tuple[np.ndarray, int]] = field(repr=False, default=None)  # type: ignore[assignment]
    _by_id: dict[str, Clip] | None = field(repr=False, default=None, compare=False)

    def split(self, split: str) -> list[Clip]:
        clips = self.clips.get(split, [])
        if not clips:
            raise LusebenchError(f"corpus {self.name} has no clips in split {split!r}")
        return clips

    def clip(self, clip_id: str) -> Clip:
        """The clip with this id, from any split."""
        if self._by_id is None:
            self._by_id = {clip.clip_id: clip for clips in self.clips.values() for clip in clips}
        if clip_id not in self._by_id:
            raise LusebenchError(f"clip {clip_id!r} is not in corpus {self.name}")
        return self._by_id[clip_id]

    def check(self, split: str) -> None:
        """Open every clip of a split once, so a missing or corrupt file fails before any writing
        (:func:`file_problem`)."""
        clips = self.split(split)
        if clips[0].path is None:
            # A Hugging Face column holds one type in every row: decoding the first clip finds a
            # column of paths or text before anything is written.
            self._decode(clips[0])
            return
        for clip in clips:
            problem = file_problem(clip.path)
            if problem is not None:
                raise LusebenchError(f"{problem} (clip {clip.clip_id})")

    def audio(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """The clip as mono float32 of shape (time,) at ``sample_rate``."""
        return _cached_audio(self, clip, sample_rate)[0]

    def decoded(self, clip: Clip, sample_rate: int) -> tuple[np.ndarray, AudioHeader]:
        """:meth:`audio` and what its decode found: the clip's own frames, channels and rate."""
        return _cached_audio(self, clip, sample_rate)

    def checksum(self, clip: Clip) -> str:
        """Sha256 of the clip as the corpus holds it: its file's bytes, or (Hugging Face clips,
        which have no file of their own) its decoded samples and rate."""
        return _cached_checksum(self, clip)

    def __hash__(self) -> int:  # identity hash, so lru_cache can key on the corpus object
        return id(self)


def file_problem(path: Path) -> str | None:
    """What keeps an audio file from decoding whole (missing, empty, truncated, corrupt), or None.

    Reading the header is not enough: a truncated FLAC has an intact header and fails only when
    decoded. Seeking to the last frame and reading it finds truncation at the cost of one block.
    """
    if not path.is_file():
        return f"audio file not found: {path}"
    try:
        with sf.SoundFile(path) as handle:
            if handle.frames < 1:
                return f"audio file {path} holds no samples"
            handle.seek(handle.frames - 1)
            if len(handle.read(1)) != 1:
                raise RuntimeError("the last frame cannot be read")
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
        return f"cannot decode audio file {path} (truncated or corrupt?): {error}"
    return None


@functools.lru_cache(maxsize=512)
def _cached_audio(corpus: Corpus, clip: Clip, sample_rate: int) -> tuple[np.ndarray, AudioHeader]:
    audio, rate = corpus._decode(clip)  # (channels, time)
    mono = audio.mean(axis=0) if audio.shape[0] > 1 else audio[0]
    if rate != sample_rate:
        gcd = math.gcd(rate, sample_rate)
        mono = resample_poly(mono.astype(np.float64), sample_rate // gcd, rate // gcd)
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    mono.flags.writeable = False  # shared between mixtures: nobody may scale it in place
    return mono, AudioHeader(frames=audio.shape[1], channels=audio.shape[0], sample_rate=rate)


@functools.lru_cache(maxsize=None)
def _cached_checksum(corpus: Corpus, clip: Clip) -> str:
    if clip.path is not None:
        return sha256_file(clip.path)
    audio, rate = corpus._decode(clip)
    digest = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
    digest.update(str(rate).encode())
    return digest.hexdigest()


def _decode_file(clip: Clip) -> tuple[np.ndarray, int]:
    return read_audio(clip.path)  # type: ignore[arg-type]


# The corpora shipped inside the package: minicaps (a few hundred clips, for demos and tests) and
# debcaps (about two thousand, the fixed benchmark sets' corpus).
EMBEDDED = ("minicaps", "debcaps")


def embedded_root(name: str = "minicaps") -> Path:
    """Folder of an embedded corpus inside the installed package."""
    return Path(str(resources.files("lusebench").joinpath("assets", name)))


def load_embedded(name: str = "minicaps") -> Corpus:
    """An embedded corpus (AudioCaps layout), named by itself in every manifest row."""
    root = embedded_root(name)
    if not (root / "test.csv").is_file():
        raise LusebenchError(f"the embedded corpus {name} is missing from the installation ({root})")
    corpus = load_audiocaps(root)
    corpus.name = name
    return corpus


def _index_audio_folder(folder: Path) -> dict[str, Path]:
    """Map file stem -> path for every audio file in ``folder`` (one directory listing)."""
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in AUDIO_SUFFIXES:
            index.setdefault(path.stem, path)
    return index


def audio_index(root: Path, split: str, audio_dir: Path | None = None,
                index_folder: Callable[[Path], dict[str, Path]] = _index_audio_folder) -> dict[str, Path]:
    """File stem -> path over the folders a copy of AudioCaps keeps a split's audio in.

    ``audio_dir`` when given; else ``root/audio`` and ``root`` itself, then ``root/<split>``
    (audiocaps-download's layout), the first folder winning a stem found twice. ``index_folder``
    lists one folder (a cached one lists the folders splits share once).
    """
    if audio_dir is not None:
        return index_folder(audio_dir)
    index: dict[str, Path] = {}
    for folder in (root / "audio", root, root / split):
        if folder.is_dir():
            for stem, path in index_folder(folder).items():
                index.setdefault(stem, path)
    return index


def find_audio(index: dict[str, Path], youtube_id: str, start_time: float, audiocap_ids: Sequence[str] = ()) -> Path | None:
    """The file of one clip: download scripts name it by id, AudioSet's "Y" + id, id + start, or
    (audiocaps-download) by the audiocap_id of any of its caption rows."""
    start = int(start_time)
    stems = (youtube_id, f"Y{youtube_id}", f"{youtube_id}_{start}", f"Y{youtube_id}_{start}", *audiocap_ids)
    return next((index[stem] for stem in stems if stem in index), None)


def read_audiocaps_csv(csv_path: Path) -> pd.DataFrame:
    """An AudioCaps caption table, ids as text.

    Raises:
        LusebenchError: the file does not parse or lacks an AudioCaps column.
    """
    try:
        table = pd.read_csv(csv_path, dtype={"youtube_id": str, "audiocap_id": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, ValueError) as error:
        raise LusebenchError(f"cannot parse {csv_path}: {str(error).splitlines()[0]}") from None
    missing_columns = [c for c in AUDIOCAPS_COLUMNS if c not in table.columns]
    if missing_columns:
        raise LusebenchError(f"{csv_path} lacks AudioCaps column(s): {', '.join(missing_columns)}")
    return table


def load_audiocaps(root: Path | str, audio_dir: Path | str | None = None, skip_missing: bool = False) -> Corpus:
    """AudioCaps as users hold it: ``train.csv``, ``val.csv``, ``test.csv`` + audio files by youtube_id.

    Args:
        root: folder with the three CSVs (columns ``audiocap_id, youtube_id, start_time, caption``).
        audio_dir: folder of the audio files; default: ``root/audio``, ``root`` and ``root/<split>``.
            Files are matched by stem: ``<youtube_id>``, ``Y<youtube_id>``, ``<youtube_id>_<start>``
            or an ``<audiocap_id>`` of the clip, with any of .flac/.wav/.ogg/.mp3.
        skip_missing: leave out clips without an audio file, logging how many (a YouTube copy always
            lacks some), instead of refusing the corpus.

    Raises:
        LusebenchError: when a CSV is missing or malformed, or (unless ``skip_missing``) when clips
            have no audio file.
    """
    root = Path(root)
    if not root.is_dir():
        raise LusebenchError(f"AudioCaps folder not found: {root}")
    if audio_dir is not None and not Path(audio_dir).is_dir():
        raise LusebenchError(f"AudioCaps audio folder not found: {audio_dir}")
    clips: dict[str, list[Clip]] = {}
    # The splits share root/audio and root (or audio_dir): each folder is listed once.
    index_folder = functools.cache(_index_audio_folder)
    for split in ("train", "val", "test"):
        csv_path = root / f"{split}.csv"
        if not csv_path.is_file():
            continue
        index = audio_index(root, split, None if audio_dir is None else Path(audio_dir), index_folder)
        clips[split] = _clips_from_rows(read_audiocaps_csv(csv_path), index, csv_path, skip_missing)
    if not clips:
        raise LusebenchError(f"no train.csv, val.csv or test.csv in {root}")
    return Corpus(name=f"audiocaps:{root}", clips=clips, _decode=_decode_file)


def _clips_from_rows(table: pd.DataFrame, index: dict[str, Path], csv_path: Path, skip_missing: bool) -> list[Clip]:
    captions: dict[str, list[str]] = {}
    starts: dict[str, float] = {}
    caption_ids: dict[str, list[str]] = {}
    categories: dict[str, str] = {}
    if "category" in table.columns:
        categories = {str(y): str(c) for y, c in zip(table["youtube_id"], table["category"]) if isinstance(c, str)}
    for audiocap_id, youtube_id, start_time, caption in table[list(AUDIOCAPS_COLUMNS)].itertuples(index=False):
        captions.setdefault(youtube_id, [])
        caption_ids.setdefault(youtube_id, []).append(str(audiocap_id))
        if isinstance(caption, str) and caption.strip() and caption not in captions[youtube_id]:
            captions[youtube_id].append(caption.strip())
        if youtube_id not in starts:
            try:
                start = float(start_time)
            except (TypeError, ValueError):
                start = math.nan
            if not math.isfinite(start):
                raise LusebenchError(f"{csv_path}: start_time of {youtube_id!r} is not a number: {start_time!r}")
            starts[youtube_id] = start
    clips: list[Clip] = []
    missing: list[str] = []
    for youtube_id, texts in captions.items():
        path = find_audio(index, youtube_id, starts[youtube_id], caption_ids[youtube_id])
        if path is None:
            missing.append(youtube_id)
            continue
        if texts:
            clips.append(Clip(clip_id=youtube_id, captions=tuple(texts), path=path, category=categories.get(youtube_id, "")))
    if missing and not skip_missing:
        raise LusebenchError(
            f"{len(missing)} clip(s) of {csv_path.name} have no audio file, e.g. {missing[0]!r}; "
            "remove their rows from the CSV or add the files"
        )
    if missing:
        log.warning("%d of %d clips of %s have no audio file; using the other %d", len(missing), len(captions),
                    csv_path, len(clips))
    return clips


def load_hf(
    name_or_path: str,
    audio_column: str = "audio",
    caption_column: str = "caption",
    id_column: str | None = None,
) -> Corpus:
    """A Hugging Face dataset of captioned audio: a ``save_to_disk`` folder, a local data folder, or a hub id.

    Hub ids resolve through the local Hugging Face cache only when offline; a dataset that cannot be
    reached gives one line naming it.
    """
    import datasets  # deferred: importing datasets costs about a second

    path = Path(name_or_path)
    try:
        if (path / "dataset_dict.json").is_file() or (path / "dataset_info.json").is_file():
            loaded = datasets.load_from_disk(str(path))
        else:
            loaded = datasets.load_dataset(name_or_path)
    except Exception as error:  # datasets raises many unrelated types for "not reachable"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LusebenchError(f"cannot load Hugging Face dataset {name_or_path!r}: {first_line}") from None
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"test": loaded})
    clips: dict[str, list[Clip]] = {}
    tables: dict[str, datasets.Dataset] = {}
    for split, aliases in _HF_SPLIT_NAMES.items():
        hf_split = next((alias for alias in aliases if alias in loaded), None)
        if hf_split is None:
            continue
        table = loaded[hf_split]
        for column in (audio_column, caption_column):
            if column not in table.column_names:
                raise LusebenchError(f"Hugging Face dataset {name_or_path!r} has no column {column!r}")
        tables[split] = table
        captions = table[caption_column]
        ids = table[id_column] if id_column else [f"{split}-{i:07d}" for i in range(len(table))]
        clips[split] = [
            Clip(clip_id=str(clip_id), captions=(str(caption),), hf_index=i)
            for i, (clip_id, caption) in enumerate(zip(ids, captions))
        ]
    if not clips:
        raise LusebenchError(f"Hugging Face dataset {name_or_path!r} has no train/val/test split")
    split_of = {clip: split for split, split_clips in clips.items() for clip in split_clips}

    def decode(clip: Clip) -> tuple[np.ndarray, int]:
        item = tables[split_of[clip]][clip.hf_index][audio_column]
        # A dataset is user data: an audio column of paths or text must be one line, not a traceback.
        try:
            audio = np.asarray(item["array"], dtype=np.float32)
            rate = int(item["sampling_rate"])
        except (TypeError, KeyError, IndexError, ValueError):
            raise LusebenchError(
                f"Hugging Face dataset {name_or_path!r}: column {audio_column!r} of clip {clip.clip_id} is not decoded "
                f"audio (a dict with 'array' and 'sampling_rate'), got {type(item).__name__}"
            ) from None
        if audio.ndim not in (1, 2) or audio.size == 0 or rate < 1:
            raise LusebenchError(
                f"Hugging Face dataset {name_or_path!r}: clip {clip.clip_id} has audio of shape {audio.shape} at {rate} Hz"
            )
        return (audio[None] if audio.ndim == 1 else audio), rate

    return Corpus(name=f"hf:{name_or_path}", clips=clips, _decode=decode)


_KINDS = (*EMBEDDED, "audiocaps:", "hf:")


def split_spec(spec: str) -> list[str]:
    """``a+b+c`` -> its parts; a ``+`` inside a path (one not followed by a kind) stays in it."""
    parts: list[str] = []
    for piece in spec.split("+"):
        if parts and not piece.startswith(_KINDS):
            parts[-1] += "+" + piece
        else:
            parts.append(piece)
    return parts


def union(corpora: Sequence[Corpus]) -> Corpus:
    """One corpus whose splits are the corpora's splits, concatenated in order.

    Raises:
        LusebenchError: two corpora hold a clip of the same id (the recipes name clips by id).
    """
    owner: dict[str, Corpus] = {}
    clips: dict[str, list[Clip]] = {}
    for corpus in corpora:
        for split, split_clips in corpus.clips.items():
            for clip in split_clips:
                if clip.clip_id in owner:
                    raise LusebenchError(f"clip id {clip.clip_id!r} is in both {owner[clip.clip_id].name} and {corpus.name}")
                owner[clip.clip_id] = corpus
            clips.setdefault(split, []).extend(split_clips)
    return Corpus(
        name="+".join(corpus.name for corpus in corpora),
        clips=clips,
        _decode=lambda clip: owner[clip.clip_id]._decode(clip),
    )


def open_corpus(spec: str, skip_missing: bool = False) -> Corpus:
    """Open a corpus from its spec: ``minicaps``, ``debcaps``, ``audiocaps:ROOT``, ``hf:NAME_OR_PATH``, or
    several joined by ``+`` (e.g. ``minicaps+audiocaps:gmcaps/``: their splits concatenated).
    ``skip_missing``: an AudioCaps copy's clips without audio are left out (logged), not refused."""
    parts = split_spec(spec)
    if len(parts) > 1:
        return union([open_corpus(part, skip_missing) for part in parts])
    if spec in EMBEDDED:
        return load_embedded(spec)
    kind, _, location = spec.partition(":")
    if kind == "audiocaps" and location:
        return load_audiocaps(location, skip_missing=skip_missing)
    if kind == "hf" and location:
        return load_hf(location)
    raise LusebenchError(f"unknown corpus {spec!r}: use minicaps, debcaps, audiocaps:ROOT, hf:NAME_OR_PATH or several joined by +")


def distinct_captions(clips: Sequence[Clip]) -> int:
    """Number of distinct captions among clips (a mixture needs one per source)."""
    return len({caption for clip in clips for caption in clip.captions})
