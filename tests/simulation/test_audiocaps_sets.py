"""Fixed AudioCaps sets rendered from a user's partial copy: coverage, fingerprints, comparable results.

The copy is synthetic (generated tones) but named by real AudioCaps ids, with the real caption rows
of tests/simulation/data/audiocaps-excerpt: the clips of the first 12 recipes of audiocaps-test-2src,
some missing, one at 22,050 Hz, one stereo, one 5 % short (padded), one too short, one undecodable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from lusebench.benchmark.evaluate import evaluate
from lusebench.benchmark.reference import write_reference
from lusebench.cli import main
from lusebench.fingerprint import dataset_fingerprint
from lusebench.leaderboard import build_leaderboard
from lusebench.leaderboard.tables import SUBSET_NOTE
from lusebench.simulation.audiocaps_sets import (
    caption_digest,
    captions_differ,
    draw_table,
    is_copy_of,
    load_table,
    read_coverage,
    table_path,
)
from lusebench.simulation.config import BENCHMARK_SETS, SPLIT_CODES, SimulationConfig
from lusebench.simulation.writer import load_manifest, simulate, verify
from lusebench.testing.corpus import make_audiocaps_copy, make_corpus

EXCERPT = Path(__file__).parent / "data" / "audiocaps-excerpt"
SET = "audiocaps-test-2src"
RECIPES = 12  # the excerpt holds the clips of the first 12 recipes
# Where the full AudioCaps v1 caption tables are, for the test that redraws the shipped tables.
FULL_CAPTIONS = Path(os.environ.get("LUSEBENCH_AUDIOCAPS_CAPTIONS", "/work/shared/audiocaps"))


def _table() -> pd.DataFrame:
    return load_table(SET, 2)[0].iloc[:RECIPES]


def _clips() -> list[str]:
    table = _table()
    return list(dict.fromkeys(y for row in zip(table["youtube_id_0"], table["youtube_id_1"]) for y in row))


def _config(corpus: Path, **overrides) -> SimulationConfig:
    config = BENCHMARK_SETS[SET].config(corpus=f"audiocaps:{corpus}", duration_s=1.0, **overrides)
    return dataclasses.replace(config, num_mixtures=RECIPES)


@pytest.fixture(scope="module")
def copy_a(tmp_path_factory) -> tuple[Path, dict]:
    """A copy lacking two clips, with one clip of each defect: the usable ones in recipes it covers."""
    clips = _clips()
    absent = set(clips[:2])
    covered = [r for r in _table().to_dict("records") if not {r["youtube_id_0"], r["youtube_id_1"]} & absent][:3]
    defects = {r["youtube_id_0"]: kind for r, kind in zip(covered, ("stereo", "rate", "padded"))}
    protected = absent | {clip for r in covered for clip in (r["youtube_id_0"], r["youtube_id_1"])}
    unusable = [clip for clip in clips if clip not in protected][:2]
    defects.update(zip(unusable, ("short", "corrupt")))
    root = make_audiocaps_copy(tmp_path_factory.mktemp("copy-a"), EXCERPT, clips[2:], defects=defects)
    return root, {"absent": absent, "unusable": set(unusable), "defects": defects}


@pytest.fixture(scope="module")
def set_a(copy_a, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sets") / "a"
    simulate(_config(copy_a[0]), out, progress=False)
    return out


@pytest.fixture(scope="module")
def set_b(tmp_path_factory) -> Path:
    """Another copy: every clip but two others, all clean, in audiocaps-download's layout."""
    clips = _clips()
    root = make_audiocaps_copy(tmp_path_factory.mktemp("copy-b"), EXCERPT, clips[:6] + clips[8:],
                               layout="audiocaps-download")
    out = tmp_path_factory.mktemp("sets") / "b"
    simulate(_config(root), out, progress=False)
    return out


def _expected_recipes(lacking: set[str]) -> list[str]:
    table = _table()
    keep = ~(table["youtube_id_0"].isin(lacking) | table["youtube_id_1"].isin(lacking))
    return table.loc[keep, "mixture_id"].tolist()


