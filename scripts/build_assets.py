#!/usr/bin/env python
"""Rebuild lusebench's embedded assets: the MIT KEMAR HRTF and the ``minicaps`` corpus.

Sources, all obtainable offline on a Debian bookworm machine:

- ``libmysofa1`` (Debian): ``MIT_KEMAR_normal_pinna.sofa``, copied byte for byte.
- ``openttd-opensfx`` (Debian): the clips inside ``opensfx.cat``.
- ``scratch`` (Debian): ``/usr/share/scratch/Media/Sounds/**``.
- The ``TimGM6mb.sf2`` SoundFont inside the installed ``pretty_midi`` wheel, rendered with
  ``tinysoundfont`` from seeded note sequences defined below.

Captions are human-written, one per clip, in ``scripts/minicaps_captions.csv``
(``source, original_name, group, caption``). ``group`` ties clips cut from the same
recording (or near-duplicates) together so that they land in the same split.

The output is byte-identical from run to run with the same package versions, which are
pinned below (the .deb versions and the SoundFont's sha256); ``SHA256SUMS`` lets anyone
check a copy.

Usage::

    python scripts/build_assets.py --out lusebench/assets [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from lusebench.simulation.gm import (
    GM_CLIPS, GM_CREDIT, GM_LICENCE, GM_RENDER_RATE, GM_SEED, MIN_DURATION_S, SAMPLE_RATE, SOUNDFONT_SHA256,
    condition, flac_bytes, gm_notes, load_soundfont, render_gm,
)
from lusebench.simulation.corpus import AUDIOCAPS_COLUMNS, PROVENANCE_COLUMNS

logger = logging.getLogger(__name__)

SPLIT_FRACTIONS = {"train": 0.70, "val": 0.15, "test": 0.15}

# Pinned so that a rebuild reads the very bytes the committed assets came from.
DEBS = {
    "libmysofa1": "1.3.1~dfsg0-1",
    "openttd-opensfx": "1.0.3-2",
    "scratch": "1.4.0.6~dfsg1-6.1",
}
SOFA_MEMBER = "usr/share/libmysofa/MIT_KEMAR_normal_pinna.sofa"
OPENSFX_CAT = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
SCRATCH_SOUNDS = "usr/share/scratch/Media/Sounds"

CAPTIONS_CSV = Path(__file__).with_name("minicaps_captions.csv")


@dataclass(frozen=True)
class SourceClip:
    """One clip as decoded from its source, before conditioning."""

    source: str  # opensfx | scratch | gm
    index: int  # position in the source (cat entry, sorted file list, GM table)
    original_name: str
    audio: np.ndarray  # (n_samples,) float64, mono
    sample_rate: int
    licence: str
    credit: str


# --------------------------------------------------------------------------- fetching


def fetch_debs(work: Path) -> dict[str, Path]:
    """Download the pinned .debs with ``apt-get download`` and extract each into ``work``.

    Returns:
        Package name -> folder holding its extracted file tree.
    """
    debs_dir = work / "debs"
    debs_dir.mkdir(parents=True, exist_ok=True)
    specs = [f"{name}={version}" for name, version in DEBS.items()]
    logger.info("apt-get download %s", " ".join(specs))
    result = subprocess.run(
        ["apt-get", "download", *specs], cwd=debs_dir, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"apt-get download failed (run `apt-get update` first?):\n{result.stderr.strip()}"
        )
    trees: dict[str, Path] = {}
    for name, version in DEBS.items():
        matches = sorted(debs_dir.glob(f"{name}_*.deb"))
        if len(matches) != 1:
            raise SystemExit(f"expected one {name} .deb in {debs_dir}, found {len(matches)}")
        deb = matches[0]
        found = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if found != version:
            raise SystemExit(f"{deb.name}: version {found}, expected {version}")
        tree = work / "x" / name
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir(parents=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
        logger.info("%s %s sha256 %s", name, version, sha256_file(deb))
        trees[name] = tree
    return trees


# --------------------------------------------------------------------------- decoding


def _opensfx_licence(description: str) -> str:
    """SPDX id of a clip's licence from the free text of its catalogue name."""
    match = re.search(r"License: (.*?)\.(?:\s|$)", description)
    if match is None:
        raise SystemExit(f"no licence in OpenSFX entry {description!r}")
    text = match.group(1)
    if "Zero 1.0" in text:
        return "CC0-1.0"
    if "Attribution-ShareAlike 3.0" in text:
        return "CC-BY-SA-3.0"
    if "Attribution 3.0" in text:
        return "CC-BY-3.0"
    raise SystemExit(f"unknown licence {text!r} in OpenSFX entry {description!r}")


