"""Reverberant shoebox rooms: binaural room impulse responses (BRIRs) from pyroomacoustics.

The room's image sources come from pyroomacoustics' image source model (``ShoeBox``, one
frequency-flat wall absorption). Each image source reaches the head from some direction, and
the HRTF set is the receiver's directivity, as in pyroomacoustics' ``MeasuredDirectivity``:
the impulse response measured in the closest direction of the set filters that arrival, so the
direct path and every reflection are heard through the ears. Both ears sit at the centre of the
head because the HRIRs already hold the interaural delay.

Two departures from ``room.compute_rir()``, neither changing the result beyond float rounding
(tests/simulation/test_rooms.py compares them):

* The arrivals are grouped by HRTF direction and each group's train of fractionally delayed
  impulses is convolved once with its HRIR pair, instead of convolving every image source with
  its HRIR (7.8 s for one source at order 49 here, against ~0.1 s grouped, see binaural_rir).
* pyroomacoustics' own SOFA reader needs the ``python-sofa`` package, and snaps to the measured
  grid (5 deg on KEMAR's horizontal ring). The directions here are read with ``sofar`` and the
  horizontal ring is densified to 1 deg with the onset-aligned interpolation of
  :mod:`lusebench.simulation.hrtf`, so the direct path of a source on the ring is off the
  labelled azimuth by at most 0.5 deg.

RT60: the wall absorption that Sabine's formula gives for the drawn RT60 misses the image
source model's decay by up to ~30% in flat rooms. So it is calibrated: the reflection count of
each image source is known, its energy is ``(1 - a)^n / d^2``, and a few fixed-point steps on
``a`` bring the T30 of that energy decay (Schroeder backward integration) to the drawn RT60.
The calibration runs once per room, on the target's image sources, so all sources of a mixture
hear the same walls. Where the order cap truncates the decay (small rooms, long RT60) the
calibration lowers the absorption to compensate: the T30 is right, the late tail is thinner.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lusebench.errors import LusebenchError
from lusebench.simulation.hrtf import load_hrtf, read_sofa, resample_hrirs

log = logging.getLogger(__name__)

# Height of the ears above the floor (a seated or short standing listener), metres.
HEAD_HEIGHT_M = 1.5
# Sources and the head keep this far from every wall, metres.
WALL_MARGIN_M = 0.5
# Step of the densified horizontal ring of HRIRs, degrees.
RING_STEP_DEG = 1.0
SPEED_OF_SOUND = 343.0
# Version of the BRIR computation: part of every bank key, bump when the numbers change beyond float
# rounding (a faster computation of the same BRIR, within -120 dB of its peak, keeps the version, so
# banks and reverberant fingerprints stay valid).
BRIR_METHOD = "ism-grouped-v4"
# Chord distances between unit vectors closer than this are a tie (float rounding is ~1e-16).
_TIE_DISTANCE = 1e-9
_CALIBRATION_STEPS = 4
# FFT size of the BRIR synthesis' partitioned convolution. Fixed, so that each direction's HRIR
# spectrum is computed once per HRTF set and cached (~33 MB for KEMAR's ~1,000 directions), where
# one FFT of the whole BRIR needed every used direction's HRIR transformed again for every source.
_SYNTHESIS_NFFT = 4096
# Directions transformed per batch: their trains (~0.1 MB each) and spectra stay in the CPU cache
# (measured: 8-16 run ~2x faster than 256).
_DIRECTION_CHUNK = 8


@dataclass(frozen=True)
class RoomRanges:
    """Documented ranges that the reverberant condition draws from, uniformly.

    Attributes:
        rt60_s: reverberation time (T30, extrapolated to 60 dB).
        length_m, width_m, height_m: room size along x (the head faces +x), y (+y = left) and z.
        distance_m: source distance from the centre of the head.
        max_image_order: cap on the image source order (the cost grows with its cube). At 40,
            the smallest room with the longest RT60 (5 x 4 x 2.7 m, 0.7 s) still decays 35 dB
            within the simulated images, so its T30 is measurable (0.65 s measured).
    """

    rt60_s: tuple[float, float] = (0.2, 0.7)
    length_m: tuple[float, float] = (5.0, 9.0)
    width_m: tuple[float, float] = (4.0, 7.0)
    height_m: tuple[float, float] = (2.7, 3.5)
    distance_m: tuple[float, float] = (1.0, 2.5)
    max_image_order: int = 40

    def check(self) -> None:
        for name in ("rt60_s", "length_m", "width_m", "height_m", "distance_m"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise LusebenchError(f"room range {name} must satisfy 0 < low <= high, got {(low, high)}")
        reach = 2 * (WALL_MARGIN_M + self.distance_m[0])
        if min(self.length_m[0], self.width_m[0]) < reach:
            raise LusebenchError(
                f"rooms must be at least {reach:.1f} m long and wide so that a source at {self.distance_m[0]} m fits"
            )
        if self.height_m[0] < HEAD_HEIGHT_M + WALL_MARGIN_M:
            raise LusebenchError(f"rooms must be at least {HEAD_HEIGHT_M + WALL_MARGIN_M} m high")
        if self.max_image_order < 1:
            raise LusebenchError(f"max_image_order must be at least 1, got {self.max_image_order}")


@dataclass(frozen=True)
class RoomDraw:
    """One drawn room and where everyone stands in it (metres, room coordinates).

    The head is at ``listener_m`` facing +x with its left ear towards +y, so a source's azimuth
    relative to the head is its azimuth in the room.
    """

    dims_m: tuple[float, float, float]
    listener_m: tuple[float, float, float]
    sources_m: tuple[tuple[float, float, float], ...]
    distances_m: tuple[float, ...]
    rt60_s: float


def _round(x: float) -> float:
    # Millimetres: positions print and hash the same on every machine.
    return round(float(x), 3)


def _reach(listener: np.ndarray, dims: np.ndarray, azimuth_deg: float) -> float:
    """Distance from the listener to the wall margin along the horizontal direction ``azimuth_deg``."""
    direction = np.array([math.cos(math.radians(azimuth_deg)), math.sin(math.radians(azimuth_deg))])
    limits = []
    for axis in range(2):
        if abs(direction[axis]) > 1e-12:
            wall = dims[axis] - WALL_MARGIN_M if direction[axis] > 0 else WALL_MARGIN_M
            limits.append((wall - listener[axis]) / direction[axis])
    return float(min(limits))


def draw_room(rng: np.random.Generator, azimuths_deg: tuple[float, ...], ranges: RoomRanges) -> RoomDraw:
    """Draw a room, the listener's position and each source's distance at its given azimuth.

    Args:
        rng: the mixture's generator, after every anechoic draw.
        azimuths_deg: (S,) azimuth of each source relative to the head, target first.
        ranges: where to draw from.

    Returns:
        The room; sources lie on the horizontal plane of the ears, inside the wall margin.
    """
    dims = np.array([_round(rng.uniform(*ranges.length_m)), _round(rng.uniform(*ranges.width_m)),
                     _round(rng.uniform(*ranges.height_m))])
    rt60 = _round(rng.uniform(*ranges.rt60_s))
    # The head stays far enough from the walls that the nearest distance fits in every direction.
    keep = WALL_MARGIN_M + ranges.distance_m[0]
    listener = np.array([_round(rng.uniform(keep, dims[0] - keep)), _round(rng.uniform(keep, dims[1] - keep)),
                         HEAD_HEIGHT_M])
    sources, distances = [], []
    for azimuth in azimuths_deg:
        # The head's margin guarantees reach >= the nearest distance in every direction.
        high = min(ranges.distance_m[1], math.floor(_reach(listener, dims, azimuth) * 1000) / 1000)
        distance = min(_round(rng.uniform(ranges.distance_m[0], high)), high)
        position = listener + distance * np.array([math.cos(math.radians(azimuth)), math.sin(math.radians(azimuth)), 0.0])
        sources.append(tuple(float(v) for v in position))
        distances.append(distance)
    return RoomDraw(
        dims_m=tuple(float(v) for v in dims),  # type: ignore[arg-type]
        listener_m=tuple(float(v) for v in listener),  # type: ignore[arg-type]
        sources_m=tuple(sources),  # type: ignore[arg-type]
        distances_m=tuple(distances),
        rt60_s=rt60,
    )


@dataclass(frozen=True)
class SphereHrirs:
    """The HRTF set as a receiver directivity: HRIRs on a grid of directions around the head.

    Attributes:
        directions: (D, 3) unit vectors, x = front, y = left, z = up.
        hrirs: (D, 2, L) float64 impulse responses, ears (left, right).
        sample_rate: Hz.
        identity: HRTF identity + how the ring was densified; part of every bank key.
    """

    directions: np.ndarray
    hrirs: np.ndarray
    sample_rate: int
    identity: str

    @cached_property
    def tree(self):  # -> scipy.spatial.cKDTree
        from scipy.spatial import cKDTree  # here: the CLI imports this module for every command

        return cKDTree(self.directions)

    @cached_property
    def spectra(self) -> np.ndarray:
        """(D, 2, F) complex64 spectra of the HRIRs at ``_SYNTHESIS_NFFT`` points, built once."""
        import scipy.fft  # here and in binaural_rir: the CLI imports this module for every command

        return scipy.fft.rfft(self.hrirs.astype(np.float32), n=_SYNTHESIS_NFFT)

    def nearest(self, vectors: np.ndarray) -> np.ndarray:
        """Index of the closest grid direction to each of ``vectors`` (K, 3).

        An image source equidistant from two grid directions (a room symmetric about the head
        makes them) goes to the lower index: which one a KD-tree returns depends on how it was
        built and walked, i.e. on the scipy version, and the BRIR must not.
        """
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        distance, index = self.tree.query(vectors / norms, k=2)
        tie = distance[:, 1] - distance[:, 0] <= _TIE_DISTANCE
        return np.where(tie, index.min(axis=1), index[:, 0])


def _unit_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)


def load_sphere_hrirs(spec: str, sample_rate: int, interpolation: str = "linear-aligned") -> SphereHrirs:
    """Every direction of a SOFA file at ``sample_rate``, with the horizontal ring densified.

    Args:
        spec: ``kemar`` or a path to a SOFA file (``SimpleFreeFieldHRIR``).
        sample_rate: Hz.
        interpolation: ``linear-aligned`` replaces the measured ring by a 1 deg ring interpolated
            as the anechoic renderer does; ``nearest`` keeps the measured directions only.
    """
    from lusebench.simulation.render import Renderer

    sofa = read_sofa(spec)
    hrtf = load_hrtf(spec, sample_rate, sofa)  # validates the ring and names the set
    positions = sofa.positions
    hrirs = resample_hrirs(sofa.hrirs, sofa.sample_rate, sample_rate)
    directions = _unit_vectors(positions[:, 0], positions[:, 1])
    identity = f"{hrtf.identity}|measured"
    if interpolation == "linear-aligned":
        renderer = Renderer(hrtf, interpolation)
        ring_az = np.arange(0.0, 360.0, RING_STEP_DEG)
        ring = renderer.hrirs(ring_az)  # (R, 2, L + margin)
        off_ring = np.abs(positions[:, 1]) > 2.5  # the ring itself is replaced by the dense one
        pad = ring.shape[-1] - hrirs.shape[-1]
        hrirs = np.concatenate([np.pad(hrirs[off_ring], ((0, 0), (0, 0), (0, pad))), ring])
        directions = np.concatenate([directions[off_ring], _unit_vectors(ring_az, np.zeros_like(ring_az))])
        identity = f"{hrtf.identity}|ring{RING_STEP_DEG:g}deg-linear-aligned"
    elif interpolation != "nearest":
        raise LusebenchError(f"interpolation must be linear-aligned or nearest, got {interpolation!r}")
    return SphereHrirs(np.ascontiguousarray(directions), np.ascontiguousarray(hrirs), sample_rate, identity)


@dataclass(frozen=True)
class ImageSources:
    """The image sources of one source in one shoebox.

    Attributes:
        positions: (3, K) metres.
        reflections: (K,) number of wall reflections of each image (0 = the direct path).
    """

    positions: np.ndarray
    reflections: np.ndarray

    def damping(self, absorption: float) -> np.ndarray:
        """(K,) amplitude factor after the walls: each reflection keeps ``1 - absorption`` of the energy."""
        return (1.0 - absorption) ** (0.5 * self.reflections)


def sabine_absorption(rt60_s: float, dims_m: tuple[float, float, float]) -> float:
    """Energy absorption of every wall that Sabine's formula gives for ``rt60_s``."""
    length, width, height = dims_m
    volume = length * width * height
    surface = 2 * (length * width + length * height + width * height)
    return 24 * math.log(10) * volume / (SPEED_OF_SOUND * surface * rt60_s)


