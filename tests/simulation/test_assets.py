"""The embedded assets (MIT KEMAR SOFA, minicaps corpus) and the script that builds them.

The asset checks fail, never skip, when a file is missing: a package without its embedded
defaults cannot run any command offline. Rebuild with
``python scripts/build_assets.py --out lusebench/assets``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lusebench.simulation import gm

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "lusebench" / "assets"
MINICAPS = ASSETS / "minicaps"
SOFA = ASSETS / "hrtf" / "MIT_KEMAR_normal_pinna.sofa"
CAPTIONS_TABLE = REPO / "scripts" / "minicaps_captions.csv"
SPLITS = ("train", "val", "test")
HEADER = ["audiocap_id", "youtube_id", "start_time", "caption",
          "source", "licence", "credit", "duration_s", "original_name"]
SAMPLE_RATE = 16000


def _load_build_script():
    spec = importlib.util.spec_from_file_location("build_assets", REPO / "scripts" / "build_assets.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the module executes.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build_assets = _load_build_script()


def _read_split(split: str) -> tuple[list[str], list[dict[str, str]]]:
    path = MINICAPS / f"{split}.csv"
    if not path.is_file():
        pytest.fail(f"missing {path}: run scripts/build_assets.py")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict[str, str]]]:
    return {split: _read_split(split)[1] for split in SPLITS}


# --------------------------------------------------------------------------- minicaps


@pytest.mark.parametrize("split", SPLITS)
def test_csv_has_audiocaps_header_then_extras(split):
    header, rows = _read_split(split)
    assert header == HEADER
    assert all(row["start_time"] == "0" for row in rows)


def test_ids_are_unique_ints_across_splits(splits):
    ids = [int(row["audiocap_id"]) for rows in splits.values() for row in rows]
    assert len(ids) == len(set(ids))
    stems = [row["youtube_id"] for rows in splits.values() for row in rows]
    assert len(stems) == len(set(stems))
    assert all(stem.split("-")[0] in ("opensfx", "scratch", "gm") for stem in stems)


def test_every_clip_is_mono_16k_and_matches_its_duration(splits):
    for split, rows in splits.items():
        for row in rows:
            path = MINICAPS / "audio" / f"{row['youtube_id']}.flac"
            assert path.is_file(), f"{split}: {path} missing"
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16"), path
            # duration_s is written with 4 decimals: within one sample of the file.
            assert abs(info.frames / SAMPLE_RATE - float(row["duration_s"])) <= 1 / SAMPLE_RATE, path
            assert 0.5 <= info.frames / SAMPLE_RATE <= 10.0, path


def test_clips_are_peak_normalised_to_minus_1_dbfs(splits):
    row = splits["test"][0]
    audio, _ = sf.read(MINICAPS / "audio" / f"{row['youtube_id']}.flac")
    assert 20 * np.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=0.01)


def test_no_clip_caption_or_group_is_shared_between_splits(splits):
    with CAPTIONS_TABLE.open(newline="", encoding="utf-8") as handle:
        table = {(r["source"], r["original_name"]): r for r in csv.DictReader(handle)}
    seen: dict[str, dict[str, str]] = {"clip": {}, "caption": {}, "group": {}}
    for split, rows in splits.items():
        for row in rows:
            entry = table[(row["source"], row["original_name"])]
            assert row["caption"] == entry["caption"], "CSV out of date with the captions table"
            group = f"{row['source']}/{entry['group'] or row['original_name']}"
            for kind, key in (("clip", row["youtube_id"]), ("caption", row["caption"]), ("group", group)):
                assert seen[kind].setdefault(key, split) == split, f"{kind} {key!r} in two splits"


def test_each_split_can_form_three_source_mixtures(splits):
    for split, rows in splits.items():
        assert len({row["caption"] for row in rows}) >= 20, split
        assert {row["source"] for row in rows} == {"opensfx", "scratch", "gm"}, split


def test_sha256sums_match_the_audio_files():
    sums_path = MINICAPS / "SHA256SUMS"
    if not sums_path.is_file():
        pytest.fail(f"missing {sums_path}: run scripts/build_assets.py")
    listed = {}
    for line in sums_path.read_text().splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    on_disk = {f"audio/{p.name}" for p in (MINICAPS / "audio").glob("*.flac")}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((MINICAPS / name).read_bytes()).hexdigest() == digest, name


def test_no_recording_is_in_the_corpus_twice():
    # opensfx-052 and opensfx-057 were one recording under two names and two captions.
    import soundfile as sf

    seen: dict[str, str] = {}
    for path in sorted((MINICAPS / "audio").glob("*.flac")):
        audio, _ = sf.read(path, dtype="int16")
        digest = hashlib.sha256(audio.tobytes()).hexdigest()
        assert digest not in seen, f"{path.name} holds the same samples as {seen.get(digest)}"
        seen[digest] = path.name


def test_licences_and_readme_are_present(splits):
    licences = (MINICAPS / "LICENSES.md").read_text(encoding="utf-8")
    for rows in splits.values():
        for row in rows:
            assert f"| {row['youtube_id']}.flac |" in licences
    assert "CC BY-SA 3.0" in (MINICAPS / "README.md").read_text(encoding="utf-8")
    assert "Gardner" in (ASSETS / "hrtf" / "LICENSE.md").read_text(encoding="utf-8")


def test_minicaps_loads_with_the_audiocaps_loader(splits):
    from lusebench.simulation.corpus import load_audiocaps

    corpus = load_audiocaps(MINICAPS)
    assert {split: len(clips) for split, clips in corpus.clips.items()} == {
        split: len(rows) for split, rows in splits.items()
    }


# --------------------------------------------------------------------------- HRTF


def test_sofa_loads_with_710_directions_and_512_taps():
    sofar = pytest.importorskip("sofar")
    if not SOFA.is_file():
        pytest.fail(f"missing {SOFA}: run scripts/build_assets.py")
    sofa = sofar.read_sofa(str(SOFA), verify=False)
    assert sofa.Data_IR.shape == (710, 2, 512)
    assert float(np.squeeze(sofa.Data_SamplingRate)) == 44100.0


# --------------------------------------------------------------------------- build script


def test_condition_trims_resamples_and_normalises():
    rate = 44100
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)  # 1 s
    audio = np.concatenate([np.zeros(rate), tone, np.zeros(rate // 2)])
    out = gm.condition(audio, rate)
    # 1 s of tone plus at most a 10 ms margin and one 10 ms frame of rounding on each side.
    assert 1.0 <= len(out) / SAMPLE_RATE <= 1.04
    assert np.abs(out).max() == pytest.approx(10 ** (-1 / 20))


def test_condition_caps_long_clips_at_ten_seconds_with_a_fade():
    rate = 22050
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 12 * rate)
    out = gm.condition(noise, rate)
    assert len(out) == 10 * SAMPLE_RATE
    assert abs(out[-1]) < 1e-12


def test_condition_of_silence_is_empty():
    assert len(gm.condition(np.zeros(4410), 44100)) == 0


def test_assign_splits_keeps_groups_whole_and_is_deterministic():
    groups = {f"g{i}": [f"g{i}-{k}" for k in range(1 + i % 3)] for i in range(60)}
    first = build_assets.assign_splits(groups)
    assert first == build_assets.assign_splits(dict(reversed(list(groups.items()))))
    for group, members in groups.items():
        assert len({first[m] for m in members}) == 1, group
    counts = {split: list(first.values()).count(split) for split in SPLITS}
    total = sum(counts.values())
    assert counts["train"] / total == pytest.approx(0.70, abs=0.05)
    assert counts["val"] / total == pytest.approx(0.15, abs=0.05)


def _wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_read_opensfx_parses_a_catalogue(tmp_path):
    entries = [
        (b'"Cow". Original "moo.wav" by "someone". Edited by "Wuzzy". License: Creative Commons Zero 1.0.\0',
         _wav_bytes(np.full(441, 0.25), 44100)),
        (b'"Unused/Nothing". Trivial empty sound file. License: Creative Commons Zero 1.0.\0',
         _wav_bytes(np.zeros(0), 44100)),
        (b'"Horse". By Someone. License: Creative Commons Attribution 3.0 Unported.\0',
         _wav_bytes(np.full(100, -0.5), 22050) + b"\0" * 22),  # trailing bytes past the RIFF
    ]
    table, body = b"", b""
    offset = 8 * len(entries)
    for name, wav in entries:
        blob = bytes([len(name)]) + name + wav
        # The top bit of the offset is a flag in real catalogues; the reader must mask it.
        table += struct.pack("<II", (offset + len(body)) | 0x80000000, len(wav))
        body += blob
    cat = tmp_path / "test.cat"
    cat.write_bytes(table + body)
    clips = build_assets.read_opensfx(cat)
    assert [(c.index, c.original_name, c.licence, c.sample_rate, len(c.audio)) for c in clips] == [
        (0, "Cow", "CC0-1.0", 44100, 441),
        (2, "Horse", "CC-BY-3.0", 22050, 100),
    ]
    assert clips[0].credit == 'OpenSFX 1.0.3. Original "moo.wav" by "someone". Edited by "Wuzzy".'
    assert clips[1].audio[0] == pytest.approx(-0.5, abs=1e-4)


def test_gm_notes_are_seeded_and_unknown_patterns_are_rejected():
    clip = gm.GM_CLIPS[0]
    first = gm.gm_notes(clip, np.random.default_rng([1, 2]))
    assert first == gm.gm_notes(clip, np.random.default_rng([1, 2]))
    assert first != gm.gm_notes(clip, np.random.default_rng([1, 3]))
    assert all(0 <= key <= 127 and 1 <= vel <= 127 for _, _, key, vel, _ in first)
    with pytest.raises(ValueError, match="unknown GM pattern"):
        gm.gm_notes(gm.GmClip("x", 0, "polka", 100), np.random.default_rng(0))
