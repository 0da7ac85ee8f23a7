"""Golden sets that hold on any CPU: recipes and fingerprints pinned exactly, audio within the verify bound.

The committed folders under golden/ were rendered by golden/regenerate.py. Their bytes are never
compared: the last bits of a rendered sample follow the CPU's FFT kernels, and FLAC bytes the
encoder's version (a byte-hash golden failed on every CPU but the developers').
"""

import pytest

from lusebench.fingerprint import dataset_fingerprint
from lusebench.simulation.writer import format_verify_report, load_config, load_manifest, simulate, verify

from .golden.regenerate import GOLDEN_CONFIGS, HERE

# The reverberant fingerprint holds the BRIR bank keys, hence the pyroomacoustics version: a new
# pyroomacoustics is a new reverberant set until its BRIRs are shown to be the same.
PINNED_FINGERPRINTS = {
    "anechoic-3src": "306c28405a62d7699e7ec45a87cb1aea0b523449df2c89e05ba8dfaa99439b1e",
    "reverberant-2src": "cf3b4e228e83d4555bec73076cba6d297511b6b7578497b0452a37d03a31c7d4",
}


def golden_folder(name: str):
    folder = HERE / name
    if not (folder / "manifest.parquet").is_file():
        pytest.fail(f"golden set {folder} is missing: run python tests/simulation/golden/regenerate.py")
    return folder


@pytest.mark.parametrize("name", sorted(GOLDEN_CONFIGS))
def test_golden_set_recipes_and_fingerprint_are_pinned_and_its_audio_reproduces(name, tmp_path):
    folder = golden_folder(name)
    config = GOLDEN_CONFIGS[name]
    assert load_config(folder) == config
    golden = load_manifest(folder)
    assert dataset_fingerprint(golden) == PINNED_FINGERPRINTS[name]
    simulate(config, tmp_path / "fresh", progress=False, brir_bank=tmp_path / "bank")
    assert dataset_fingerprint(load_manifest(tmp_path / "fresh")) == PINNED_FINGERPRINTS[name]
    # Every recipe re-drawn exactly, every committed sample within the bound of this CPU's rendering.
    report = verify(folder, progress=False, brir_bank=tmp_path / "bank")
    assert report.ok, format_verify_report(report)