def image_sources(dims_m: tuple[float, ...], source_m: tuple[float, ...], max_order: int) -> ImageSources:
    """Image sources up to ``max_order`` reflections (pyroomacoustics' shoebox model).

    The absorption only scales the images' amplitudes, so the images are found once with a
    neutral material and damped later (see :meth:`ImageSources.damping`).
    """
    import pyroomacoustics as pra

    room = pra.ShoeBox(list(dims_m), fs=16000, materials=pra.Material(0.5), max_order=max_order,
                       air_absorption=False)
    room.add_source(list(source_m))
    # The image positions do not depend on the receiver; one at the source's own height suffices.
    room.add_microphone(np.array(source_m) * 0.5 + np.array(dims_m) * 0.25)
    room.image_source_model()
    source = room.sources[0]
    return ImageSources(positions=np.asarray(source.images, dtype=np.float64),
                        reflections=np.asarray(source.orders, dtype=np.int64))


def t30_from_energy(energy: np.ndarray, sample_rate: int) -> float:
    """RT60 (s) from an energy envelope (N,): Schroeder backward integration, line fit -5..-35 dB.

    Returns the time to decay 60 dB extrapolated from the fit; ``0.0`` when the envelope
    never decays 35 dB (too short to measure).
    """
    schroeder = np.cumsum(energy[::-1])[::-1]
    schroeder_db = 10 * np.log10(np.maximum(schroeder / schroeder[0], 1e-30))
    start = int(np.argmax(schroeder_db < -5.0))
    stop = int(np.argmax(schroeder_db < -35.0))
    if start == 0 or stop <= start + 1:
        return 0.0
    t = np.arange(start, stop) / sample_rate
    slope = np.polyfit(t, schroeder_db[start:stop], 1)[0]
    return float(-60.0 / slope) if slope < 0 else 0.0


