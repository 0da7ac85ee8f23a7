"""Synthetic captioned corpora in the AudioCaps layout, for tests (users' included)."""

from __future__ import annotations

from pathlib import Path

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
