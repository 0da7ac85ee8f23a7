"""debcaps, the embedded benchmark corpus: integrity, splits, near-duplicates, and its build script's bad inputs.

The corpus checks fail, never skip, when a file is missing: rebuild with
``python scripts/build_debcaps.py``.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from lusebench.simulation import near_duplicates
from lusebench.simulation.corpus import AUDIOCAPS_COLUMNS, DEBCAPS_COLUMNS, PROVENANCE_COLUMNS, open_corpus

REPO = Path(__file__).resolve().parents[2]
DEBCAPS = REPO / "lusebench" / "assets" / "debcaps"
SPLITS = ("train", "val", "test")


def _load_build_script():
    sys.path.insert(0, str(REPO / "scripts"))
    spec = importlib.util.spec_from_file_location("build_debcaps", REPO / "scripts" / "build_debcaps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


build = _load_build_script()


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, str]]]:
    tables = {}
    for split in SPLITS:
        path = DEBCAPS / f"{split}.csv"
        if not path.is_file():
            pytest.fail(f"missing {path}: run scripts/build_debcaps.py")
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == [*AUDIOCAPS_COLUMNS, *PROVENANCE_COLUMNS, *DEBCAPS_COLUMNS]
            tables[split] = list(reader)
    return tables


def test_counts_meet_the_benchmark_needs(rows):
    assert sum(len(r) for r in rows.values()) >= 1500
    assert len(rows["test"]) >= 300
    ids = [row["youtube_id"] for split_rows in rows.values() for row in split_rows]
    assert len(ids) == len(set(ids))
    numbers = [row["audiocap_id"] for split_rows in rows.values() for row in split_rows]
    assert len(numbers) == len(set(numbers))


def test_every_clip_file_matches_its_checksum_and_nothing_else_is_there(rows):
    sums = {}
    for line in (DEBCAPS / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    listed = {f"audio/{row['youtube_id']}.flac" for split_rows in rows.values() for row in split_rows}
    on_disk = {f"audio/{p.name}" for p in (DEBCAPS / "audio").iterdir()}
    assert listed == set(sums) == on_disk
    for name, digest in sums.items():
        assert hashlib.sha256((DEBCAPS / name).read_bytes()).hexdigest() == digest, name


def test_every_clip_has_caption_category_licence_credit_and_a_true_duration(rows):
    for split_rows in rows.values():
        for row in split_rows:
            for column in ("caption", "category", "licence", "credit", "source", "original_name", "group"):
                assert row[column].strip(), (row["youtube_id"], column)
            assert row["category"] in build.CATEGORIES
            # A caption is a sentence, not a file name.
            assert row["caption"][0].isupper() and "_" not in row["caption"] and "." not in row["caption"]
            info = sf.info(DEBCAPS / "audio" / f"{row['youtube_id']}.flac")
            assert (info.samplerate, info.channels) == (16000, 1)
            assert 0.5 <= info.frames / 16000 <= 10.0
            assert float(row["duration_s"]) == pytest.approx(info.frames / 16000, abs=1e-4)


def test_no_group_and_no_caption_is_in_two_splits(rows):
    for column in ("group", "caption"):
        seen = defaultdict(set)
        for split, split_rows in rows.items():
            for row in split_rows:
                seen[row[column]].add(split)
        assert all(len(splits) == 1 for splits in seen.values()), column


def test_every_val_and_test_category_has_training_clips(rows):
    train = {row["category"] for row in rows["train"]}
    for split in ("val", "test"):
        assert {row["category"] for row in rows[split]} <= train


def test_the_corpus_opens_by_name_with_its_splits(rows):
    corpus = open_corpus("debcaps")
    assert corpus.name == "debcaps"
    for split in SPLITS:
        assert [c.clip_id for c in corpus.split(split)] == [row["youtube_id"] for row in rows[split]]
    corpus.check("test")


def test_no_two_clips_of_different_groups_are_near_duplicates(rows):
    # The build's own detector over every clip (about a minute): a copy in two groups could land in two splits.
    clips = [row for split_rows in rows.values() for row in split_rows]
    prints = [near_duplicates.fingerprint(sf.read(DEBCAPS / "audio" / f"{row['youtube_id']}.flac")[0]) for row in clips]
    crossing = [(clips[i]["youtube_id"], clips[j]["youtube_id"], score)
                for i, j, score in near_duplicates.near_duplicate_pairs(prints) if clips[i]["group"] != clips[j]["group"]]
    assert crossing == []


# --------------------------------------------------------------------------- the detector


def _event_clip(seed: int, seconds: float = 1.5) -> np.ndarray:
    """Decaying noise bursts of random colour at random times: a stand-in for a recorded effect."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(int(seconds * 16000))
    for _ in range(6):
        start = rng.integers(0, len(audio) - 4000)
        burst = np.convolve(rng.standard_normal(4000), rng.standard_normal(rng.integers(2, 40)), mode="same")
        audio[start : start + 4000] += burst * np.exp(-np.arange(4000) / rng.uniform(300, 1500))
    return audio / np.abs(audio).max()


