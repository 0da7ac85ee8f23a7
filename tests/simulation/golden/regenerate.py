"""Re-render the golden sets that tests/simulation/test_golden.py compares against.

    python tests/simulation/golden/regenerate.py

Run it only when the protocol changes on purpose (bump PROTOCOL_VERSION), then update the pinned
fingerprints in test_golden.py with the values it prints. The golden sets pin recipes exactly and
audio to within the verify bound, so they hold on any CPU; their bytes are not compared.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from lusebench.fingerprint import dataset_fingerprint
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.writer import load_manifest, simulate

HERE = Path(__file__).parent
# Small rooms and a low image order keep the reverberant set to about a second.
TINY_ROOMS = dict(
    room="reverberant", rt60_range_s=(0.15, 0.25), room_length_range_m=(3.0, 3.5), room_width_range_m=(3.0, 3.5),
    room_height_range_m=(2.2, 2.5), max_image_order=6,
)
GOLDEN_CONFIGS: dict[str, SimulationConfig] = {
    "anechoic-3src": SimulationConfig(num_sources=3, num_mixtures=2, seed=7, duration_s=0.5, corpus="minicaps"),
    "reverberant-2src": SimulationConfig(num_sources=2, num_mixtures=2, seed=3, duration_s=0.5, corpus="minicaps", **TINY_ROOMS),
}


def main() -> int:
    for name, config in GOLDEN_CONFIGS.items():
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        with tempfile.TemporaryDirectory() as bank:
            simulate(config, folder, progress=False, brir_bank=bank)
        shutil.rmtree(folder / ".rows")  # resume markers: not part of the set
        print(f"{name}: {dataset_fingerprint(load_manifest(folder))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
