#!/usr/bin/env python
"""Build ``debcaps``: captioned sound effects from free Debian game and media packages.

Every clip comes from a package pinned in ``scripts/debcaps/spec.py`` (version and .deb sha256);
the files taken are checked against ``scripts/debcaps/sources.sha256`` (one line per source file)
before anything is written. Captions and categories are written by hand in
``scripts/debcaps/captions.csv`` (``package, key, category, caption``), one row per sound key
(the file name without numbering: takes and copies of one sound share a row).

The corpus is written in the AudioCaps layout that ``minicaps`` uses, plus ``category`` and
``group`` columns: ``group`` joins clips that share a caption or whose audio is a near-duplicate
(``lusebench/simulation/near_duplicates.py``: copies, re-encodes, trims, pitched versions), and
splits are drawn by group, stratified by category, about 70/10/20.

Bad input (no ``apt-get``, a pinned version no longer served, a checksum that differs, a caption
table with a missing, empty or duplicated row) stops the build with one line naming the package or
clip; the corpus is written in a temporary sibling folder and renamed into place only when complete.

Usage::

    python scripts/build_debcaps.py [--out lusebench/assets/debcaps] [--work DIR] [--repin]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_assets import CHANGES_NOTE, atomic_write_bytes, sha256_file  # noqa: E402
from debcaps.spec import SOURCES, Source, sound_key  # noqa: E402

from lusebench.simulation import near_duplicates  # noqa: E402
from lusebench.simulation.corpus import AUDIOCAPS_COLUMNS, DEBCAPS_COLUMNS, PROVENANCE_COLUMNS  # noqa: E402
from lusebench.simulation.gm import MIN_DURATION_S, SAMPLE_RATE, condition, flac_bytes  # noqa: E402

logger = logging.getLogger("build_debcaps")

HERE = Path(__file__).resolve().parent / "debcaps"
CAPTIONS_CSV = HERE / "captions.csv"
SOURCES_SHA256 = HERE / "sources.sha256"
SPLIT_FRACTIONS = {"train": 0.70, "val": 0.10, "test": 0.20}
CATEGORIES = (
    "alarms", "ambience", "animals", "electronic", "explosions", "fire", "footsteps", "household",
    "human", "impacts", "instruments", "machines", "magic", "tools", "vehicles", "water", "weapons", "weather",
)
# Bounds on what one archive member or source file may decode to: these are strangers' files.
MAX_SOURCE_BYTES = 64 << 20
MAX_SOURCE_SECONDS = 600.0


class BuildError(SystemExit):
    """One line that names the package or clip, then exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 2


@dataclass(frozen=True)
class SourceFile:
    package: str
    path: str  # below the source's root (inside its archive when it has one)
    data: bytes
    source: Source

    @property
    def key(self) -> str:
        return sound_key(self.path)


@dataclass(frozen=True)
class CaptionRow:
    category: str
    caption: str


# --------------------------------------------------------------------------- inputs


