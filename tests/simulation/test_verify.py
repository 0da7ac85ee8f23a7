"""``simulate --verify`` by content, and a stand-in for another CPU.

Environment switches (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, OMP_NUM_THREADS) change no bit
of the rendering on one machine, so they prove nothing about another. Instead the renderer's
output is perturbed at the level of float32 rounding (relative 1e-7 noise, what other FFT kernels
do): the fingerprint, --verify and the golden sets must not notice; a real change (one sample
moved, a gain 0.1 dB off) must be caught.
"""

import hashlib
import shutil
from dataclasses import replace

import numpy as np
import pytest

from lusebench.cli import main
from lusebench.fingerprint import dataset_fingerprint
from lusebench.simulation import render
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.render import RenderedMixture
from lusebench.simulation.writer import VERIFY_BOUND_DBFS, difference_dbfs, load_manifest, simulate, verify

from .golden.regenerate import GOLDEN_CONFIGS, HERE

# Seed 11 at 2 s: two of the 20 mixtures take a headroom gain, the recipe field derived from a rendered peak.
SET = SimulationConfig(num_sources=3, num_mixtures=20, seed=11, duration_s=2.0, corpus="minicaps")


def _patch_renderer(monkeypatch, change) -> None:
    """Apply ``change`` to every binaural image the renderer returns (the dry target is no FFT output)."""
    original = render._overlap_add

    def changed(*args, **kwargs):
        out = original(*args, **kwargs)
        interferers = np.stack([change(image) for image in out.interferers])
        target = change(out.target)
        return RenderedMixture(target + interferers.sum(axis=0), target, out.dry_target, interferers)

    monkeypatch.setattr(render, "_overlap_add", changed)


def _rounding_noise(seed: int):
    rng = np.random.default_rng(seed)
    return lambda x: (x * (1.0 + 1e-7 * rng.standard_normal(x.shape))).astype(np.float32)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "set"
    simulate(SET, out, progress=False)
    return out


def test_rounding_level_perturbation_changes_neither_fingerprint_nor_verify_nor_golden(clean, tmp_path, monkeypatch):
    _patch_renderer(monkeypatch, _rounding_noise(0))
    simulate(SET, tmp_path / "other-cpu", progress=False)
    perturbed, reference = load_manifest(tmp_path / "other-cpu"), load_manifest(clean)
    assert (reference["mixture_gain"] < 1.0).sum() == 2
    assert dataset_fingerprint(perturbed) == dataset_fingerprint(reference)
    # The bytes do change: a file-hash fingerprint or golden would have called this another set.
    assert perturbed["mixture_sha256"].tolist() != reference["mixture_sha256"].tolist()
    # The "other CPU" verifies this machine's set, and this machine's golden sets, by content.
    report = verify(clean, progress=False)
    assert report.ok and report.worst_dbfs < VERIFY_BOUND_DBFS and report.byte_identical < report.files
    for name in GOLDEN_CONFIGS:
        assert verify(HERE / name, progress=False, brir_bank=tmp_path / "bank").ok
    monkeypatch.undo()
    assert verify(tmp_path / "other-cpu", progress=False).ok


@pytest.mark.parametrize(
    "change",
    [lambda x: np.roll(x, 1, axis=-1), lambda x: (x * 10 ** (-0.1 / 20)).astype(np.float32)],
    ids=["one-sample-moved", "gain-0.1dB-off"],
)
def test_a_real_change_of_the_audio_fails_verify(change, tmp_path, monkeypatch):
    config = replace(SET, num_mixtures=3)
    _patch_renderer(monkeypatch, change)
    simulate(config, tmp_path / "changed", progress=False)
    monkeypatch.undo()
    report = verify(tmp_path / "changed", progress=False)
    assert not report.ok and not report.damaged and len(report.differing) == report.files
    assert report.worst_dbfs > -70.0


def test_a_recipe_off_by_0_1_db_is_another_set_and_fails_verify(clean, tmp_path):
    shutil.copytree(clean, tmp_path / "set")
    manifest = load_manifest(tmp_path / "set")
    gains = [list(g) for g in manifest["gains"]]
    gains[4][1] *= 10 ** (0.1 / 20)
    manifest["gains"] = gains
    manifest.to_parquet(tmp_path / "set" / "manifest.parquet")
    assert dataset_fingerprint(manifest) != dataset_fingerprint(load_manifest(clean))
    report = verify(tmp_path / "set", progress=False)
    assert report.recipes_differ == ("test-3src-000004",) and not report.ok


def test_flipped_byte_and_missing_file_are_named_as_damage(clean, tmp_path, capsys):
    shutil.copytree(clean, tmp_path / "set")
    flipped = tmp_path / "set" / "audio" / "mixture" / "test-3src-000002.flac"
    payload = bytearray(flipped.read_bytes())
    payload[len(payload) // 2] ^= 0x01
    flipped.write_bytes(bytes(payload))
    (tmp_path / "set" / "audio" / "target" / "test-3src-000007.flac").unlink()
    undecodable = tmp_path / "set" / "audio" / "target" / "test-3src-000009.flac"
    undecodable.write_bytes(b"not a flac")
    manifest = load_manifest(tmp_path / "set")
    # Its checksum updated too, so that decoding is what fails.
    manifest.loc[manifest["mixture_id"] == "test-3src-000009", "target_sha256"] = hashlib.sha256(b"not a flac").hexdigest()
    manifest.to_parquet(tmp_path / "set" / "manifest.parquet")
    report = verify(tmp_path / "set", progress=False)
    assert not report.ok and len(report.damaged) == 3
    assert main(["simulate", "--verify", str(tmp_path / "set"), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL")
    assert "audio/mixture/test-3src-000002.flac: bytes differ from the manifest's sha256" in out
    assert "audio/target/test-3src-000007.flac: missing" in out
    assert "audio/target/test-3src-000009.flac: undecodable" in out


def test_verify_passes_a_clean_set_and_says_so(clean, capsys):
    assert main(["simulate", "--verify", str(clean), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "PASS: 20 mixtures, 40 files re-rendered"
    assert "bound -100 dBFS" in lines[1] and lines[2].startswith("bytes (informational): 40 of 40")


def test_difference_dbfs():
    a = np.zeros((2, 8), dtype=np.float32)
    assert difference_dbfs(a, a) == -np.inf
    b = a.copy()
    b[1, 3] = 1e-5
    assert difference_dbfs(a, b) == pytest.approx(-100.0)
