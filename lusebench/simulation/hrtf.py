"""HRTF sets from SOFA files: horizontal-plane HRIRs at any sample rate, any azimuth.

Azimuth convention (SOFA's): degrees, 0 = front, 90 = left, counter-clockwise.

Interpolation between the measured directions is *time-aligned linear*: each measured HRIR is
split into its onset delay (the ITD carrier) and the delay-free remainder; both are interpolated
linearly in azimuth and recombined. Linear interpolation of raw HRIRs would average two impulses
some tens of microseconds apart and notch the high frequencies (a comb filter); aligning first
avoids that, and the delay itself varies smoothly with azimuth. spaudiopy's spherical-harmonic
interpolation needs a full sphere of directions and does not apply to a single horizontal ring,
which is all the paper's protocol uses. ``nearest`` snaps to the closest measured direction.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, open_regular, sha256_file
from lusebench.simulation.heads import HEADS
from lusebench.simulation.resample import resample_poly

log = logging.getLogger(__name__)

KEMAR_FILE = HEADS["kemar"].file
# Above the highest rate of common audio hardware a "rate" is a typo, and would allocate
# resampling filters of its length (100 GHz asked for 149 GiB before this bound).
MAX_SAMPLE_RATE = 192_000
MIN_SOFA_RATE = 8000
# Far above any measured HRTF set (KEMAR's file is 1.4 MB, large sets ~100 MB) and any HRIR's length.
MAX_SOFA_BYTES = 1 << 30
MAX_TAPS = 1 << 16
# A measured direction counts as horizontal within this elevation; KEMAR's ring is exactly 0 deg.
_HORIZONTAL_TOLERANCE_DEG = 2.5
# Onsets are found on an 8x upsampled IR, so delays resolve to 1/8 sample.
_ONSET_UPSAMPLE = 8
# Onset = first sample within 20 dB of the IR's peak (the usual threshold ITD estimator).
_ONSET_THRESHOLD = 0.1


def kemar_path() -> Path:
    """Path of the MIT KEMAR SOFA file shipped in the package."""
    return HEADS["kemar"].path


def resolve_hrtf_path(spec: str) -> Path:
    """A shipped head's name (``kemar``, ``sonicom-1``, ...; heads.py) -> its file; a path -> itself.

    Raises:
        LusebenchError: ``spec`` names no shipped head and is not a path either (no folder, no suffix).
    """
    if spec in HEADS:
        return HEADS[spec].path
    path = Path(spec)
    if not path.suffix and len(path.parts) == 1 and not path.exists():
        raise LusebenchError(f"unknown head {spec!r}: use one of {', '.join(HEADS)} or a path to a SOFA file")
    return path


def split_heads(spec: str) -> tuple[str, ...]:
    """The heads of a comma-separated list (``kemar,sonicom-1``), each resolvable, none repeated.

    Dynamic mixing draws one of them per mixture; a rendered set takes a list of one.

    Raises:
        LusebenchError: an empty entry, a repeated one, an unknown name or a missing file.
    """
    heads = tuple(part.strip() for part in str(spec).split(","))
    if any(not head for head in heads) or len(set(heads)) != len(heads):
        raise LusebenchError(f"--hrtf {spec!r}: give heads as a comma-separated list without blanks or repeats")
    for head in heads:
        if not resolve_hrtf_path(head).exists():  # load_hrtf refuses what is not a regular file
            raise LusebenchError(f"HRTF file not found: {head}")
    return heads


def draw_head(heads: tuple[str, ...], key: list[int]) -> str:
    """One of ``heads``, drawn uniformly from ``np.random.default_rng(key)``; the only one without a draw."""
    if len(heads) == 1:
        return heads[0]
    return heads[int(np.random.default_rng(key).integers(len(heads)))]


def _check_shipped(spec: str, digest: str) -> None:
    """A shipped head's file must be the one its checksum names (a set's fingerprint relies on it)."""
    head = HEADS.get(spec)
    if head is not None and digest != head.sha256:
        raise LusebenchError(f"the shipped head {spec!r} ({head.path}) is damaged: sha256 {digest[:12]}..., expected {head.sha256[:12]}...")


@dataclass(frozen=True)
class HrtfSet:
    """Horizontal-plane HRIRs of one SOFA file at one sample rate.

    Attributes:
        azimuths_deg: (M,) measured azimuths, sorted ascending in [0, 360).
        hrirs: (M, 2, L) impulse responses, ears ordered (left, right).
        onsets: (M, 2) onset delay of each HRIR, in samples (fractional).
        sample_rate: Hz.
        identity: file name + sha256 prefix of the SOFA file, recorded in every recipe.
        sha256: the SOFA file's full sha256, part of a set's fingerprint.
        source_sample_rate: the file's own rate before resampling.
        num_directions_total: measured directions in the file, all elevations.
    """

    azimuths_deg: np.ndarray
    hrirs: np.ndarray
    onsets: np.ndarray
    sample_rate: int
    identity: str
    sha256: str
    source_sample_rate: int
    num_directions_total: int

    @property
    def num_taps(self) -> int:
        return int(self.hrirs.shape[-1])

    def neighbours(self, azimuth_deg: float) -> tuple[int, int, float]:
        """The two measured directions around ``azimuth_deg`` on the ring, and the weight of the second."""
        az = azimuth_deg % 360.0
        grid = self.azimuths_deg
        upper = int(np.searchsorted(grid, az, side="right")) % len(grid)
        lower = (upper - 1) % len(grid)
        span = (grid[upper] - grid[lower]) % 360.0
        weight = 0.0 if span == 0.0 else ((az - grid[lower]) % 360.0) / span
        return lower, upper, float(weight)

    def nearest(self, azimuth_deg: float) -> int:
        distance = np.abs((self.azimuths_deg - azimuth_deg + 180.0) % 360.0 - 180.0)
        return int(np.argmin(distance))


def _onsets(hrirs: np.ndarray) -> np.ndarray:
    """Onset delay in samples of each IR in ``hrirs`` (..., L), to 1/8 sample."""
    up = resample_poly(hrirs, _ONSET_UPSAMPLE, 1, axis=-1)
    magnitude = np.abs(up)
    above = magnitude >= _ONSET_THRESHOLD * magnitude.max(axis=-1, keepdims=True)
    return above.argmax(axis=-1) / _ONSET_UPSAMPLE


def _ear_order(receiver_positions: np.ndarray) -> tuple[int, int]:
    """Indices of (left, right) receivers: SOFA puts +y on the left."""
    y = receiver_positions[:, 1]
    if len(y) != 2 or y[0] == y[1]:
        return 0, 1
    return (0, 1) if y[0] > y[1] else (1, 0)


@dataclass(frozen=True)
class SofaHrirs:
    """Every measured direction of a SOFA file, as read.

    Attributes:
        path: the file.
        hrirs: (M, 2, N) float64 impulse responses, ears ordered (left, right), at ``sample_rate``.
        positions: (M, 3) spherical source positions: azimuth (deg), elevation (deg), distance.
        sample_rate: the file's rate, Hz.
    """

    path: Path
    hrirs: np.ndarray
    positions: np.ndarray
    sample_rate: int


def read_sofa(spec: str | Path) -> SofaHrirs:
    """Read a SOFA file (``SimpleFreeFieldHRIR``): a shipped head's name (heads.py), or a path.

    Raises:
        LusebenchError: when the file is missing, unreadable or not a binaural HRIR set.
    """
    import sofar  # deferred: sofar imports netCDF4 and takes a moment

    path = resolve_hrtf_path(str(spec))
    if not (path.exists() or path.is_symlink()):
        raise LusebenchError(f"HRTF file not found: {path}")
    # netCDF reads the file by its name: check it is a regular file of a bounded size first, so a
    # FIFO in its place fails at once instead of blocking (lusebench/io.py).
    with open_regular(path, max_bytes=MAX_SOFA_BYTES):
        pass
    try:
        sofa = sofar.read_sofa(str(path), verify=False, verbose=False)
        data_ir = np.asarray(sofa.Data_IR, dtype=np.float64)  # (M, R, N)
        rate = int(round(float(np.asarray(sofa.Data_SamplingRate).ravel()[0])))
        positions = np.asarray(sofa.SourcePosition, dtype=np.float64)  # (M, 3)
        position_type = str(sofa.SourcePosition_Type)
        receivers = np.asarray(sofa.ReceiverPosition, dtype=np.float64).reshape(-1, 3)
    except Exception as error:  # sofar/netCDF4 raise many types for a bad file
        raise LusebenchError(f"cannot read SOFA file {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    if data_ir.ndim != 3 or data_ir.shape[1] != 2:
        raise LusebenchError(f"SOFA file {path} is not a binaural HRIR set (Data.IR shape {data_ir.shape})")
    if data_ir.shape[-1] > MAX_TAPS:
        raise LusebenchError(f"SOFA file {path} holds {data_ir.shape[-1]}-tap responses; an HRIR has at most {MAX_TAPS}")
    if rate <= 0:
        raise LusebenchError(f"SOFA file {path} has sample rate {rate} Hz; it must be positive")
    # Resampling builds filters of the rates' length: 1 Hz asked for 9 GiB, 1e11 Hz ran until killed.
    if not MIN_SOFA_RATE <= rate <= MAX_SAMPLE_RATE:
        raise LusebenchError(f"SOFA file {path} has sample rate {rate} Hz; it must lie in [{MIN_SOFA_RATE}, {MAX_SAMPLE_RATE}] Hz")
    if positions.ndim != 2 or positions.shape != (data_ir.shape[0], 3) or not np.isfinite(positions).all():
        raise LusebenchError(f"SOFA file {path} has source positions that are not {data_ir.shape[0]} finite 3-vectors")
    if not np.isfinite(data_ir).all():
        raise LusebenchError(f"SOFA file {path} holds NaN or Inf in its impulse responses")
    # Silent responses would render every mixture silent, and every metric on it undefined.
    silent = ~np.any(data_ir, axis=-1)  # (M, 2)
    if silent.all():
        raise LusebenchError(f"SOFA file {path} holds only all-zero impulse responses")
    if position_type != "spherical":
        positions = _cartesian_to_spherical(positions)
    left, right = _ear_order(receivers)
    return SofaHrirs(path=path, hrirs=data_ir[:, [left, right], :], positions=positions, sample_rate=rate)


def resample_hrirs(hrirs: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    """``hrirs`` (..., N) from ``rate`` to ``sample_rate`` (polyphase, zero-phase)."""
    if rate == sample_rate:
        return hrirs
    gcd = math.gcd(rate, sample_rate)
    return resample_poly(hrirs, sample_rate // gcd, rate // gcd, axis=-1)


def load_hrtf(spec: str | Path, sample_rate: int, sofa: SofaHrirs | None = None) -> HrtfSet:
    """Read a SOFA file (``SimpleFreeFieldHRIR``) and keep its horizontal ring at ``sample_rate``.

    Args:
        spec: a shipped head's name (``kemar``, the default MIT KEMAR; heads.py), or a path to any SOFA file.
        sample_rate: target rate in Hz; the HRIRs are resampled (polyphase, zero-phase).
        sofa: the file already read with :func:`read_sofa`, to read it once.

    Raises:
        LusebenchError: when the file is missing, unreadable, not an HRIR set, or has fewer than
            four directions near zero elevation.
    """
    # The SOFA files' own range: 1 Hz resampled every head to a one-tap HRIR without a word.
    if not MIN_SOFA_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise LusebenchError(f"sample rate must lie in [{MIN_SOFA_RATE}, {MAX_SAMPLE_RATE}] Hz, got {sample_rate}")
    sofa = read_sofa(spec) if sofa is None else sofa
    path, positions = sofa.path, sofa.positions
    elevation = positions[:, 1]
    ring = np.flatnonzero(np.abs(elevation) <= _HORIZONTAL_TOLERANCE_DEG)
    azimuths = positions[ring, 0] % 360.0
    # Keep the measurement closest to 0 elevation for each azimuth.
    order = np.lexsort((np.abs(elevation[ring]), azimuths))
    azimuths, ring = azimuths[order], ring[order]
    keep = np.diff(azimuths, prepend=-np.inf) > 1e-6
    azimuths, ring = azimuths[keep], ring[keep]
    if len(ring) < 4:  # counted after merging repeats: directions all at one point are one direction
        raise LusebenchError(f"SOFA file {path} has {len(ring)} distinct directions near 0 deg elevation; need at least 4")
    hrirs = resample_hrirs(sofa.hrirs[ring], sofa.sample_rate, sample_rate)  # (M, 2, N)
    digest = sha256_file(path)
    _check_shipped(str(spec), digest)
    log.debug("HRTF %s: %d horizontal directions, %d taps at %d Hz", path.name, len(ring), hrirs.shape[-1], sample_rate)
    return HrtfSet(
        azimuths_deg=azimuths,
        hrirs=np.ascontiguousarray(hrirs),
        onsets=_onsets(hrirs),
        sample_rate=sample_rate,
        identity=f"{path.name}#{digest[:12]}",
        sha256=digest,
        source_sample_rate=sofa.sample_rate,
        num_directions_total=int(sofa.hrirs.shape[0]),
    )


def _cartesian_to_spherical(xyz: np.ndarray) -> np.ndarray:
    x, y, z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    radius = np.sqrt(x**2 + y**2 + z**2)
    azimuth = np.degrees(np.arctan2(y, x)) % 360.0
    elevation = np.degrees(np.arcsin(np.divide(z, radius, out=np.zeros_like(z), where=radius > 0)))
    return np.stack([azimuth, elevation, radius], axis=1)


def itd_ild(hrtf: HrtfSet) -> tuple[np.ndarray, np.ndarray]:
    """ITD (s, positive = left ear first) and broadband ILD (dB, positive = left louder) per measured azimuth."""
    itd = (hrtf.onsets[:, 1] - hrtf.onsets[:, 0]) / hrtf.sample_rate
    energy = np.sum(hrtf.hrirs**2, axis=-1)
    ild = 10.0 * np.log10(energy[:, 0] / energy[:, 1])
    return itd, ild


def describe(hrtf: HrtfSet) -> str:
    """A few lines on what an HRTF set holds, with its ITD and ILD at the cardinal directions."""
    itd, ild = itd_ild(hrtf)
    lines = [
        f"HRTF {hrtf.identity}",
        f"  directions in file: {hrtf.num_directions_total}; on the horizontal ring: {len(hrtf.azimuths_deg)} "
        f"(azimuth step {np.median(np.diff(hrtf.azimuths_deg)):.1f} deg)",
        f"  sample rate: {hrtf.source_sample_rate} Hz in file, {hrtf.sample_rate} Hz here; {hrtf.num_taps} taps",
        "  azimuth   ITD (us, + = left first)   ILD (dB, + = left louder)",
    ]
    for azimuth in (0.0, 90.0, 180.0, 270.0):
        i = hrtf.nearest(azimuth)
        lines.append(f"  {hrtf.azimuths_deg[i]:7.1f}   {itd[i] * 1e6:22.0f}   {ild[i]:25.1f}")
    return "\n".join(lines)


def cues_at_deg(hrtf: HrtfSet, azimuth_deg: float = 90.0) -> tuple[float, float]:
    """(ITD in us, ILD in dB) of the measured direction nearest ``azimuth_deg``: 90 is the left side,
    where heads differ most in both."""
    itd, ild = itd_ild(hrtf)
    i = hrtf.nearest(azimuth_deg)
    return float(itd[i] * 1e6), float(ild[i])


def beside_kemar(hrtf: HrtfSet) -> str:
    """One line: ``hrtf``'s ITD and ILD at 90 deg beside MIT KEMAR's at the same rate."""
    itd, ild = cues_at_deg(hrtf)
    kemar_itd, kemar_ild = cues_at_deg(load_hrtf("kemar", hrtf.sample_rate))
    return f"  at 90 deg (left): ITD {itd:.0f} us, ILD {ild:.1f} dB; MIT KEMAR: ITD {kemar_itd:.0f} us, ILD {kemar_ild:.1f} dB"


def describe_heads(sample_rate: int) -> str:
    """Every shipped head (heads.py): name, licence, what it is, and its cues at 90 deg beside KEMAR's."""
    lines = [f"shipped heads (--hrtf NAME), cues at {sample_rate} Hz:"]
    for head in HEADS.values():
        hrtf = load_hrtf(head.name, sample_rate)
        lines += [
            f"{head.name}: {head.description}",
            f"  licence: {head.licence} (lusebench/assets/hrtf/{head.licence_file}); file {head.file}, sha256 {head.sha256[:12]}",
            beside_kemar(hrtf),
        ]
    return "\n".join(lines)