def read_opensfx(cat_path: Path) -> list[SourceClip]:
    """Decode every sound of an OpenTTD sound catalogue (``opensfx.cat``).

    The catalogue starts with a table of ``(offset, size)`` little-endian uint32 pairs; the
    top bit of ``offset`` is a flag and the first offset also gives the table length. Each
    entry is a 1-byte name length, a NUL-terminated name (the clip's title, credits and
    licence in free text), then a RIFF WAV whose own header gives its length.

    Returns:
        One clip per non-empty entry, mono float64 at the file's rate.
    """
    data = cat_path.read_bytes()
    n_entries = (struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF) // 8
    clips = []
    for index in range(n_entries):
        offset = struct.unpack_from("<I", data, 8 * index)[0] & 0x7FFFFFFF
        name_len = data[offset]
        description = data[offset + 1 : offset + 1 + name_len].rstrip(b"\0").decode("utf-8")
        riff = offset + 1 + name_len
        if data[riff : riff + 4] != b"RIFF":
            raise SystemExit(f"{cat_path}: entry {index} has no RIFF header")
        riff_size = struct.unpack_from("<I", data, riff + 4)[0] + 8
        audio, rate = sf.read(io.BytesIO(data[riff : riff + riff_size]), dtype="float64", always_2d=True)
        if audio.shape[0] == 0:
            logger.info("opensfx %d %r is empty: skipped", index, description)
            continue
        title_match = re.match(r'"(.*?)"\.\s*(.*)$', description)
        if title_match is None:
            raise SystemExit(f"cannot parse OpenSFX entry name {description!r}")
        title, credit = title_match.groups()
        credit = re.sub(r"\s*License:.*$", "", credit).strip()
        clips.append(
            SourceClip(
                source="opensfx",
                index=index,
                original_name=title,
                audio=audio.mean(axis=1),
                sample_rate=rate,
                licence=_opensfx_licence(description),
                credit=f"OpenSFX 1.0.3. {credit}",
            )
        )
    return clips


def read_scratch(sounds_dir: Path) -> list[SourceClip]:
    """Decode the Scratch 1.4 media library sounds (wav and mp3; libsndfile >= 1.1 reads mp3)."""
    paths = sorted(p for p in sounds_dir.rglob("*") if p.suffix.lower() in (".wav", ".mp3"))
    clips = []
    for index, path in enumerate(paths):
        audio, rate = sf.read(path, dtype="float64", always_2d=True)
        clips.append(
            SourceClip(
                source="scratch",
                index=index,
                original_name=path.relative_to(sounds_dir).as_posix(),
                audio=audio.mean(axis=1),
                sample_rate=rate,
                licence="CC-BY-SA-3.0",
                credit="Scratch 1.4 media library, (c) 2011 Massachusetts Institute of Technology",
            )
        )
    return clips


# --------------------------------------------------------------------------- General MIDI


def read_gm() -> list[SourceClip]:
    """Render every clip of ``GM_CLIPS`` from the pretty_midi SoundFont."""
    sf2 = load_soundfont()
    logger.info("pretty_midi %s TimGM6mb.sf2 sha256 %s", metadata.version("pretty_midi"), SOUNDFONT_SHA256)
    clips = []
    for index, clip in enumerate(tqdm(GM_CLIPS, desc="render GM")):
        rng = np.random.default_rng([GM_SEED, index])
        clips.append(
            SourceClip(
                source="gm",
                index=index,
                original_name=clip.name,
                audio=render_gm(clip, gm_notes(clip, rng), sf2),
                sample_rate=GM_RENDER_RATE,
                licence=GM_LICENCE,
                credit=GM_CREDIT,
            )
        )
    return clips


# --------------------------------------------------------------------------- splitting


def assign_splits(groups: dict[str, list[str]]) -> dict[str, str]:
    """Assign whole groups of clips to train/val/test, about 70/15/15 of the clips.

    Groups are visited in the order of the sha256 of their name, which is fixed but
    unrelated to content; each goes to the split furthest below its target share.

    Args:
        groups: group name -> clip ids of one source.

    Returns:
        clip id -> split.
    """
    counts = dict.fromkeys(SPLIT_FRACTIONS, 0)
    splits: dict[str, str] = {}
    order = sorted(groups, key=lambda g: hashlib.sha256(f"minicaps/{g}".encode()).hexdigest())
    for group in order:
        members = groups[group]
        total = sum(counts.values()) + len(members)
        split = max(SPLIT_FRACTIONS, key=lambda s: SPLIT_FRACTIONS[s] * total - counts[s])
        counts[split] += len(members)
        for clip_id in members:
            splits[clip_id] = split
    return splits