def _arrival_energy(images: ImageSources, listener: np.ndarray, absorption: float, sample_rate: int) -> np.ndarray:
    distance = np.linalg.norm(images.positions - listener[:, None], axis=0)
    index = np.round(distance / SPEED_OF_SOUND * sample_rate).astype(np.int64)
    return np.bincount(index, weights=images.damping(absorption) ** 2 / distance**2)


def calibrate_absorption(images: ImageSources, listener_m: tuple[float, ...], rt60_s: float,
                         dims_m: tuple[float, float, float], sample_rate: int) -> float:
    """The wall absorption whose image-source energy decay has a T30 of ``rt60_s``.

    Fixed point on ``-log(1 - a)`` (the decay rate per reflection, to which T30 is inversely
    proportional), started from Sabine's value.
    """
    listener = np.asarray(listener_m, dtype=np.float64)
    absorption = min(sabine_absorption(rt60_s, dims_m), 0.99)
    for _ in range(_CALIBRATION_STEPS):
        measured = t30_from_energy(_arrival_energy(images, listener, absorption, sample_rate), sample_rate)
        if measured <= 0.0:
            break
        absorption = float(np.clip(1.0 - (1.0 - absorption) ** (measured / rt60_s), 1e-3, 0.99))
    return absorption


def _highpass(sample_rate: int) -> np.ndarray | None:
    import pyroomacoustics as pra
    from pyroomacoustics.utilities import design_highpass_filter_sos

    if not pra.constants.get("rir_hpf_enable"):
        return None
    return design_highpass_filter_sos(sample_rate, pra.constants.get("rir_hpf_fc"), **pra.constants.get("rir_hpf_kwargs"))