def test_shipped_tables_follow_the_protocol():
    sums = dict(line.split()[::-1] for line in (table_path(SET).parent / "SHA256SUMS").read_text().splitlines())
    for name, fixed in BENCHMARK_SETS.items():
        if fixed.recipes != name:  # not an AudioCaps set, or a reverberant twin of one
            assert not fixed.recipes or BENCHMARK_SETS[fixed.recipes].num_sources == fixed.num_sources
            continue
        table, sha256 = load_table(name, fixed.num_sources)
        assert sha256 == sums[f"{name}.csv"]
        assert len(table) == fixed.num_mixtures
        assert table["mixture_id"].tolist() == [f"{name}-{i:06d}" for i in range(fixed.num_mixtures)]
        assert (table["snr_db_0"] == 0.0).all()
        ids = table[[f"youtube_id_{k}" for k in range(fixed.num_sources)]]
        assert (ids.nunique(axis=1) == fixed.num_sources).all()
        for k in range(fixed.num_sources):
            assert table[f"azimuth_deg_{k}"].between(0.0, 360.0, inclusive="left").all()
            assert table[f"snr_db_{k}"].between(-5.0, 5.0).all()
            assert table[f"caption_digest_{k}"].str.fullmatch(r"[0-9a-f]{8}").all()


def test_excerpt_recipes_pair_clips_whose_captions_differ_and_name_their_caption_rows():
    captions = pd.read_csv(EXCERPT / "test.csv", dtype=str)
    by_clip = captions.groupby("youtube_id")["caption"].apply(list)
    rows = captions.set_index("audiocap_id")
    for recipe in _table().to_dict("records"):
        target, interferer = recipe["youtube_id_0"], recipe["youtube_id_1"]
        assert captions_differ(by_clip[target], by_clip[interferer])
        for k in (0, 1):
            row = rows.loc[recipe[f"audiocap_id_{k}"]]
            assert row["youtube_id"] == recipe[f"youtube_id_{k}"]
            assert caption_digest(row["caption"]) == recipe[f"caption_digest_{k}"]


def test_captions_differ_by_the_words_most_captions_use():
    dog = ["A dog barks", "A dog is barking", "Dogs bark loudly", "A small dog barking", "Barking of a dog"]
    dog_and_man = ["Dogs barking and a man speaks", "A dog barks as a man talks", "A man speaks while a dog barks",
                   "Dog barking", "A dog barks and a man speaks"]
    engine = ["An engine idles", "A vehicle engine running", "An engine revs", "Engine humming", "A car engine runs"]
    assert not captions_differ(dog, dog_and_man)  # dog and bark are in most captions of both
    assert captions_differ(dog, engine)
    # A word in two of five captions is not what the clip is: "man" here does not clash with a man speaking.
    assert captions_differ(engine[:3] + ["A man starts an engine", "An engine and a man"], ["A man speaks"] * 5)


@pytest.mark.skipif(not (FULL_CAPTIONS / "test.csv").is_file(), reason="the full AudioCaps v1 caption tables are "
                    "not here (set LUSEBENCH_AUDIOCAPS_CAPTIONS)")
def test_shipped_tables_are_the_protocols_draw_from_the_audiocaps_tables():
    from lusebench.simulation.corpus import read_audiocaps_csv

    for name in ("audiocaps-test-2src", "audiocaps-val-3src"):
        fixed = BENCHMARK_SETS[name]
        drawn = draw_table(name, read_audiocaps_csv(FULL_CAPTIONS / f"{fixed.split}.csv"), fixed.split,
                           fixed.num_sources, 100, fixed.seed, SPLIT_CODES[fixed.split])
        shipped = table_path(name).read_text().splitlines()[:101]
        assert drawn.to_csv(index=False, lineterminator="\n").splitlines() == shipped