# --------------------------------------------------------------------------- writing


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_captions(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(source, original_name) -> (group, caption) from the hand-written table."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    table: dict[tuple[str, str], tuple[str, str]] = {}
    for row in rows:
        key = (row["source"], row["original_name"])
        if key in table:
            raise SystemExit(f"{path}: {key} appears twice")
        caption = row["caption"].strip()
        if not caption:
            raise SystemExit(f"{path}: {key} has no caption")
        table[key] = (row["group"].strip() or row["original_name"], caption)
    duplicates = [c for c, n in Counter(c for _, c in table.values()).items() if n > 1]
    if duplicates:
        raise SystemExit(f"{path}: captions used more than once: {duplicates}")
    return table


@dataclass(frozen=True)
class Row:
    audiocap_id: int
    youtube_id: str
    caption: str
    source: str
    licence: str
    credit: str
    num_samples: int
    original_name: str
    group: str


def write_csv(path: Path, rows: list[Row]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AUDIOCAPS_COLUMNS + PROVENANCE_COLUMNS)
    for row in rows:
        writer.writerow(
            [row.audiocap_id, row.youtube_id, 0, row.caption, row.source, row.licence,
             row.credit, f"{row.num_samples / SAMPLE_RATE:.4f}", row.original_name]
        )
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


SOURCE_NOTES = {
    "opensfx": (
        "OpenSFX 1.0.3, the free base sound set of OpenTTD (Debian package `openttd-opensfx` "
        f"{DEBS['openttd-opensfx']}, file `opensfx.cat`). The set as a whole is licensed "
        "CC BY-SA 3.0; each clip's own licence (CC0 1.0, CC BY 3.0 or CC BY-SA 3.0) and credit "
        "come from its catalogue entry and are listed below. Licence texts: "
        "`/usr/share/games/openttd/baseset/opensfx/license.txt` in the package, "
        "https://creativecommons.org/licenses/by-sa/3.0/, https://creativecommons.org/licenses/by/3.0/, "
        "https://creativecommons.org/publicdomain/zero/1.0/. Upstream: https://github.com/OpenTTD/OpenSFX."
    ),
    "scratch": (
        "The sound library of Scratch 1.4 (Debian package `scratch` "
        f"{DEBS['scratch']}, `/usr/share/scratch/Media/Sounds`), Copyright (c) 2011 Massachusetts "
        "Institute of Technology, licensed CC BY-SA 3.0 (`/usr/share/doc/scratch/copyright`: "
        "`Files: Help/* Media/* Projects`, `License: CC-BY-SA-3.0`; "
        "https://creativecommons.org/licenses/by-sa/3.0/)."
    ),
    "gm": (
        "Rendered for lusebench with `tinysoundfont` from seeded note sequences defined in "
        "`scripts/build_assets.py`, using the TimGM6mb General-MIDI SoundFont that the "
        f"`pretty_midi` wheel ships (`pretty_midi/TimGM6mb.sf2`, sha256 `{SOUNDFONT_SHA256}`). "
        "TimGM6mb is Copyright 2004 Tim Brechbill, 2010 David Bolton, licensed GPL-2 according "
        "to Debian's `timgm6mb-soundfont` 1.3-5 copyright file (the pretty_midi wheel itself states "
        "no licence for the file; its copy differs slightly in bytes from Debian's). The rendered "
        "clips are therefore distributed under GPL-2.0-only."
    ),
}
CHANGES_NOTE = (
    "Changes made to every clip (as CC BY / CC BY-SA require us to say): mixed to mono, "
    "resampled to 16 kHz, leading and trailing silence trimmed, cut to at most 10 s "
    "(with a 20 ms fade-out where cut), peak-normalised to -1 dBFS, stored as 16-bit FLAC."
)


def write_docs(out: Path, rows_by_split: dict[str, list[Row]], excluded: list[tuple[str, str, str]]) -> None:
    """Write minicaps/README.md and minicaps/LICENSES.md."""
    all_rows = [r for rows in rows_by_split.values() for r in rows]
    sources = ("opensfx", "scratch", "gm")
    total_s = sum(r.num_samples for r in all_rows) / SAMPLE_RATE
    lines = [
        "# minicaps: the small captioned corpus embedded in lusebench",
        "",
        "A few hundred short, freely licensed sound clips with one human-written caption each, in",
        "the AudioCaps layout (`train.csv`, `val.csv`, `test.csv` with columns",
        "`audiocap_id, youtube_id, start_time, caption`, plus `source, licence, credit, duration_s,",
        "original_name`; audio in `audio/<youtube_id>.flac`), so the AudioCaps loader reads it",
        "unchanged and every lusebench command runs with no download. `youtube_id` is not a",
        "YouTube id here but the clip's file stem; `start_time` is 0.",
        "",
        "It is a smoke-test and demo corpus, not a substitute for AudioCaps: results on it are not",
        "comparable with the paper's.",
        "",
        "Audio: mono, 16 kHz, 16-bit FLAC, silence trimmed, 0.5-10 s, peak -1 dBFS.",
        "Captions: one per clip, all distinct, written by hand from the source file names and",
        "credits (`scripts/minicaps_captions.csv`), not from listening tests; treat them as",
        "approximate. Clips cut from the same recording, or near-duplicates, share a `group` there",
        "and are kept in one split; no clip and no caption is in two splits.",
        "",
        "Rebuild: `python scripts/build_assets.py --out lusebench/assets` (downloads the pinned",
        "Debian packages with `apt-get download`); `SHA256SUMS` lists every audio file.",
        "",
        "## Counts",
        "",
        "| split | " + " | ".join(sources) + " | clips | duration (s) |",
        "|---|" + "---|" * (len(sources) + 2),
    ]
    for split, rows in rows_by_split.items():
        per_source = Counter(r.source for r in rows)
        seconds = sum(r.num_samples for r in rows) / SAMPLE_RATE
        lines.append(
            f"| {split} | " + " | ".join(str(per_source[s]) for s in sources)
            + f" | {len(rows)} | {seconds:.1f} |"
        )
    per_source = Counter(r.source for r in all_rows)
    lines.append("| all | " + " | ".join(str(per_source[s]) for s in sources) + f" | {len(all_rows)} | {total_s:.1f} |")
    lines += [
        "",
        "## Sources and licences",
        "",
        *(f"- **{s}**: {SOURCE_NOTES[s]}" for s in sources),
        "",
        "Licences per clip: " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(r.licence for r in all_rows).items()))
        + ". See `LICENSES.md` for the per-clip credits.",
        "",
        "## Left out",
        "",
        "Clips shorter than 0.5 s after trimming, silent, or the same recording as a clip kept:",
        "",
        *(f"- {source} `{name}`: {why}" for source, name, why in excluded),
        "",
    ]
    atomic_write_bytes(out / "README.md", "\n".join(lines).encode("utf-8"))

    lic = [
        "# minicaps licences and credits",
        "",
        CHANGES_NOTE,
        "",
        *(f"## {s}\n\n{SOURCE_NOTES[s]}\n" for s in sources),
        "## Per clip",
        "",
        "| file | split | source | licence | original | credit |",
        "|---|---|---|---|---|---|",
    ]
    for split, rows in rows_by_split.items():
        for r in sorted(rows, key=lambda r: r.youtube_id):
            credit = r.credit.replace("|", "/")
            lic.append(f"| {r.youtube_id}.flac | {split} | {r.source} | {r.licence} | {r.original_name} | {credit} |")
    atomic_write_bytes(out / "LICENSES.md", ("\n".join(lic) + "\n").encode("utf-8"))