def plot_itd_ild(hrtf: HrtfSet, path: Path) -> None:
    """Plot ITD and ILD against azimuth into ``path`` (any matplotlib format)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    formats = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if path.suffix.lower().lstrip(".") not in formats:
        raise LusebenchError(f"--plot {path}: unknown file type {path.suffix!r}; use one of .{', .'.join(sorted(formats))}")
    itd, ild = itd_ild(hrtf)
    fig, (ax_itd, ax_ild) = plt.subplots(2, 1, figsize=(3.5, 4.0), sharex=True, constrained_layout=True)
    ax_itd.plot(hrtf.azimuths_deg, itd * 1e6, marker=".")
    ax_itd.set_ylabel("ITD (µs)")
    ax_ild.plot(hrtf.azimuths_deg, ild, marker=".", color="tab:orange")
    ax_ild.set_ylabel("ILD (dB)")
    ax_ild.set_xlabel("azimuth (deg, 90 = left)")
    ax_ild.set_xticks(range(0, 361, 90))
    ax_itd.set_title(hrtf.identity.split("#")[0], fontsize=8)
    for ax in (ax_itd, ax_ild):
        ax.grid(alpha=0.3)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=150, format=path.suffix.lower().lstrip(".")))
    except OSError as error:
        raise LusebenchError(f"cannot write --plot {path}: {error.strerror or error}") from None
    finally:
        plt.close(fig)