def load_captions(path: Path = CAPTIONS_CSV) -> dict[tuple[str, str], CaptionRow]:
    """(package, key) -> category and caption, refusing empty, duplicated or malformed rows."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["package", "key", "category", "caption"]:
            raise BuildError(f"{path}: columns must be package,key,category,caption, not {reader.fieldnames}")
        rows = list(reader)
    table: dict[tuple[str, str], CaptionRow] = {}
    for line, row in enumerate(rows, start=2):
        values = {name: (row.get(name) or "").strip() for name in ("package", "key", "category", "caption")}
        empty = [name for name, value in values.items() if not value]
        if empty:
            raise BuildError(f"{path}:{line}: {values['package']}/{values['key']} has an empty {', '.join(empty)}")
        key = (values["package"], values["key"])
        if key in table:
            raise BuildError(f"{path}:{line}: {key[0]}/{key[1]} appears twice")
        if values["category"] not in CATEGORIES:
            raise BuildError(f"{path}:{line}: {key[0]}/{key[1]} has category {values['category']!r}, not one of {', '.join(CATEGORIES)}")
        table[key] = CaptionRow(values["category"], values["caption"])
    return table


def _run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def fetch(work: Path) -> dict[str, Path]:
    """Download and unpack every pinned package; package -> its unpacked tree."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found: the debcaps build downloads Debian packages (run it on Debian or Ubuntu)")
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    trees: dict[str, Path] = {}
    for source in SOURCES:
        if source.package in trees:
            continue
        deb = next(iter(sorted(debs.glob(f"{source.package}_*.deb"))), None)
        if deb is None:
            result = _run(["apt-get", "download", f"{source.package}={source.version}"], cwd=debs)
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise BuildError(f"{source.package} {source.version}: apt-get download failed (no longer served? run apt-get update): {last}")
            deb = next(iter(sorted(debs.glob(f"{source.package}_*.deb"))), None)
            if deb is None:
                raise BuildError(f"{source.package} {source.version}: apt-get download wrote no .deb")
        version = _run(["dpkg-deb", "-f", str(deb), "Version"]).stdout.strip()
        if version != source.version:
            raise BuildError(f"{source.package}: {deb.name} is version {version}, pinned {source.version}")
        digest = sha256_file(deb)
        if source.deb_sha256 and digest != source.deb_sha256:
            raise BuildError(f"{source.package} {source.version}: .deb sha256 {digest}, pinned {source.deb_sha256}")
        tree = work / "x" / source.package
        if not tree.is_dir():
            tmp = work / "x" / f".{source.package}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            if _run(["dpkg-deb", "-x", str(deb), str(tmp)]).returncode != 0:
                raise BuildError(f"{source.package}: dpkg-deb cannot unpack {deb.name}")
            tmp.rename(tree)
        logger.info("%s %s sha256 %s", source.package, source.version, digest)
        trees[source.package] = tree
    return trees


def _wanted(source: Source, path: str) -> bool:
    # Packages spell one name in several cases (``Hellish.ogg``, ``TARDIS.ogg``): match any.
    return bool(re.search(source.include, path, re.IGNORECASE)) and not (
        source.exclude and re.search(source.exclude, path, re.IGNORECASE)
    )


def source_files(trees: dict[str, Path]) -> list[SourceFile]:
    """Every file the spec takes, in a fixed order (source order, then path)."""
    files: list[SourceFile] = []
    for source in SOURCES:
        tree = trees[source.package]
        if source.archive:
            archive = tree / source.archive
            if not archive.is_file() or archive.is_symlink():
                raise BuildError(f"{source.package}: archive {source.archive} not found in the package")
            with zipfile.ZipFile(archive) as zipped:
                members = {}
                for info in zipped.infolist():
                    name = info.filename
                    if info.is_dir() or not name.startswith(source.root + "/") or ".." in name.split("/"):
                        continue
                    path = name[len(source.root) + 1 :]
                    if _wanted(source, path):
                        if info.file_size > MAX_SOURCE_BYTES:
                            raise BuildError(f"{source.package}: {name} is larger than {MAX_SOURCE_BYTES} bytes")
                        members[path] = zipped.read(info)
            files += [SourceFile(source.package, p, members[p], source) for p in sorted(members)]
            continue
        root = tree / source.root
        if not root.is_dir():
            raise BuildError(f"{source.package}: folder {source.root} not found in the package")
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file() or not _wanted(source, rel):
                continue
            if path.stat().st_size > MAX_SOURCE_BYTES:
                raise BuildError(f"{source.package}: {rel} is larger than {MAX_SOURCE_BYTES} bytes")
            files.append(SourceFile(source.package, rel, path.read_bytes(), source))
    return files


def check_source_checksums(files: list[SourceFile], repin: bool) -> None:
    """Each source file's sha256 against the pinned list (or write the list with ``repin``)."""
    lines = {f"{f.package}/{f.path}": hashlib.sha256(f.data).hexdigest() for f in files}
    if repin:
        SOURCES_SHA256.write_text("".join(f"{digest}  {name}\n" for name, digest in lines.items()), encoding="utf-8")
        logger.info("pinned %d source checksums in %s", len(lines), SOURCES_SHA256)
        return
    if not SOURCES_SHA256.is_file():
        raise BuildError(f"{SOURCES_SHA256} is missing (run with --repin once to write it)")
    pinned = {}
    for line in SOURCES_SHA256.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        pinned[name] = digest
    for name, digest in lines.items():
        if name not in pinned:
            raise BuildError(f"{name}: not in {SOURCES_SHA256.name} (the spec takes a file the pins do not know)")
        if pinned[name] != digest:
            raise BuildError(f"{name}: sha256 {digest}, pinned {pinned[name]}")
    missing = sorted(set(pinned) - set(lines))
    if missing:
        raise BuildError(f"{missing[0]}: pinned in {SOURCES_SHA256.name} but not found in its package")