def write_hrtf(tree: Path, out: Path) -> None:
    """Copy the MIT KEMAR SOFA file as is and write its licence note."""
    src = tree / SOFA_MEMBER
    dst = out / "MIT_KEMAR_normal_pinna.sofa"
    atomic_write_bytes(dst, src.read_bytes())
    text = f"""# MIT KEMAR HRTF (normal pinna), SOFA

File: `MIT_KEMAR_normal_pinna.sofa`, copied unchanged from the Debian package `libmysofa1`
{DEBS['libmysofa1']} (`/{SOFA_MEMBER}`), sha256 `{sha256_file(dst)}`.
SimpleFreeFieldHRIR, 710 directions, 512 taps, 44.1 kHz.

Measurements: Bill Gardner and Keith Martin, MIT Media Lab Machine Listening Group, 1994.

Licence (Debian `libmysofa1` copyright file, `License: mit-kemar`):

> This data is Copyright 1994 by the MIT Media Laboratory. It is provided free with no
> restrictions on use, provided the authors are cited when the data is used in any research
> or commercial application.

The SOFA file's own `GLOBAL_License` attribute reads "No license provided, ask the author for
permission", a default written by the SOFA conversion, not a statement by the authors; the
terms above are the MIT Media Lab's.

Cite:

W. G. Gardner and K. D. Martin, "HRTF measurements of a KEMAR", The Journal of the Acoustical
Society of America 97(6), 3907-3908, 1995. https://doi.org/10.1121/1.412407
"""
    atomic_write_bytes(out / "LICENSE.md", text.encode("utf-8"))