def test_detector_finds_reencoded_trimmed_and_pitched_copies():
    original = _event_clip(0)
    fp = near_duplicates.fingerprint
    quantised = np.round(original * 2**7) / 2**7  # an 8-bit re-encode
    trimmed = original[1600:-1600]
    # Resampled by 2^(2/8): two eighth-octave bands higher and that much shorter, as game data pitches a copy.
    pitched = resample_poly(original, 27, 32)
    for copy in (quantised, trimmed, pitched):
        assert near_duplicates.similarity(fp(original), fp(copy)) >= near_duplicates.THRESHOLD
    assert len(near_duplicates.near_duplicate_pairs([fp(original), fp(trimmed), fp(_event_clip(1))])) == 1


def test_detector_tells_different_recordings_apart():
    prints = [near_duplicates.fingerprint(_event_clip(seed)) for seed in range(6)]
    scores = [near_duplicates.similarity(a, b) for i, a in enumerate(prints) for b in prints[i + 1 :]]
    assert max(scores) < near_duplicates.THRESHOLD


# --------------------------------------------------------------------------- the build script's bad inputs


def _captions(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "captions.csv"
    path.write_text("package,key,category,caption\n" + text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ("qabcs-data,dog,animals,A dog barks\nqabcs-data,dog,animals,A dog barks twice\n", "qabcs-data/dog appears twice"),
        ("qabcs-data,dog,animals,\n", "qabcs-data/dog has an empty caption"),
        ("qabcs-data,dog,,A dog barks\n", "qabcs-data/dog has an empty category"),
        ("qabcs-data,dog,pets,A dog barks\n", "qabcs-data/dog has category 'pets'"),
    ],
)
def test_a_bad_caption_table_is_one_line_naming_the_row(tmp_path, text, message):
    with pytest.raises(SystemExit) as raised:
        build.load_captions(_captions(tmp_path, text))
    assert raised.value.code == 2 and message in str(raised.value.args[0]) and "\n" not in str(raised.value.args[0])


def test_the_committed_caption_table_loads():
    table = build.load_captions()
    assert len(table) > 900


def _source_file(package="qabcs-data", path="noises/dog.ogg", seconds=1.0):
    buffer = __import__("io").BytesIO()
    sf.write(buffer, _event_clip(3, seconds), 16000, format="WAV")
    source = next(s for s in build.SOURCES if s.package == package)
    return build.SourceFile(package, path, buffer.getvalue(), source)


def test_a_clip_without_a_caption_row_is_named(tmp_path):
    with pytest.raises(SystemExit, match=r"qabcs-data/noises/dog\.ogg: no caption for key 'dog'"):
        build.collect([_source_file()], {})


def test_a_caption_row_no_clip_uses_is_named():
    captions = {("qabcs-data", "dog"): build.CaptionRow("animals", "A dog barks"),
                ("qabcs-data", "cat"): build.CaptionRow("animals", "A cat meows")}
    with pytest.raises(SystemExit, match="qabcs-data/cat captions no clip"):
        build.collect([_source_file()], captions)


def test_a_source_file_whose_checksum_differs_is_named(tmp_path, monkeypatch):
    pins = tmp_path / "sources.sha256"
    monkeypatch.setattr(build, "SOURCES_SHA256", pins)
    good = _source_file()
    build.check_source_checksums([good], repin=True)
    build.check_source_checksums([good], repin=False)
    altered = build.SourceFile(good.package, good.path, good.data + b"\0", good.source)
    with pytest.raises(SystemExit, match=r"^qabcs-data/noises/dog\.ogg: sha256 [0-9a-f]{64}, pinned [0-9a-f]{64}$"):
        build.check_source_checksums([altered], repin=False)