# --------------------------------------------------------------------------- clips


@dataclass
class Clip:
    file: SourceFile
    audio: np.ndarray  # conditioned, 16 kHz mono float64
    flac: bytes  # as the corpus stores it
    category: str
    caption: str
    clip_id: str = ""
    number: int = 0  # audiocap_id: unique across splits
    group: str = ""


def decode(file: SourceFile) -> np.ndarray:
    """The file's conditioned audio (empty when silent)."""
    try:
        with sf.SoundFile(io.BytesIO(file.data)) as handle:
            if handle.frames / handle.samplerate > MAX_SOURCE_SECONDS:
                raise BuildError(f"{file.package}/{file.path}: longer than {MAX_SOURCE_SECONDS:.0f} s")
            audio = handle.read(dtype="float64", always_2d=True)
            rate = handle.samplerate
    except (sf.LibsndfileError, RuntimeError) as error:
        raise BuildError(f"{file.package}/{file.path}: cannot decode: {error}") from None
    return condition(audio.mean(axis=1), rate)


def collect(files: list[SourceFile], captions: dict[tuple[str, str], CaptionRow]) -> tuple[list[Clip], list[tuple[str, str]]]:
    """Decoded, captioned clips (exact copies after conditioning dropped) and what was left out, with why."""
    clips: list[Clip] = []
    left_out: list[tuple[str, str]] = []
    first: dict[bytes, str] = {}
    used: set[tuple[str, str]] = set()
    for file in files:
        name = f"{file.package}/{file.path}"
        audio = decode(file)
        if len(audio) < round(MIN_DURATION_S * SAMPLE_RATE):
            left_out.append((name, f"{len(audio) / SAMPLE_RATE:.2f} s after trimming silence"))
            continue
        row = captions.get((file.package, file.key))
        if row is None:
            raise BuildError(f"{name}: no caption for key {file.key!r} in {CAPTIONS_CSV.name}")
        used.add((file.package, file.key))
        flac = flac_bytes(audio)
        digest = hashlib.sha256(flac).digest()
        if digest in first:
            left_out.append((name, f"the same audio as {first[digest]}"))
            continue
        first[digest] = name
        clips.append(Clip(file, audio, flac, row.category, row.caption))
    unused = sorted(set(captions) - used)
    if unused:
        raise BuildError(f"{CAPTIONS_CSV.name}: {unused[0][0]}/{unused[0][1]} captions no clip ({len(unused)} such rows)")
    return clips, left_out