def test_partial_copy_renders_the_covered_recipes_and_records_the_coverage(copy_a, set_a):
    _, facts = copy_a
    lacking = facts["absent"] | facts["unusable"]
    manifest = load_manifest(set_a)
    expected = _expected_recipes(lacking)
    assert manifest["mixture_id"].tolist() == expected
    assert (set_a / "recipes.txt").read_text().split() == expected
    coverage = read_coverage(set_a)
    assert (coverage["recipes"], coverage["recipes_total"], coverage["clips"], coverage["clips_unusable"]) == (
        len(expected), RECIPES, 24, 4)
    assert (coverage["resampled"], coverage["rates"], coverage["downmixed"], coverage["padded"]) == (1, [22050], 1, 1)
    assert coverage["summary"].startswith(f"{SET}: {len(expected)} of {RECIPES} mixtures")
    missing = pd.read_csv(set_a / "missing.csv", dtype=str).set_index("youtube_id")
    assert set(missing.index) == lacking
    for clip in facts["absent"]:
        assert missing.loc[clip, "reason"] == "no audio file"
    short, corrupt = sorted(facts["unusable"], key=lambda c: facts["defects"][c] != "short")
    assert "too short: 0.50 s" in missing.loc[short, "reason"]
    assert "does not decode" in missing.loc[corrupt, "reason"]
    # The recipe is the table's, the captions the copy's rows of the named audiocap_ids.
    table = _table().set_index("mixture_id")
    captions = pd.read_csv(EXCERPT / "test.csv", dtype=str).set_index("audiocap_id")["caption"]
    for row in manifest.to_dict("records"):
        recipe = table.loc[row["mixture_id"]]
        assert list(row["clip_ids"]) == [recipe["youtube_id_0"], recipe["youtube_id_1"]]
        assert list(row["audiocap_ids"]) == [recipe["audiocap_id_0"], recipe["audiocap_id_1"]]
        assert row["caption"] == captions[recipe["audiocap_id_0"]]
        assert list(row["captions"]) == [captions[recipe["audiocap_id_0"]], captions[recipe["audiocap_id_1"]]]
        assert list(row["azimuths_deg"]) == [recipe["azimuth_deg_0"], recipe["azimuth_deg_1"]]
        assert list(row["snr_db"]) == [0.0, recipe["snr_db_1"]]
        assert list(row["clip_offsets_s"]) == list(row["onsets_s"]) == [0.0, 0.0]


def test_a_padded_clip_ends_in_silence_and_a_stereo_clip_is_its_channels_mean(copy_a, tmp_path):
    root, facts = copy_a
    defects = {kind: clip for clip, kind in facts["defects"].items()}
    simulate(_config(root, save_sources=True), tmp_path / "set", progress=False)
    manifest = load_manifest(tmp_path / "set").set_index("target_clip_id")
    for kind in ("padded", "stereo"):
        row = manifest.loc[defects[kind]]
        dry, rate = sf.read(tmp_path / "set" / row["dry_path"])
        if kind == "padded":
            assert np.all(dry[int(0.951 * rate):] == 0.0) and np.any(dry[: int(0.9 * rate)] != 0.0)
        else:
            source, _ = sf.read(root / "audio" / f"{defects[kind]}.wav")
            expected = source.mean(axis=1)[: len(dry)] * row["gains"][0] * row["mixture_gain"]
            np.testing.assert_allclose(dry, expected, atol=1e-6)


def test_rendering_is_deterministic_and_the_fingerprint_names_the_recipes_not_the_audio(copy_a, set_a, set_b, tmp_path):
    root, _ = copy_a
    again = tmp_path / "again"
    simulate(_config(root), again, progress=False)
    first, second = load_manifest(set_a), load_manifest(again)
    assert first["mixture_sha256"].tolist() == second["mixture_sha256"].tolist()
    assert dataset_fingerprint(first) == dataset_fingerprint(second)
    # Another subset of the set: another fingerprint.
    assert dataset_fingerprint(load_manifest(set_b)) != dataset_fingerprint(first)
    # Another encoding of the same clips (here: louder, at another rate) is the same set.
    louder = tmp_path / "louder"
    louder.mkdir()
    (louder / "test.csv").write_bytes((root / "test.csv").read_bytes())
    (louder / "audio").mkdir()
    for path in (root / "audio").iterdir():
        try:
            audio, rate = sf.read(path)
        except sf.LibsndfileError:
            (louder / "audio" / path.name).write_bytes(path.read_bytes())
            continue
        sf.write(louder / "audio" / f"{path.stem}.flac", 1.5 * audio, rate, subtype="PCM_24")
    simulate(_config(louder), tmp_path / "louder-set", progress=False)
    other = load_manifest(tmp_path / "louder-set")
    assert not set(np.concatenate(other["clip_sha256"].tolist())) & set(np.concatenate(first["clip_sha256"].tolist()))
    assert not np.allclose(np.concatenate(other["gains"].tolist()), np.concatenate(first["gains"].tolist()))
    assert dataset_fingerprint(other) == dataset_fingerprint(first)


