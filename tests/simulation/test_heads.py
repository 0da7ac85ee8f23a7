"""The shipped heads: checksums, horizontal rings, left-right cues, selection by name, bad heads refused."""

import hashlib

import numpy as np
import pytest

from lusebench.benchmark.metrics import gcc_phat_itd_s, ild_db
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.simulation.heads import HEADS
from lusebench.simulation.hrtf import load_hrtf, resolve_hrtf_path
from lusebench.simulation.render import Renderer

RATE = 16000
# Directions on each head's horizontal ring: KEMAR and SONICOM measure every 5 deg, the SSR sets every 1 deg.
RING = {"kemar": 72, "sonicom-1": 72, "sonicom-2": 72, "fabian": 360, "tub-kemar": 360}


def test_every_head_is_listed_with_its_ring():
    assert set(HEADS) == set(RING)


@pytest.mark.parametrize("name", sorted(RING))
def test_each_shipped_file_has_its_checksum_and_licence(name):
    head = HEADS[name]
    assert hashlib.sha256(head.path.read_bytes()).hexdigest() == head.sha256
    assert head.licence.split()[0] in head.licence_path.read_text(encoding="utf-8").replace("Creative Commons", "CC")


@pytest.mark.parametrize("name", sorted(RING))
def test_each_head_has_a_full_horizontal_ring(name):
    hrtf = load_hrtf(name, RATE)
    assert len(hrtf.azimuths_deg) == RING[name]
    step = 360.0 / RING[name]
    np.testing.assert_allclose(hrtf.azimuths_deg, np.arange(RING[name]) * step, atol=0.01)
    assert hrtf.identity == f"{HEADS[name].file}#{HEADS[name].sha256[:12]}"


@pytest.mark.parametrize("name", sorted(RING))
def test_a_source_on_the_left_is_louder_and_earlier_in_the_left_ear(name):
    renderer = Renderer(load_hrtf(name, RATE), "linear-aligned")
    noise = np.random.default_rng(0).standard_normal((1, RATE // 2)).astype(np.float32)
    for azimuth, side in ((90.0, 1.0), (270.0, -1.0)):
        image = renderer.render(noise, np.array([azimuth])).target  # (2, time)
        assert side * ild_db(image) > 6.0, (azimuth, ild_db(image))
        assert side * gcc_phat_itd_s(image, RATE) > 400e-6, (azimuth, gcc_phat_itd_s(image, RATE))


def test_a_damaged_shipped_head_is_refused(monkeypatch):
    from dataclasses import replace

    monkeypatch.setitem(HEADS, "sonicom-1", replace(HEADS["sonicom-1"], sha256="0" * 64))
    with pytest.raises(LusebenchError, match="the shipped head 'sonicom-1' .* is damaged"):
        load_hrtf("sonicom-1", RATE)


def test_names_and_paths_are_told_apart(tmp_path):
    assert resolve_hrtf_path("fabian") == HEADS["fabian"].path
    assert resolve_hrtf_path(str(tmp_path / "mine.sofa")) == tmp_path / "mine.sofa"
    with pytest.raises(LusebenchError, match="unknown head 'sonicom-3': use one of kemar, sonicom-1"):
        resolve_hrtf_path("sonicom-3")


def test_unknown_head_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", "--hrtf", "nohead", "--num", "2", "--duration", "0.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown head 'nohead'" in err and not out.exists()


def test_a_head_without_a_horizontal_ring_is_one_line(tmp_path, capsys):
    import sofar

    sofa = sofar.read_sofa(str(HEADS["kemar"].path), verify=False, verbose=False)
    raised = np.abs(sofa.SourcePosition[:, 1]) > 10.0  # keep the directions well off the horizontal plane
    sofa.Data_IR = sofa.Data_IR[raised]
    sofa.SourcePosition = sofa.SourcePosition[raised]
    path = tmp_path / "no-ring.sofa"
    sofar.write_sofa(str(path), sofa, compression=0)
    assert main(["hrtf", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "0 distinct directions near 0 deg elevation; need at least 4" in err


def test_hrtf_lists_every_head_beside_kemar(capsys):
    assert main(["hrtf"]) == 0
    out = capsys.readouterr().out
    for name, head in HEADS.items():
        assert f"{name}: " in out and head.sha256[:12] in out
    assert out.count("MIT KEMAR: ITD") == len(HEADS)


def test_simulate_renders_on_a_named_head(tmp_path):
    from lusebench.simulation.writer import load_manifest

    out = tmp_path / "s"
    assert main(["simulate", "--hrtf", "sonicom-2", "--sources", "2", "--num", "2", "--duration", "0.5",
                 "--out", str(out), "--no-progress"]) == 0
    manifest = load_manifest(out)
    assert (manifest["hrtf_sha256"] == HEADS["sonicom-2"].sha256).all()
    assert "Attribution-ShareAlike 3.0" in (out / "LICENSES.md").read_text()


def test_a_reverberant_set_takes_one_head(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", "--hrtf", "kemar,fabian", "--room", "reverberant", "--num", "2", "--duration", "0.5",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a reverberant set takes one head" in err and not out.exists()