def build(out: Path, work: Path) -> None:
    """Fetch the sources into ``work`` and write ``out/hrtf`` and ``out/minicaps``."""
    trees = fetch_debs(work)
    write_hrtf(trees["libmysofa1"], out / "hrtf")

    captions = load_captions(CAPTIONS_CSV)
    sources = (
        read_opensfx(trees["openttd-opensfx"] / OPENSFX_CAT)
        + read_scratch(trees["scratch"] / SCRATCH_SOUNDS)
        + read_gm()
    )
    used = set()
    missing = [(c.source, c.original_name) for c in sources if (c.source, c.original_name) not in captions]
    if missing:
        raise SystemExit(f"{CAPTIONS_CSV} has no caption for {missing}")

    corpus = out / "minicaps"
    audio_dir = corpus / "audio"
    if audio_dir.exists():
        # Stale files from an older build would otherwise survive next to the new ones.
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    rows: list[Row] = []
    excluded: list[tuple[str, str, str]] = []
    # The same recording shipped twice under two names (OpenSFX's "Wind" and "Heavy wind") would
    # be two clips with two captions for one sound: the first name keeps it.
    first_by_audio: dict[bytes, str] = {}
    for clip in tqdm(sources, desc="condition"):
        key = (clip.source, clip.original_name)
        used.add(key)
        group, caption = captions[key]
        audio = condition(clip.audio, clip.sample_rate)
        if len(audio) < round(MIN_DURATION_S * SAMPLE_RATE):
            excluded.append((clip.source, clip.original_name, f"{len(audio) / SAMPLE_RATE:.2f} s after trimming"))
            continue
        digest = hashlib.sha256(np.ascontiguousarray(audio).tobytes()).digest()
        if digest in first_by_audio:
            excluded.append((clip.source, clip.original_name, f"the same recording as `{first_by_audio[digest]}`"))
            continue
        first_by_audio[digest] = clip.original_name
        youtube_id = f"{clip.source}-{clip.index:03d}"
        atomic_write_bytes(audio_dir / f"{youtube_id}.flac", flac_bytes(audio))
        rows.append(
            Row(len(rows) + 1, youtube_id, caption, clip.source, clip.licence, clip.credit,
                len(audio), clip.original_name, f"{clip.source}/{group}")
        )
    unused = sorted(set(captions) - used)
    if unused:
        raise SystemExit(f"{CAPTIONS_CSV} has captions for clips that do not exist: {unused}")

    splits: dict[str, str] = {}
    for source in ("opensfx", "scratch", "gm"):
        groups: dict[str, list[str]] = {}
        for row in rows:
            if row.source == source:
                groups.setdefault(row.group, []).append(row.youtube_id)
        splits.update(assign_splits(groups))
    rows_by_split = {split: [r for r in rows if splits[r.youtube_id] == split] for split in SPLIT_FRACTIONS}
    for split, split_rows in rows_by_split.items():
        write_csv(corpus / f"{split}.csv", split_rows)
    sums = "".join(
        f"{sha256_file(p)}  audio/{p.name}\n" for p in sorted(audio_dir.glob("*.flac"))
    )
    atomic_write_bytes(corpus / "SHA256SUMS", sums.encode("ascii"))
    write_docs(corpus, rows_by_split, excluded)
    for split, split_rows in rows_by_split.items():
        logger.info(
            "%s: %d clips (%s), %.1f s", split, len(split_rows),
            dict(Counter(r.source for r in split_rows)),
            sum(r.num_samples for r in split_rows) / SAMPLE_RATE,
        )
    logger.info("excluded %d clips; wrote %s", len(excluded), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("lusebench/assets"), help="assets folder to write")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for downloads (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        build(args.out, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="lusebench-assets-") as work:
            build(args.out, Path(work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