def test_scoring_two_subsets_on_their_common_recipes_gives_the_same_items_and_one_fingerprint(copy_a, set_a, set_b,
                                                                                             tmp_path):
    common = sorted(set((set_a / "recipes.txt").read_text().split()) & set((set_b / "recipes.txt").read_text().split()))
    assert 0 < len(common) < min(len(load_manifest(set_a)), len(load_manifest(set_b)))
    (tmp_path / "common.txt").write_text("# recipes both copies hold\n" + "\n".join(common) + "\n")
    results = {}
    for name, data in (("a", set_a), ("b", set_b)):
        submission = write_reference("mixture", data, tmp_path / f"sub-{name}", progress=False)
        results[name] = evaluate(submission, data, tmp_path / f"res-{name}", workers=1, figures=False, progress=False)
        results[f"{name}-common"] = evaluate(submission, data, tmp_path / f"res-{name}-common", workers=1,
                                             figures=False, progress=False, recipes=tmp_path / "common.txt")
    scores = ["si_snr_db", "sdr_db", "bss_sdr_db", "itd_error_us", "ild_error_db"]
    for name in ("a", "b"):
        items = results[f"{name}-common"].items.set_index("mixture_id")
        assert items.index.tolist() == common
        pd.testing.assert_frame_equal(items[scores], results[name].items.set_index("mixture_id").loc[common, scores])
        coverage = results[f"{name}-common"].summary["dataset"]["coverage"]
        assert coverage == {"recipe_set": SET, "recipes": len(common), "of": RECIPES}
    # Where both copies hold the same samples (copy A's defective clips aside), the items are equal too.
    defective = set(copy_a[1]["defects"])
    manifest = load_manifest(set_a).set_index("mixture_id")
    clean = [m for m in common if not set(manifest.loc[m, "clip_ids"]) & defective]
    assert clean and len(clean) < len(common)
    a_items, b_items = (results[f"{name}-common"].items.set_index("mixture_id").loc[clean, scores] for name in "ab")
    pd.testing.assert_frame_equal(a_items, b_items)
    assert results["a-common"].summary["dataset"]["fingerprint"] == results["b-common"].summary["dataset"]["fingerprint"]
    assert results["a"].summary["dataset"]["fingerprint"] != results["b"].summary["dataset"]["fingerprint"]
    # The leaderboard ranks the two common-recipe results together, the two whole subsets apart.
    board = build_leaderboard([results[k].folder / "results.json" for k in results], tmp_path / "site",
                              include_paper=False)
    sizes = sorted(len(table.rows) for table in board.tables)
    assert sizes == [1, 1, 2]
    text = board.markdown.read_text()
    assert f"{len(common)} of {RECIPES} recipes of {SET}" in text and SUBSET_NOTE in text