class _Groups:
    """Union-find over clip indices."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def assign_groups(clips: list[Clip]) -> list[tuple[int, int, float]]:
    """Join clips sharing a caption or whose audio is a near-duplicate; name each group. Returns the near-duplicate pairs."""
    groups = _Groups(len(clips))
    by_caption: dict[str, int] = {}
    for index, clip in enumerate(clips):
        groups.union(by_caption.setdefault(clip.caption, index), index)
    # The stored 16-bit samples, as anyone checking the corpus decodes them.
    stored = [sf.read(io.BytesIO(c.flac))[0] for c in clips]
    pairs = near_duplicates.near_duplicate_pairs([near_duplicates.fingerprint(audio) for audio in stored])
    for i, j, _ in pairs:
        groups.union(i, j)
    for index, clip in enumerate(clips):
        clip.group = clips[groups.find(index)].clip_id
    return pairs


def assign_splits(clips: list[Clip]) -> dict[str, str]:
    """Group -> split: within each category (a group's most common one), groups in the order of
    the sha256 of their name each go to the split furthest below its share of the category's clips."""
    members: dict[str, list[Clip]] = defaultdict(list)
    for clip in clips:
        members[clip.group].append(clip)
    category_of = {g: Counter(c.category for c in m).most_common(1)[0][0] for g, m in members.items()}
    splits: dict[str, str] = {}
    for category in CATEGORIES:
        counts = dict.fromkeys(SPLIT_FRACTIONS, 0)
        groups = sorted((g for g, c in category_of.items() if c == category),
                        key=lambda g: hashlib.sha256(f"debcaps/{g}".encode()).hexdigest())
        for group in groups:
            total = sum(counts.values()) + len(members[group])
            split = max(SPLIT_FRACTIONS, key=lambda s: SPLIT_FRACTIONS[s] * total - counts[s])
            counts[split] += len(members[group])
            splits[group] = split
    return splits


# --------------------------------------------------------------------------- writing


def write_corpus(folder: Path, clips: list[Clip], splits: dict[str, str], left_out: list[tuple[str, str]],
                 pairs: list[tuple[int, int, float]]) -> None:
    audio_dir = folder / "audio"
    audio_dir.mkdir(parents=True)
    for clip in clips:
        atomic_write_bytes(audio_dir / f"{clip.clip_id}.flac", clip.flac)
    by_split: dict[str, list[Clip]] = {split: [] for split in SPLIT_FRACTIONS}
    for clip in clips:
        by_split[splits[clip.group]].append(clip)
    for split, rows in by_split.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(AUDIOCAPS_COLUMNS + PROVENANCE_COLUMNS + DEBCAPS_COLUMNS)
        for clip in rows:
            source = clip.file.source
            writer.writerow([clip.number, clip.clip_id, 0, clip.caption, f"{source.package} {source.version}", source.licence_of(clip.file.path),
                             source.credit, f"{len(clip.audio) / SAMPLE_RATE:.4f}", clip.file.path, clip.category, clip.group])
        atomic_write_bytes(folder / f"{split}.csv", buffer.getvalue().encode("utf-8"))
    sums = "".join(f"{sha256_file(p)}  audio/{p.name}\n" for p in sorted(audio_dir.glob("*.flac")))
    atomic_write_bytes(folder / "SHA256SUMS", sums.encode("ascii"))
    write_docs(folder, by_split, left_out, pairs, clips)


def write_docs(folder: Path, by_split: dict[str, list[Clip]], left_out: list[tuple[str, str]],
               pairs: list[tuple[int, int, float]], clips: list[Clip]) -> None:
    total = sum(len(c.audio) for c in clips) / SAMPLE_RATE
    lines = [
        "# debcaps: captioned sound effects from free Debian packages",
        "",
        f"{len(clips)} clips ({total / 3600:.2f} h) of recorded and designed sound effects from {len(SOURCES)} free game and",
        "media packages of Debian 12, one hand-written caption each, in the AudioCaps layout (`train.csv`,",
        "`val.csv`, `test.csv`: `audiocap_id, youtube_id, start_time, caption`, then `source, licence,",
        "credit, duration_s, original_name, category, group`; audio in `audio/<youtube_id>.flac`).",
        "`youtube_id` is the clip's file stem here, `start_time` 0, `original_name` the file's path in its",
        "package below the source folder of `scripts/debcaps/spec.py`.",
        "",
        "Audio: mono, 16 kHz, 16-bit FLAC, silence trimmed, 0.5-10 s (longer ambiences cut at 10 s), peak -1 dBFS.",
        "Captions: written by hand per sound (`scripts/debcaps/captions.csv`) from the file names, folders",
        "and package documentation, not from listening tests. `group` joins clips that share a caption or",
        "whose audio is a near-duplicate (copies, re-encodes, trims and pitched versions across factions and",
        f"packages: {len(pairs)} such pairs); splits are drawn by group, stratified by category, about 70/10/20.",
        "No group and no caption is in two splits.",
        "",
        "Rebuild: `python scripts/build_debcaps.py` (downloads the pinned packages with `apt-get download`).",
        "",
        "## Clips per split and category",
        "",
        "| category | " + " | ".join(by_split) + " | all |",
        "|---|" + "---|" * (len(by_split) + 1),
    ]
    for category in CATEGORIES:
        counts = [sum(c.category == category for c in rows) for rows in by_split.values()]
        lines.append(f"| {category} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    lines.append("| **all** | " + " | ".join(str(len(r)) for r in by_split.values()) + f" | {len(clips)} |")
    lines.append("| seconds | " + " | ".join(f"{sum(len(c.audio) for c in r) / SAMPLE_RATE:.0f}" for r in by_split.values())
                 + f" | {total:.0f} |")
    lines += ["", "## Sources", "", "| package | version | licence | clips | credit |", "|---|---|---|---|---|"]
    per_package = Counter(c.file.package for c in clips)
    for source in SOURCES:
        licences = ", ".join(sorted({source.licence_of(c.file.path) for c in clips if c.file.package == source.package}))
        lines.append(f"| {source.package} | {source.version} | {licences} | {per_package[source.package]} | {source.credit} |")
    lines += [
        "",
        "Each package's licence is the one its `debian/copyright` (`/usr/share/doc/PACKAGE/copyright`) gives",
        "for the files taken; see `LICENSES.md` for the per-clip list and the licence texts' locations.",
        "",
        "## Left out",
        "",
        f"{len(left_out)} files: shorter than 0.5 s after trimming silence, silent, or byte-identical after",
        "conditioning to a clip kept (see the build log for the list).",
        "",
    ]
    atomic_write_bytes(folder / "README.md", "\n".join(lines).encode("utf-8"))
    lic = [
        "# debcaps licences and credits",
        "",
        CHANGES_NOTE,
        "",
        "Licence texts: GPL-2, GPL-3, LGPL-2.1 and GFDL-1.3 in `/usr/share/common-licenses/` of any Debian system",
        "and at https://www.gnu.org/licenses/; CC BY-SA 3.0 at https://creativecommons.org/licenses/by-sa/3.0/;",
        "CC BY 3.0 at https://creativecommons.org/licenses/by/3.0/; CC0 1.0 at https://creativecommons.org/publicdomain/zero/1.0/;",
        "MPL-1.1 at https://www.mozilla.org/MPL/1.1/; MIT (Sonic Pi) in /usr/share/doc/sonic-pi-samples/copyright.",
        "Clips under the GPL are offered with their source: the Debian source packages of the versions below.",
        "",
        "| file | split | package | licence | path in package | credit |",
        "|---|---|---|---|---|---|",
    ]
    for split, rows in by_split.items():
        for clip in sorted(rows, key=lambda c: c.clip_id):
            source = clip.file.source
            lic.append(f"| {clip.clip_id}.flac | {split} | {source.package} {source.version} | {source.licence_of(clip.file.path)} | "
                       f"{source.root}/{clip.file.path} | {source.credit.replace('|', '/')} |")
    atomic_write_bytes(folder / "LICENSES.md", ("\n".join(lic) + "\n").encode("utf-8"))


def build(out: Path, work: Path, repin: bool) -> None:
    started = time.perf_counter()
    captions = load_captions()
    trees = fetch(work)
    files = source_files(trees)
    check_source_checksums(files, repin)
    clips, left_out = collect(files, captions)
    short = {p.package: i for i, p in enumerate(SOURCES)}
    for number, clip in enumerate(clips):
        clip.clip_id = f"debcaps-{short[clip.file.package]:02d}-{number:05d}"
        clip.number = number + 1
    pairs = assign_groups(clips)
    splits = assign_splits(clips)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_corpus(staging, clips, splits, left_out, pairs)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            staging.rename(out)
            shutil.rmtree(old)
        else:
            staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name, why in left_out:
        logger.info("left out %s: %s", name, why)
    for i, j, score in pairs:
        logger.info("near-duplicates %.3f: %s/%s ~ %s/%s", score, clips[i].file.package, clips[i].file.path,
                    clips[j].file.package, clips[j].file.path)
    counts = Counter(splits[c.group] for c in clips)
    logger.info("wrote %s: %d clips %s, %d groups, %d near-duplicate pairs, %d left out, in %.0f s",
                out, len(clips), dict(counts), len(set(splits)), len(pairs), len(left_out), time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("lusebench/assets/debcaps"), help="corpus folder to write (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=None, help="folder to keep downloads in (default: a temporary one)")
    parser.add_argument("--repin", action="store_true", help="write scripts/debcaps/sources.sha256 from the files read instead of checking them")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        if args.work is not None:
            args.work.mkdir(parents=True, exist_ok=True)
            build(args.out, args.work, args.repin)
        else:
            with tempfile.TemporaryDirectory(prefix="debcaps-") as work:
                build(args.out, Path(work), args.repin)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
