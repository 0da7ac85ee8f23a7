"""The heads (HRTF sets) shipped in the package, selectable by name (``--hrtf sonicom-1``).

Each is a SOFA file in ``lusebench/assets/hrtf`` with its sha256 (checked on every load: a set's
fingerprint names the file by its checksum), a licence file beside it, and a line saying what it
is. MIT KEMAR stays the default; the others let a system be trained or tested on another listener.
``scripts/build_heads.py`` rebuilds every file but KEMAR's (``scripts/build_assets.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Head:
    """One shipped head.

    Attributes:
        name: what ``--hrtf`` takes.
        file: the SOFA file in ``lusebench/assets/hrtf``.
        sha256: the file's checksum.
        description: what was measured, how, and where the file comes from.
        licence: the licence, as the source states it.
        licence_file: the file in ``lusebench/assets/hrtf`` with the licence, provenance and citation.
    """

    name: str
    file: str
    sha256: str
    description: str
    licence: str
    licence_file: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("lusebench").joinpath("assets", "hrtf", self.file)))

    @property
    def licence_path(self) -> Path:
        return Path(str(resources.files("lusebench").joinpath("assets", "hrtf", self.licence_file)))


HEADS: dict[str, Head] = {
    head.name: head
    for head in (
        Head(
            "kemar", "MIT_KEMAR_normal_pinna.sofa",
            "2768ac841213a7ae11d1ea7fd0f25a69b39216102dc5dd913ea6ba0f0dc57e28",
            "MIT KEMAR dummy head, normal pinna (Gardner & Martin, MIT Media Lab, 1994): 710 directions, "
            "5 deg on the horizontal ring, 512 taps, 44.1 kHz; Debian libmysofa1",
            "free to use with citation (MIT Media Lab)", "LICENSE.md",
        ),
        Head(
            "sonicom-1", "SONICOM_AXD_subject_1.sofa",
            "414f9300bbf13c59dfb2d4034d3003ae151b10d6fa8b6ca17a24a04f1b20946e",
            "a human subject of the SONICOM / AXD HRTF set (Imperial College London, 2022; in-ear, blocked "
            "canal): 793 directions, 5 deg on the horizontal ring, 256 taps, 48 kHz; example_sofa_1.sofa "
            "of the spatialaudiometrics 0.1.2 wheel",
            "CC BY-SA 3.0", "SONICOM.md",
        ),
        Head(
            "sonicom-2", "SONICOM_AXD_subject_2.sofa",
            "dff96d330c7988c92173298a28053b725a9a004c2f8e49d60d8ad04ac7b58d70",
            "another human subject of the SONICOM / AXD HRTF set (Imperial College London, 2022): 793 "
            "directions, 5 deg on the horizontal ring, 256 taps, 48 kHz; example_sofa_2.sofa of the "
            "spatialaudiometrics 0.1.2 wheel",
            "CC BY-SA 3.0", "SONICOM.md",
        ),
        Head(
            "fabian", "SSR_FABIAN_min_phase_eq.sofa",
            "2ca9d13a1a11123e1df398867faa9d6154f90253531d7bb50372c19dbd552402",
            "FABIAN head and torso simulator (TU Berlin; Lindau & Weinzierl, 2007), horizontal plane only, "
            "1 deg steps, minimum phase with its delays, equalized, 1024 taps, 44.1 kHz; converted from "
            "Debian soundscaperenderer-common 0.6.0",
            "GPL-3+", "SSR.md",
        ),
        Head(
            "tub-kemar", "SSR_TUB_KEMAR.sofa",
            "490f3ad484c6de236582e6cd3d2a87ddb6a0d637ddec1bedfaf3d3a9602edb4b",
            "KEMAR measured at TU Berlin (Wierstorf et al., 2011), low-frequency corrected, horizontal plane "
            "only, 1 deg steps, 512 taps, 44.1 kHz; converted from Debian soundscaperenderer-common 0.6.0",
            "GPL-3+", "SSR.md",
        ),
    )
}
