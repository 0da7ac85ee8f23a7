"""Synthetic captioned corpora in the AudioCaps layout, for tests (users' included)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import soundfile as sf

_SOUNDS = ("hum", "whistle", "buzz", "chirp", "drone", "beep", "rumble", "ring", "tick", "hiss", "toll", "purr")


def make_corpus(
    root: Path | str,
    clips_per_split: int = 6,
    sample_rate: int = 16000,
    seconds: float = 1.5,
    seed: int = 0,
) -> Path:
    """Write ``train.csv``/``val.csv``/``test.csv`` and ``audio/<id>.wav`` under ``root``.

    Each clip is a decaying harmonic tone with a little noise, its own pitch and a caption that
    names it ("a 440 Hz hum sounds"), distinct across all splits. Returns ``root``.
    """
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    number = 0
    for split in ("train", "val", "test"):
        rows = []
        for _ in range(clips_per_split):
            pitch = 110 + 37 * number
            sound = _SOUNDS[number % len(_SOUNDS)]
            audio = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3)) * np.exp(-t / seconds)
            audio = 0.3 * audio + 0.01 * rng.standard_normal(len(t))
            clip_id = f"syn{number:04d}"
            sf.write(root / "audio" / f"{clip_id}.wav", audio.astype(np.float32), sample_rate, subtype="FLOAT")
            rows.append((number, clip_id, 0, f"a {pitch} Hz {sound} sounds"))
            number += 1
        pd.DataFrame(rows, columns=["audiocap_id", "youtube_id", "start_time", "caption"]).to_csv(
            root / f"{split}.csv", index=False
        )
    return root


ClipDefect = Literal["stereo", "rate", "short", "padded", "corrupt"]


def make_audiocaps_copy(
    root: Path | str,
    captions: Path | str,
    youtube_ids: Sequence[str],
    *,
    split: str = "test",
    seconds: float = 1.0,
    sample_rate: int = 16000,
    defects: Mapping[str, ClipDefect] | None = None,
    layout: Literal["flat", "audiocaps-download"] = "flat",
) -> Path:
    """A synthetic copy of AudioCaps as a user holds it: the caption table of ``split`` and generated
    audio for the clips ``youtube_ids`` only (the others are "missing").

    Args:
        root: the copy's folder.
        captions: a folder holding the real ``<split>.csv`` (copied whole, as a user's copy holds it).
        youtube_ids: the clips that get an audio file.
        seconds, sample_rate: of each generated clip (a noisy tone whose pitch follows its id).
        defects: clip id -> what is wrong with its file: ``stereo`` (two channels), ``rate``
            (22,050 Hz), ``short`` (half ``seconds``), ``padded`` (95 % of ``seconds``),
            ``corrupt`` (bytes that do not decode).
        layout: ``flat``: ``audio/<youtube_id>.wav``; ``audiocaps-download``: ``<split>/<audiocap_id>.wav``
            (that tool's layout, one file per caption row).

    Returns:
        ``root``.
    """
    root, defects = Path(root), dict(defects or {})
    table = pd.read_csv(Path(captions) / f"{split}.csv", dtype={"youtube_id": str, "audiocap_id": str})
    root.mkdir(parents=True, exist_ok=True)
    table.to_csv(root / f"{split}.csv", index=False)
    for youtube_id in youtube_ids:
        defect = defects.get(youtube_id)
        rate = 22050 if defect == "rate" else sample_rate
        length = seconds * {"short": 0.5, "padded": 0.95}.get(defect or "", 1.0)
        digest = int.from_bytes(hashlib.sha256(youtube_id.encode()).digest()[:4], "little")
        rng = np.random.default_rng(digest)
        t = np.arange(int(round(length * rate))) / rate
        audio = 0.3 * np.sin(2 * np.pi * (150 + digest % 900) * t) + 0.05 * rng.standard_normal(len(t))
        audio = np.stack([audio, 0.5 * audio], axis=1) if defect == "stereo" else audio
        stems = [youtube_id] if layout == "flat" else table.loc[table["youtube_id"] == youtube_id, "audiocap_id"].tolist()
        folder = root / ("audio" if layout == "flat" else split)
        folder.mkdir(exist_ok=True)
        for stem in stems:
            if defect == "corrupt":
                (folder / f"{stem}.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
            else:
                sf.write(folder / f"{stem}.wav", audio.astype(np.float32), rate, subtype="FLOAT")
    return root
