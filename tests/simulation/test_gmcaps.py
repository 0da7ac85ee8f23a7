"""gmcaps: the generated General-MIDI training corpus, and training on a union of corpora."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
import soundfile as sf

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.simulation import gmcaps
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.corpus import embedded_root, open_corpus, union
from lusebench.simulation.dynamic import DynamicMixingDataset

pytest.importorskip("tinysoundfont", reason="pip install --no-deps tinysoundfont==0.3.7 (README's test command)")
pytest.importorskip("pretty_midi", reason="pip install pretty_midi (in the test extra)")

from lusebench.simulation import gm  # noqa: E402

# 16-bit FLAC: another CPU's synth or resampler may round a sample to the neighbouring step.
ONE_LSB = 1 / 32768


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("gmcaps") / "gmcaps"
    assert main(["gm-corpus", "--out", str(out), "--clips", "12", "--seed", "3", "--no-progress"]) == 0
    return out


def _rows(folder):
    with (folder / "train.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_package_renders_the_embedded_gm_clips_it_was_built_with():
    # One copy of the synthesis: scripts/build_assets.py imports it, so it must reproduce minicaps.
    soundfont = gm.load_soundfont()
    names = {}
    for split in ("train", "val", "test"):
        with (embedded_root() / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            names.update({r["original_name"]: r["youtube_id"] for r in csv.DictReader(handle) if r["source"] == "gm"})
    for index in (0, 52, 66):  # a piano, the rock beat of the drum kit, a sound effect
        clip = gm.GM_CLIPS[index]
        audio = gm.condition(gm.render_gm(clip, gm.gm_notes(clip, np.random.default_rng([gm.GM_SEED, index])), soundfont),
                             gm.GM_RENDER_RATE)
        embedded, rate = sf.read(embedded_root() / "audio" / f"{names[clip.name]}.flac")
        assert rate == gm.SAMPLE_RATE and audio.shape == embedded.shape
        assert np.max(np.abs(audio - embedded)) <= 1.5 * ONE_LSB, clip.name


def test_no_held_out_program_pattern_or_caption_is_drawn():
    programs, drum_patterns, captions = gmcaps.held_out()
    # minicaps' test marimba (12) and trumpet (56), val tambourine pattern: held out.
    assert {12, 56} <= programs and "drums_tambourine" in drum_patterns and len(captions) == 68
    pairs = gmcaps.training_voices(programs, drum_patterns)
    drawn = [gmcaps.draw_clip(0, i, pairs, captions) for i in range(3000)]
    assert all(c.caption.lower() not in captions for c in drawn)
    assert not {c.voice.program for c in drawn} & programs
    assert not {c.gm_clip.pattern for c in drawn if c.voice.program is None} & drum_patterns
    # Many voices and phrasings, so text has something to generalize from.
    assert len({c.voice.name for c in drawn}) > 100 and len({c.caption for c in drawn}) > 1500


def test_a_held_out_caption_is_rephrased_not_kept():
    programs, drum_patterns, _ = gmcaps.held_out()
    pairs = [(v, p) for v, p in gmcaps.training_voices(programs, drum_patterns) if v.name == "drum kit" and p == "drums_rock"]
    free = gmcaps.draw_clip(0, 0, pairs, frozenset())
    banned = gmcaps.draw_clip(0, 0, pairs, frozenset({free.caption.lower()}))
    assert banned.caption != free.caption and banned.voice == free.voice


def test_captions_say_what_was_rendered():
    programs, drum_patterns, captions = gmcaps.held_out()
    pairs = gmcaps.training_voices(programs, drum_patterns)
    for clip in (gmcaps.draw_clip(1, i, pairs, captions) for i in range(400)):
        if clip.voice.program is not None and clip.gm_clip.pattern in ("melody", "chords", "arpeggio"):
            assert clip.voice.name in clip.caption
            assert ("low register" in clip.caption) == (clip.gm_clip.octave < clip.voice.octave)
            assert ("fast tempo" in clip.caption) == (clip.gm_clip.bpm >= 140)


def test_a_corpus_is_deterministic_and_a_prefix_of_a_larger_one(built, tmp_path):
    rows = _rows(built)
    assert len(rows) == 12 and {r["source"] for r in rows} == {"gmcaps"} and {r["licence"] for r in rows} == {"GPL-2.0-only"}
    again = tmp_path / "again"
    assert main(["gm-corpus", "--out", str(again), "--clips", "6", "--seed", "3", "--workers", "2", "--no-progress"]) == 0
    assert _rows(again) == rows[:6]
    for row in rows[:6]:
        first, rate = sf.read(built / "audio" / f"{row['youtube_id']}.flac")
        second, _ = sf.read(again / "audio" / f"{row['youtube_id']}.flac")
        assert rate == 16000 and len(first) >= 8000 and np.array_equal(first, second)
        assert abs(np.max(np.abs(first)) - 10 ** (-1 / 20)) < 2 * ONE_LSB  # peak -1 dBFS, as minicaps
    other_seed = tmp_path / "other"
    assert main(["gm-corpus", "--out", str(other_seed), "--clips", "6", "--seed", "4", "--no-progress"]) == 0
    assert [r["caption"] for r in _rows(other_seed)] != [r["caption"] for r in rows[:6]]


def test_minicaps_plus_gmcaps_trains_on_both_and_validates_on_minicaps(built):
    corpus = open_corpus(f"minicaps+audiocaps:{built}")
    minicaps = open_corpus("minicaps")
    assert len(corpus.split("train")) == len(minicaps.split("train")) + 12
    assert corpus.split("val") == minicaps.split("val") and corpus.split("test") == minicaps.split("test")
    gm_clip = corpus.clip("gmcaps-000000")
    assert corpus.audio(gm_clip, 16000).shape[0] >= 8000
    config = SimulationConfig(num_sources=2, num_mixtures=40, split="train", duration_s=0.5,
                              corpus=f"minicaps+audiocaps:{built}")
    captions_seen = set()
    dataset = DynamicMixingDataset(config, corpus=corpus)
    for i in range(40):
        item = dataset[i]
        assert item["mixture"].shape == (2, 8000)
        captions_seen.add(item["caption"])
    assert captions_seen & {clip.captions[0] for clip in corpus.split("train")[-12:]}


def test_a_union_refuses_two_clips_of_one_id():
    minicaps = open_corpus("minicaps")
    with pytest.raises(LusebenchError, match="in both"):
        union([minicaps, minicaps])


@pytest.mark.parametrize(
    "flags, expected",
    [(["--clips", "0"], "--clips must be between 1"), (["--workers", "0"], "--workers must be at least 1")],
)
def test_bad_gm_corpus_arguments(tmp_path, capsys, flags, expected):
    out = tmp_path / "out"
    assert main(["gm-corpus", "--out", str(out), *flags, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_gm_corpus_refuses_a_folder_of_other_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep")
    assert main(["gm-corpus", "--out", str(out), "--clips", "2", "--no-progress"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_gm_corpus_without_a_synthesizer_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tinysoundfont", None)  # import fails as if not installed
    out = tmp_path / "out"
    assert main(["gm-corpus", "--out", str(out), "--clips", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install --no-deps tinysoundfont" in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_replicate_trains_on_minicaps_plus_gmcaps_and_says_so(tmp_path):
    from lusebench.replicate import ReplicateConfig, replicate
    from lusebench.simulation.writer import simulate

    test = tmp_path / "test"
    simulate(SimulationConfig(num_sources=2, num_mixtures=2, seed=5, duration_s=1.0, corpus="minicaps"), test, progress=False)
    out = tmp_path / "table"
    config = ReplicateConfig(num_sources=2, preset="tiny", systems=("mlp-gcc",), test_data=test, gm_clips=3, corpus="minicaps")
    replicate(config, out, progress=False)
    assert len(_rows(out / "data" / "gmcaps-3")) == 3
    train_config = json.loads((out / "runs" / "mlp-gcc" / "train_config.json").read_text())
    assert train_config["corpus"] == f"minicaps+audiocaps:{out / 'data' / 'gmcaps-3'}"
    results = json.loads((out / "results" / "mlp-gcc" / "results.json").read_text())
    # The leaderboard names the folder, not this machine's path to it.
    assert results["system"]["name"].startswith("mlp-gcc (tiny preset, minicaps+gmcaps-3, ")  # the corpus is in the name