def test_simulate_cli_prints_the_coverage_and_refuses_bad_copies(copy_a, tmp_path, capsys):
    root, _ = copy_a
    bare = tmp_path / "bare"
    bare.mkdir()
    other_columns = tmp_path / "other-columns"
    other_columns.mkdir()
    pd.DataFrame({"id": ["x"], "text": ["a dog"]}).to_csv(other_columns / "test.csv", index=False)
    empty = make_audiocaps_copy(tmp_path / "empty", EXCERPT, [])
    cases = {
        "minicaps": "renders from your AudioCaps copy: add --corpus audiocaps:ROOT",
        f"audiocaps:{bare}": "has no test.csv",
        f"audiocaps:{other_columns}": "lacks AudioCaps column(s): audiocap_id, youtube_id, start_time, caption",
        f"audiocaps:{empty}": f"none of the 1000 recipes of {SET} can be rendered",
    }
    for corpus, message in cases.items():
        out = tmp_path / "out"
        code = main(["simulate", "--benchmark", SET, "--corpus", corpus, "--duration", "0.5", "--out", str(out),
                     "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    out = tmp_path / "cli"
    assert main(["simulate", "--benchmark", SET, "--corpus", f"audiocaps:{root}", "--duration", "0.5",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    manifest = load_manifest(out)
    assert f"coverage: {SET}: {len(manifest)} of 1,000 mixtures" in printed
    assert "missing.csv" in printed


def test_evaluate_refuses_a_recipes_file_naming_recipes_the_set_lacks(set_a, tmp_path, capsys):
    submission = write_reference("mixture", set_a, tmp_path / "sub", progress=False)
    (tmp_path / "common.txt").write_text(f"{SET}-000000\n{SET}-000001\n")
    code = main(["evaluate", str(submission), "--data", str(set_a), "--recipes", str(tmp_path / "common.txt"),
                 "--no-progress", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "does not hold" in err and len(err.strip().splitlines()) == 1
    assert not (submission / "results").exists()


def test_training_validates_on_the_fixed_val_set_of_an_audiocaps_copy(tmp_path):
    from lusebench.baselines.train import TrainConfig, val_simulation_config

    table = load_table("audiocaps-val-2src", 2)[0].iloc[:6]
    clips = list(dict.fromkeys(list(table["youtube_id_0"]) + list(table["youtube_id_1"])))
    root = make_audiocaps_copy(tmp_path / "copy", EXCERPT, clips, split="val")
    config = TrainConfig.for_preset("tiny", system="luseel", num_sources=2, corpus=f"audiocaps:{root}")
    val = val_simulation_config(config, 16000, 1.0)
    assert (val.recipes, val.split, val.num_mixtures) == ("audiocaps-val-2src", "val", min(config.val_mixtures, 500))
    assert is_copy_of(f"audiocaps:{root}", "audiocaps-val-2src", "val", 2)
    # A corpus in AudioCaps' layout that is not AudioCaps keeps the seeded val-Nsrc set.
    synthetic = make_corpus(tmp_path / "synthetic")
    assert val_simulation_config(dataclasses.replace(config, corpus=f"audiocaps:{synthetic}"), 16000, 1.0).recipes == ""
    covered = simulate(val, tmp_path / "val", progress=False)
    assert covered is not None and len(load_manifest(tmp_path / "val")) == len(table[:config.val_mixtures])


def test_a_corpus_missing_clips_trains_on_the_others(tmp_path, caplog):
    from lusebench.simulation.corpus import open_corpus
    from lusebench.simulation.dynamic import DynamicMixingDataset

    root = make_corpus(tmp_path / "corpus", clips_per_split=6)
    (root / "audio" / "syn0000.wav").unlink()  # a train clip YouTube lost
    with pytest.raises(Exception, match="have no audio file"):
        open_corpus(f"audiocaps:{root}")
    config = SimulationConfig(num_sources=2, split="train", num_mixtures=4, duration_s=0.5, corpus=f"audiocaps:{root}")
    item = DynamicMixingDataset(config)[0]
    assert item["mixture"].shape == (2, 8000)
    assert "1 of 6 clips of" in caplog.text
    # train-baseline's set-up check accepts the copy the dynamic mixing trains on (validating on a
    # rendered set: the seeded val set of a corpus that is not AudioCaps needs every clip).
    val = tmp_path / "val"
    simulate(SimulationConfig(split="val", num_sources=2, num_mixtures=2, duration_s=1.0, corpus="minicaps"), val, progress=False)
    out = tmp_path / "run"
    code = main(["train-baseline", "--system", "mlp-gcc", "--sources", "2", "--preset", "tiny", "--corpus",
                 f"audiocaps:{root}", "--val-data", str(val), "--out", str(out), "--batch-size", "2",
                 "--epoch-size", "2", "--max-epochs", "1", "--no-progress"])
    assert code == 0 and (out / "best.pt").is_file()


def test_loading_a_copy_lists_each_audio_folder_once_and_the_first_folder_wins_a_stem(tmp_path, monkeypatch):
    from lusebench.simulation import corpus as corpus_module

    root = make_corpus(tmp_path / "corpus", clips_per_split=2)
    test_ids = pd.read_csv(root / "test.csv", dtype=str)["youtube_id"].tolist()
    (root / "test").mkdir()  # audiocaps-download's layout for one split, beside root/audio
    os.rename(root / "audio" / f"{test_ids[0]}.wav", root / "test" / f"{test_ids[0]}.wav")
    shutil.copy(root / "audio" / f"{test_ids[1]}.wav", root / "test" / f"{test_ids[1]}.wav")
    listed: list[Path] = []

    def index_folder(folder):
        listed.append(folder)
        return listing(folder)

    listing = corpus_module._index_audio_folder
    monkeypatch.setattr(corpus_module, "_index_audio_folder", index_folder)
    corpus = corpus_module.load_audiocaps(root)
    assert sorted(listed) == sorted([root / "audio", root, root / "test"])
    assert [clip.path for clip in corpus.split("test")] == [root / "test" / f"{test_ids[0]}.wav",
                                                            root / "audio" / f"{test_ids[1]}.wav"]
    assert {len(corpus.split(split)) for split in ("train", "val", "test")} == {2}


def test_a_checksum_of_the_shipped_tables_is_what_the_manifest_records(set_a):
    manifest = load_manifest(set_a)
    assert set(manifest["recipe_set_sha256"]) == {hashlib.sha256(table_path(SET).read_bytes()).hexdigest()}
    assert set(manifest["recipe_set_size"]) == {RECIPES}


def test_verify_re_renders_a_fixed_set_from_the_copy(set_a):
    report = verify(set_a, progress=False)
    assert report.ok and report.checked == len(load_manifest(set_a)) and not report.recipes_differ


def test_the_leaderboard_rejects_a_coverage_block_that_is_wrong(tmp_path):
    from lusebench.errors import LusebenchError
    from lusebench.leaderboard import parse_results
    from lusebench.testing.results import fake_results

    good = fake_results(num_items=812)
    good["dataset"]["coverage"] = {"recipe_set": SET, "recipes": 812, "of": 1000}
    assert parse_results(good, tmp_path / "results.json").dataset.coverage.text == f"812 of 1,000 recipes of {SET}"
    for coverage, message in (({"recipe_set": SET, "recipes": "812", "of": 1000}, "recipes should be a positive integer"),
                              ({"recipe_set": SET, "recipes": 900, "of": 1000}, "says 900 of 1000 recipes for 812 items"),
                              ("all", "dataset.coverage should be an object")):
        bad = fake_results(num_items=812)
        bad["dataset"]["coverage"] = coverage
        with pytest.raises(LusebenchError, match=message):
            parse_results(bad, tmp_path / "results.json")


def test_the_reverberant_twin_places_the_same_recipes_in_rooms_drawn_from_the_recipe(copy_a, set_a, tmp_path):
    root, _ = copy_a
    config = BENCHMARK_SETS[f"{SET}-reverb"].config(
        corpus=f"audiocaps:{root}", duration_s=1.0, rt60_range_s=(0.15, 0.25), room_length_range_m=(3.0, 3.5),
        room_width_range_m=(3.0, 3.5), room_height_range_m=(2.2, 2.5), max_image_order=6)
    config = dataclasses.replace(config, num_mixtures=4)
    simulate(config, tmp_path / "reverb", progress=False, brir_bank=tmp_path / "bank")
    reverb, anechoic = load_manifest(tmp_path / "reverb"), load_manifest(set_a)
    assert len(reverb) == 3  # recipe 0 lost its clips
    assert set(reverb["room"]) == {"reverberant"} and reverb["rt60_s"].between(0.15, 0.25).all()
    same = anechoic.set_index("mixture_id").loc[reverb["mixture_id"]]
    for column in ("clip_ids", "audiocap_ids", "azimuths_deg", "snr_db", "caption"):
        assert [list(v) if not isinstance(v, str) else v for v in reverb[column]] == \
            [list(v) if not isinstance(v, str) else v for v in same[column]]
    # A room is a function of the recipe: rendered again from a fresh bank, the same rooms.
    simulate(config, tmp_path / "again", progress=False, brir_bank=tmp_path / "bank2")
    again = load_manifest(tmp_path / "again")
    assert dataset_fingerprint(again) == dataset_fingerprint(reverb) != dataset_fingerprint(anechoic)
    assert verify(tmp_path / "reverb", progress=False, brir_bank=tmp_path / "bank").ok


def test_a_changed_caption_or_start_time_skips_its_recipes(tmp_path):
    table = _table().iloc[:3]
    clips = list(dict.fromkeys(list(table["youtube_id_0"]) + list(table["youtube_id_1"])))
    root = make_audiocaps_copy(tmp_path / "copy", EXCERPT, clips)
    rows = pd.read_csv(root / "test.csv", dtype={"audiocap_id": str, "youtube_id": str})
    changed_caption, moved = table.iloc[0], table.iloc[1]
    rows.loc[rows["audiocap_id"] == changed_caption["audiocap_id_0"], "caption"] = "A caption someone edited"
    rows.loc[rows["youtube_id"] == moved["youtube_id_1"], "start_time"] = 12345
    rows.to_csv(root / "test.csv", index=False)
    config = dataclasses.replace(_config(root), num_mixtures=3)
    simulate(config, tmp_path / "set", progress=False)
    assert load_manifest(tmp_path / "set")["mixture_id"].tolist() == [table.iloc[2]["mixture_id"]]
    missing = pd.read_csv(tmp_path / "set" / "missing.csv", dtype=str).set_index("audiocap_id")
    assert missing.loc[changed_caption["audiocap_id_0"], "reason"].endswith("differs from AudioCaps v1's")
    assert "gives start_time 12345" in missing.loc[moved["audiocap_id_1"], "reason"]


def test_workers_render_from_the_set_the_parent_opened_rather_than_probing_the_copy_again(copy_a, set_a, tmp_path,
                                                                                          monkeypatch):
    # Each spawned worker re-opened the fixed set, decoding every clip of the copy once more. Here the
    # copy loses its test.csv once the parent has opened it: a worker that opened it again would fail.
    from lusebench.simulation import writer

    root = shutil.copytree(copy_a[0], tmp_path / "copy")
    opened = writer.open_fixed_set

    def open_then_hide_the_captions(*args, **kwargs):
        fixed = opened(*args, **kwargs)
        (root / "test.csv").unlink()
        return fixed

    monkeypatch.setattr(writer, "open_fixed_set", open_then_hide_the_captions)
    simulate(_config(root), tmp_path / "set", workers=2, progress=False)
    assert dataset_fingerprint(load_manifest(tmp_path / "set")) == dataset_fingerprint(load_manifest(set_a))


def test_a_clip_too_long_silent_truncated_or_no_regular_file_is_unusable_with_its_reason(tmp_path):
    from lusebench.simulation.audiocaps_sets import open_fixed_set

    clips = _clips()
    root = make_audiocaps_copy(tmp_path / "copy", EXCERPT, clips)
    audio = root / "audio"
    long, silent, truncated, fifo = clips[:4]
    sf.write(audio / f"{long}.wav", np.full(12 * 16000, 0.1, np.float32), 16000)  # a whole video, not its segment
    sf.write(audio / f"{silent}.wav", np.zeros(16000, np.float32), 16000)
    (audio / f"{truncated}.wav").unlink()  # a FLAC's header is intact when its end is lost
    tone = 0.3 * np.sin(np.arange(16000) / 3.0) + 0.05 * np.random.default_rng(0).standard_normal(16000)
    sf.write(audio / f"{truncated}.flac", tone.astype(np.float32), 16000)
    payload = (audio / f"{truncated}.flac").read_bytes()
    (audio / f"{truncated}.flac").write_bytes(payload[: len(payload) // 2])
    (audio / f"{fifo}.wav").unlink()
    os.mkfifo(audio / f"{fifo}.wav")  # opened blindly, it would block
    fixed = open_fixed_set(SET, "test", 2, RECIPES, f"audiocaps:{root}", 16000, 16000)
    reasons = fixed.missing.set_index("youtube_id")["reason"]
    assert set(reasons.index) == {long, silent, truncated, fifo}
    assert reasons[long].endswith("12.00 s, longer than a 10 s AudioCaps segment (cut it at start_time)")
    assert reasons[silent].endswith("silent over the first 1 s")
    assert "does not decode: cannot decode audio file" in reasons[truncated] and "truncated" in reasons[truncated]
    assert reasons[fifo].startswith(f"{fifo}.wav: does not decode")
    assert fixed.coverage.clips_unusable == 4 and fixed.coverage.recipes == len(_expected_recipes(set(clips[:4])))