def binaural_rir(images: ImageSources, damping: np.ndarray, listener_m: tuple[float, ...],
                 sphere: SphereHrirs) -> np.ndarray:
    """The BRIR (2, L) float64 of a set of image sources heard through ``sphere``.

    Equals pyroomacoustics' ``compute_rir`` with ``sphere`` as both ears' ``MeasuredDirectivity``
    (nearest direction, windowed-sinc fractional delays, 1/r spreading, its RIR high-pass), up
    to float rounding: arrivals are summed per direction into one impulse train each, and the
    trains are convolved with their HRIRs by overlap-save at a fixed FFT size, whose HRIR spectra
    the sphere caches. Directions go a few at a time, so each one's train, spectra and products
    stay in the CPU cache.

    The sums run in float32: against the float64 computation they differ by less than 1e-6 of the
    direct path's peak (-120 dB; the BRIR is stored as float32), tests/simulation/test_rooms.py.
    """
    import pyroomacoustics as pra
    import scipy.fft
    from pyroomacoustics import libroom

    listener = np.asarray(listener_m, dtype=np.float64)
    relative = images.positions - listener[:, None]  # (3, K)
    direction = sphere.nearest(relative.T)  # (K,)
    # Arrivals grouped by direction from here on, so that each chunk of directions is a slice.
    order = np.argsort(direction, kind="stable")
    direction, relative, damping = direction[order], relative[:, order], damping[order]
    used, slot = np.unique(direction, return_inverse=True)
    distance = np.linalg.norm(relative, axis=0)
    samples = distance / SPEED_OF_SOUND * sphere.sample_rate
    whole = np.floor(samples).astype(np.int64)
    fdl = int(pra.constants.get("frac_delay_length"))
    taps = np.zeros((len(samples), fdl), dtype=np.float32)
    libroom.fractional_delay(taps, (samples - whole).astype(np.float32), pra.constants.get("sinc_lut_granularity"), 1)
    taps *= (damping / distance).astype(np.float32)[:, None]  # (K, fdl)
    num_taps = sphere.hrirs.shape[-1]
    nfft = _SYNTHESIS_NFFT
    block = nfft - num_taps + 1  # output samples per overlap-save window
    length = int(whole.max()) + fdl + num_taps - 1
    num_windows = -(-length // block)
    # Each train: num_taps - 1 leading zeros, then the arrivals; window w covers [w * block, w * block + nfft).
    width = num_windows * block + num_taps - 1
    first = (slot % _DIRECTION_CHUNK) * width + num_taps - 1 + whole  # (K,) where each arrival's taps start
    where = first[:, None] + np.arange(fdl)  # (K, fdl) in its chunk's trains
    bounds = np.searchsorted(slot, np.arange(0, len(used) + _DIRECTION_CHUNK, _DIRECTION_CHUNK))
    spectrum = np.zeros((2, num_windows, nfft // 2 + 1), dtype=np.complex64)
    for start, (lo, hi) in zip(range(0, len(used), _DIRECTION_CHUNK), zip(bounds[:-1], bounds[1:])):
        chunk = used[start : start + _DIRECTION_CHUNK]
        # bincount sums in float64; the trains and what follows are float32 like the stored BRIR.
        trains = np.bincount(where[lo:hi].ravel(), weights=taps[lo:hi].ravel(), minlength=len(chunk) * width)
        trains = trains.astype(np.float32).reshape(len(chunk), width)
        windows = np.lib.stride_tricks.sliding_window_view(trains, nfft, axis=1)[:, ::block]  # (C, W, nfft) views
        train_spectra = scipy.fft.rfft(windows)  # (C, W, F)
        hrir_spectra = sphere.spectra[chunk]  # (C, 2, F)
        for ear in range(2):
            spectrum[ear] += (train_spectra * hrir_spectra[:, ear, None]).sum(0)
    # Overlap-save: each window's last `block` samples are exact, its first num_taps - 1 wrapped around.
    pieces = scipy.fft.irfft(spectrum, n=nfft)[..., num_taps - 1 :]  # (2, W, block)
    brir = pieces.reshape(2, -1)[:, :length].astype(np.float64)
    sos = _highpass(sphere.sample_rate)
    if sos is None:
        return brir
    from scipy.signal import sosfiltfilt  # here: importing scipy.signal takes ~0.7 s

    return sosfiltfilt(sos, brir, axis=-1)


@dataclass(frozen=True)
class Brir:
    """One source's BRIR in one room.

    Attributes:
        ir: (2, L) float32, ears (left, right).
        drr_db: direct-to-reverberant energy ratio, both ears together.
    """

    ir: np.ndarray
    drr_db: float


def image_order(rt60_s: float, dims_m: tuple[float, float, float], cap: int) -> int:
    """pyroomacoustics' order that covers ``rt60_s`` (``inverse_sabine``), capped at ``cap``."""
    pairs = [a * b / math.hypot(a, b) for a, b in ((dims_m[0], dims_m[1]), (dims_m[0], dims_m[2]), (dims_m[1], dims_m[2]))]
    return max(1, min(cap, math.ceil(SPEED_OF_SOUND * rt60_s / min(pairs) - 1)))


def room_absorption(room: RoomDraw, max_order: int, sample_rate: int) -> tuple[float, int]:
    """(wall absorption, image order) of a drawn room: calibrated on the target's image sources.

    One absorption per room, so every source of a mixture hears the same walls.
    """
    order = image_order(room.rt60_s, room.dims_m, max_order)
    images = image_sources(room.dims_m, room.sources_m[0], order)
    return calibrate_absorption(images, room.listener_m, room.rt60_s, room.dims_m, sample_rate), order


def compute_brir(dims_m: tuple[float, float, float], absorption: float, order: int, listener_m: tuple[float, ...],
                 source_m: tuple[float, ...], sphere: SphereHrirs) -> Brir:
    """Simulate one source in one shoebox room and hear it through ``sphere``.

    Args:
        dims_m: room size (x, y, z), metres.
        absorption: energy absorption of every wall (see :func:`room_absorption`).
        order: image source order.
        listener_m: centre of the head (3,), facing +x.
        source_m: source position (3,).
        sphere: the HRTF set on its grid of directions.
    """
    images = image_sources(dims_m, source_m, order)
    damping = images.damping(absorption)
    brir = binaural_rir(images, damping, listener_m, sphere)
    direct_only = images.reflections == 0
    direct = binaural_rir(ImageSources(images.positions[:, direct_only], images.reflections[direct_only]),
                          damping[direct_only], listener_m, sphere)
    direct_energy = float(np.sum(direct**2))
    reverberant_energy = float(np.sum(brir**2)) - direct_energy
    drr = 10 * math.log10(direct_energy / max(reverberant_energy, 1e-30))
    return Brir(ir=brir.astype(np.float32), drr_db=drr)