def test_no_apt_get_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(build.shutil, "which", lambda tool: None)
    with pytest.raises(SystemExit, match="apt-get not found"):
        build.fetch(tmp_path)


def test_a_pinned_version_no_longer_served_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(build.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    failure = build.subprocess.CompletedProcess([], 100, "", "E: Version '3.13.0-3' for 'megaglest-data' was not found\n")
    monkeypatch.setattr(build, "_run", lambda command, cwd=None: failure)
    with pytest.raises(SystemExit) as raised:
        build.fetch(tmp_path)
    message = str(raised.value.args[0])
    assert message.startswith("megaglest-data 3.13.0-3: apt-get download failed") and "was not found" in message
    assert "\n" not in message


def test_a_failed_build_leaves_no_corpus_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "load_captions", lambda: {("qabcs-data", "dog"): build.CaptionRow("animals", "A dog barks")})
    monkeypatch.setattr(build, "fetch", lambda work: {})
    monkeypatch.setattr(build, "source_files", lambda trees: [_source_file()])
    monkeypatch.setattr(build, "check_source_checksums", lambda files, repin: None)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(build, "write_docs", fail)
    with pytest.raises(OSError):
        build.build(tmp_path / "out" / "debcaps", tmp_path / "work", repin=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_build_writes_the_corpus_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "load_captions", lambda: {("qabcs-data", "dog"): build.CaptionRow("animals", "A dog barks")})
    monkeypatch.setattr(build, "fetch", lambda work: {})
    monkeypatch.setattr(build, "source_files", lambda trees: [_source_file()])
    monkeypatch.setattr(build, "check_source_checksums", lambda files, repin: None)
    out = tmp_path / "out" / "debcaps"
    build.build(out, tmp_path / "work", repin=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["debcaps"]
    with (out / "train.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["caption"], row["category"], row["group"]) == ("A dog barks", "animals", row["youtube_id"])


# --------------------------------------------------------------------------- the fixed sets drawn from it

# The first three mixtures of each fixed set, rendered here: their fingerprint pins the set's seed,
# corpus and recipes (the full sets' fingerprints are in leaderboard/entries/reference-*).
PINNED_HEADS = {
    "test-2src": "fed45c028061703d78167252e47443fdd902f55390af6c39b60dacfee5f9384c",
    "test-3src": "ae1892696a7dc038c5500e3f1809b0b527c45955e7dac5b8461d2253722c8d3f",
    "val-2src": "946d0dc8fce7d92c3dd2194415ee83bc4e55878bf630631e2d196e553aa45fb3",
    "val-3src": "3af92c6be37dbfb5cc949060897afe1e2dc79f0c52621d99310a76de6d2ed3f0",
    "test-2src-unseen-head": "5cb77e4ac0d81c930be1fae75d7cb2e2bc5cc75aae91f770febea3564c9dba94",
    "test-3src-unseen-head": "0b4e32f51ce59f3829d9e6d8146babd6813dba3639a2a86d47c3b6bbd01451a4",
}


@pytest.mark.parametrize("name", sorted(PINNED_HEADS))
def test_fixed_sets_draw_pinned_recipes_from_debcaps(name, tmp_path):
    from lusebench.fingerprint import dataset_fingerprint
    from lusebench.simulation.config import BENCHMARK_SETS
    from lusebench.simulation.writer import load_manifest, simulate

    fixed = BENCHMARK_SETS[name]
    assert fixed.corpus == "debcaps" and fixed.num_mixtures == (1000 if fixed.split == "test" else 500)
    simulate(fixed.config(num_mixtures=3), tmp_path / "head", progress=False)
    manifest = load_manifest(tmp_path / "head")
    assert set(manifest["corpus"]) == {"debcaps"}
    assert dataset_fingerprint(manifest) == PINNED_HEADS[name]


# Which items of the full test sets are absent-target items (10 %): the first five of each.
PINNED_ABSENT = {"test-2src": [5, 19, 29, 39, 48], "test-3src": [0, 16, 40, 51, 60]}


@pytest.mark.parametrize("name", sorted(PINNED_ABSENT))
def test_the_test_sets_hold_pinned_absent_items(name):
    from lusebench.simulation.config import BENCHMARK_SETS
    from lusebench.simulation.writer import set_absent_indices

    absent = sorted(set_absent_indices(BENCHMARK_SETS[name].config()))
    assert len(absent) == 100 and absent[:5] == PINNED_ABSENT[name]
    assert set_absent_indices(BENCHMARK_SETS[f"{name}-reverb"].config()) == set(absent)


def test_an_absent_query_is_of_another_category_than_every_source(tmp_path):
    from lusebench.simulation.config import BENCHMARK_SETS
    from lusebench.simulation.writer import load_manifest, simulate

    categories = {clip.clip_id: clip.category for clip in open_corpus("debcaps").split("test")}
    # 20 mixtures at the set's seed and share: 2 absent items, drawn as the full set draws them.
    simulate(BENCHMARK_SETS["test-3src"].config(num_mixtures=20, duration_s=1.0), tmp_path / "s", progress=False)
    absent = load_manifest(tmp_path / "s").query("target_absent")
    assert len(absent) == 2
    for row in absent.itertuples():
        assert row.query_clip_id not in set(row.clip_ids)
        assert categories[row.query_clip_id] not in {categories[c] for c in row.clip_ids}


def test_the_minicaps_sets_keep_their_recipes_under_new_names():
    from lusebench.simulation.config import BENCHMARK_SETS, BenchmarkSet

    old = {"test-2src": ("test", 2, 1000, 20251), "test-3src": ("test", 3, 1000, 20252),
           "val-2src": ("val", 2, 500, 20261), "val-3src": ("val", 3, 500, 20262)}
    for name, fields in old.items():
        assert BENCHMARK_SETS[f"minicaps-{name}"] == BenchmarkSet(*fields, corpus="minicaps")
    for room in ("2src", "3src"):
        reverb = BENCHMARK_SETS[f"minicaps-test-{room}-reverb"]
        assert (reverb.room, reverb.seed) == ("reverberant", BENCHMARK_SETS[f"minicaps-test-{room}"].seed)


def test_training_mixes_debcaps_clips_on_the_fly():
    from lusebench.simulation.config import SimulationConfig
    from lusebench.simulation.dynamic import DynamicMixingDataset

    data = DynamicMixingDataset(SimulationConfig(split="train", num_mixtures=4, duration_s=1.0, corpus="debcaps"))
    item = data[0]
    assert item["mixture"].shape == (2, 16000)
    train_captions = {clip.captions[0] for clip in open_corpus("debcaps").split("train")}
    assert item["caption"] in train_captions


def test_committed_reference_entries_on_the_debcaps_sets_are_never_ranked_with_the_minicaps_ones():
    import json

    from lusebench.leaderboard.build import DEFAULT_ENTRIES

    fingerprints = {}
    for path in sorted(DEFAULT_ENTRIES.rglob("results.json")):
        dataset = json.loads(path.read_text())["dataset"]
        fingerprints.setdefault(dataset["path"].rsplit("/", 1)[-1], set()).add(dataset["fingerprint"])
    # One fingerprint per set name, and no fingerprint under two names.
    assert {name: len(prints) for name, prints in fingerprints.items()} == dict.fromkeys(fingerprints, 1)
    assert len({fp for prints in fingerprints.values() for fp in prints}) == len(fingerprints)
    assert {"test-2src", "test-3src", "minicaps-test-2src", "minicaps-test-3src"} <= set(fingerprints)
    # The README's values.
    assert fingerprints["test-2src"] == {"4480fe0bb8d9d5dda5fc20f63b5c8bf2f07af42ec724f4b42770a82e8166f3ce"}
    assert fingerprints["test-3src"] == {"c905da020fb84ac588218cfa798aab610d95cee500324ed76565e171f2ae72fc"}
    assert fingerprints["test-2src-unseen-head"] == {"ee4876dfdefd73c0a4dd58aa249d74ef4dc658af193fe35cf515477e55488e44"}
    assert fingerprints["minicaps-test-2src"] == {"4ce759ca4c4e1aa642ed0564f617e4e0c4b5d6e5bd17dd53505f6ce3199553ad"}
    assert fingerprints["minicaps-test-3src"] == {"104bf62ce786e733bbefcfd455abbad94a0713797e306d72dbd960b7fbca809e"}
