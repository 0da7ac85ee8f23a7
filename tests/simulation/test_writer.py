import json
import shutil

import pytest

from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.simulation import writer
from lusebench.simulation.config import SCHEMA_VERSION, SimulationConfig
from lusebench.simulation.writer import Shard, load_manifest, simulate

from .conftest import checksums


def test_same_config_gives_identical_files(tmp_path, small_config):
    simulate(small_config, tmp_path / "a", progress=False)
    simulate(small_config, tmp_path / "b", progress=False)
    assert checksums(tmp_path / "a") == checksums(tmp_path / "b")
    manifest = load_manifest(tmp_path / "a")
    assert list(manifest["mixture_id"]) == [f"test-3src-{i:06d}" for i in range(6)]
    assert (manifest["schema_version"] == SCHEMA_VERSION).all()
    assert manifest["angular_separation_deg"].between(0, 180).all()


def test_workers_and_shards_give_the_same_set(tmp_path, small_config):
    simulate(small_config, tmp_path / "one", progress=False)
    simulate(small_config, tmp_path / "two", workers=2, progress=False)
    assert checksums(tmp_path / "one") == checksums(tmp_path / "two")
    # Two machines render halves into their own copies; the copies are merged afterwards.
    assert simulate(small_config, tmp_path / "s0", shard=Shard(0, 2), progress=False) is None
    assert simulate(small_config, tmp_path / "s1", shard=Shard(1, 2), progress=False) is None
    shutil.copytree(tmp_path / "s1", tmp_path / "s0", dirs_exist_ok=True)
    assert simulate(small_config, tmp_path / "s0", shard=Shard(1, 2), progress=False) is not None
    assert checksums(tmp_path / "one") == checksums(tmp_path / "s0")


def test_rerun_resumes_and_rerenders_a_damaged_file(tmp_path, small_config, monkeypatch):
    out = tmp_path / "set"
    calls = []
    original = writer.draw_recipe

    def interrupted(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(writer, "draw_recipe", interrupted)
    with pytest.raises(KeyboardInterrupt):
        simulate(small_config, out, progress=False)
    assert len(list((out / ".rows").glob("*.json"))) == 3
    assert not (out / "manifest.parquet").exists()
    monkeypatch.setattr(writer, "draw_recipe", original)
    (out / "audio" / "target" / "test-3src-000001.flac").write_bytes(b"damaged")
    simulate(small_config, out, progress=False)
    simulate(small_config, tmp_path / "clean", progress=False)
    assert checksums(out) == checksums(tmp_path / "clean")


def test_save_sources_writes_dry_and_interferers(tmp_path, small_config):
    from dataclasses import replace

    simulate(replace(small_config, save_sources=True, audio_format="wav"), tmp_path / "set", progress=False)
    row = load_manifest(tmp_path / "set").iloc[0]
    assert (tmp_path / "set" / row["dry_path"]).is_file()
    assert (tmp_path / "set" / row["interferer2_path"]).is_file()
    assert row["mixture_path"].endswith(".wav")


def test_other_set_in_the_same_folder_is_refused(tmp_path, small_config):
    from dataclasses import replace

    simulate(small_config, tmp_path / "set", progress=False)
    with pytest.raises(LusebenchError, match="sample_rate"):
        simulate(replace(small_config, sample_rate=22050), tmp_path / "set", progress=False)


def _cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, corpus_spec, capsys):
    out = tmp_path / "out"
    base = ["simulate", "--corpus", corpus_spec, "--duration", "0.5", "--num", "2", "--no-progress"]
    assert "at least 2" in _cli_error(capsys, base + ["--sources", "1", "--out", str(out)])
    assert "at most" in _cli_error(capsys, base[:-3] + ["--num", "100000", "--out", str(out)])
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "cannot write" in _cli_error(capsys, base + ["--out", str(blocker / "sub")])
    assert not out.exists()


def test_missing_and_corrupt_audio_are_named(tmp_path, capsys):
    from lusebench.testing.corpus import make_corpus

    root = make_corpus(tmp_path / "corpus", clips_per_split=4)
    argv = ["simulate", "--corpus", f"audiocaps:{root}", "--sources", "2", "--num", "2", "--out", str(tmp_path / "o")]
    (root / "audio" / "syn0009.wav").write_bytes(b"RIFF garbage")
    assert "syn0009.wav" in _cli_error(capsys, argv)
    (root / "audio" / "syn0009.wav").unlink()
    assert "syn0009" in _cli_error(capsys, argv)
    assert not (tmp_path / "o").exists()


def test_hrtf_errors_are_named(tmp_path, corpus_spec, capsys):
    bad = tmp_path / "bad.sofa"
    bad.write_text("nope")
    err = _cli_error(capsys, ["simulate", "--corpus", corpus_spec, "--hrtf", str(bad), "--num", "1", "--out", str(tmp_path / "o")])
    assert "bad.sofa" in err
    assert not (tmp_path / "o").exists()


def test_config_is_written_beside_the_set(tmp_path, small_config):
    simulate(small_config, tmp_path / "set", progress=False)
    stored = json.loads((tmp_path / "set" / "config.json").read_text())
    assert SimulationConfig.from_dict({k: v for k, v in stored.items() if k not in ("schema_version", "lusebench_version")}) == small_config


def test_anechoic_and_reverberant_manifests_share_one_schema_and_concatenate():
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lusebench.simulation.writer import MANIFEST_SCHEMA

    from .golden.regenerate import HERE

    tables = [pq.read_table(HERE / name / "manifest.parquet") for name in ("anechoic-3src", "reverberant-2src")]
    for table in tables:
        assert table.schema.remove_metadata().names[: len(MANIFEST_SCHEMA)] == MANIFEST_SCHEMA.names
        assert all(table.schema.field(f.name).type == f.type for f in MANIFEST_SCHEMA)
    both = pa.concat_tables(tables).to_pandas()
    anechoic = both[both["room"] == "anechoic"]
    assert anechoic["room_dims_m"].isna().all() and anechoic["drr_db"].isna().all()
    assert both.loc[both["room"] == "reverberant", "distances_m"].map(len).eq(2).all()


def test_headroom_gain_is_on_a_0_1_db_grid_and_never_lets_the_peak_exceed_the_limit():
    import math

    from lusebench.simulation.recipe import PEAK_LIMIT, headroom_gain

    for peak in (0.9901, 1.0, 1.37, 2.9):
        gain = headroom_gain(peak)
        steps = -200 * math.log10(gain)
        assert abs(steps - round(steps)) < 1e-4 and peak * gain <= PEAK_LIMIT
        assert peak * gain * 10 ** (0.1 / 20) > PEAK_LIMIT  # no more than one step of extra headroom
