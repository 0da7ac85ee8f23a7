"""The reverberant condition: BRIRs, the BRIR bank, reverberant sets, and an unchanged anechoic one."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import fftconvolve

from lusebench.benchmark.dataset import load_dataset
from lusebench.cli import main
from lusebench.errors import LusebenchError
from lusebench.simulation import rooms
from lusebench.simulation.brir_bank import BrirBank, BrirSpec
from lusebench.simulation.config import BENCHMARK_SETS, SimulationConfig
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.render import Renderer
from lusebench.simulation.writer import load_manifest, simulate, verify

ANECHOIC_CONFIG_JSON = {
    "audio_format": "flac", "corpus": "minicaps", "duration_s": 1.0, "hrtf": "kemar", "interpolation": "linear-aligned",
    "num_mixtures": 2, "num_sources": 3, "sample_rate": 16000, "save_sources": False, "schema_version": 2, "seed": 7,
    "snr_range_db": [-5.0, 5.0], "split": "test", "target_rms_dbfs": -25.0,
}
# Small rooms and a low image order keep a reverberant set to about a second.
TINY_ROOMS = dict(
    room="reverberant", rt60_range_s=(0.15, 0.25), room_length_range_m=(3.0, 3.5), room_width_range_m=(3.0, 3.5),
    room_height_range_m=(2.2, 2.5), max_image_order=6,
)


@pytest.fixture(scope="module")
def sphere():
    return rooms.load_sphere_hrirs("kemar", 16000)


def test_anechoic_set_has_no_room_fields_in_its_config_and_null_room_lists(tmp_path):
    # Its audio is pinned by test_golden.py, within the verify bound, on any CPU.
    config = SimulationConfig(num_sources=3, num_mixtures=2, seed=7, duration_s=1.0, corpus="minicaps")
    simulate(config, tmp_path / "set", progress=False)
    stored = json.loads((tmp_path / "set" / "config.json").read_text())
    stored.pop("lusebench_version")
    assert stored == ANECHOIC_CONFIG_JSON  # no room fields in an anechoic config.json
    manifest = load_manifest(tmp_path / "set")
    assert (manifest["room"] == "anechoic").all() and (manifest["rt60_s"] == 0.0).all()
    assert manifest["distances_m"].isna().all() and manifest["brir_keys"].isna().all()


@pytest.mark.parametrize("order", [5, 24])  # 24: arrivals over 5,000 samples, several synthesis windows
def test_brir_equals_pyroomacoustics_with_the_hrtf_as_measured_directivity(sphere, order):
    import pyroomacoustics as pra
    from pyroomacoustics.directivities import MeasuredDirectivity, Rotation3D
    from pyroomacoustics.doa import GridSphere

    dims, listener, source, absorption = (4.0, 3.5, 2.6), (2.0, 1.7, 1.5), (2.6, 2.9, 1.5), 0.3
    images = rooms.image_sources(dims, source, order)
    ours = rooms.binaural_rir(images, images.damping(absorption), listener, sphere)
    room = pra.ShoeBox(list(dims), fs=16000, materials=pra.Material(absorption), max_order=order)
    room.add_source(list(source))
    grid = GridSphere(cartesian_points=sphere.directions.T)
    for ear in range(2):
        ear_directivity = MeasuredDirectivity(Rotation3D([0.0], "z", degrees=True), grid, sphere.hrirs[:, ear], 16000)
        room.add_microphone(list(listener), directivity=ear_directivity)
    room.compute_rir()
    # pyroomacoustics keeps the damping in float32
    np.testing.assert_allclose(room.sources[0].damping.ravel(), images.damping(absorption), rtol=1e-6)
    for ear in range(2):
        reference = room.rir[ear][0]
        assert reference.shape == ours[ear].shape
        np.testing.assert_allclose(ours[ear], reference, atol=1e-6 * np.abs(reference).max())


@pytest.mark.parametrize("rt60_s", [0.2, 0.4])
def test_measured_rt60_is_within_20_percent_of_the_drawn_one(sphere, rt60_s):
    from pyroomacoustics.experimental import measure_rt60

    room = rooms.RoomDraw(dims_m=(4.0, 3.5, 2.6), listener_m=(1.8, 1.6, 1.5), sources_m=((3.0, 2.1, 1.5),),
                          distances_m=(1.3,), rt60_s=rt60_s)
    absorption, order = rooms.room_absorption(room, 30, 16000)
    brir = rooms.compute_brir(room.dims_m, absorption, order, room.listener_m, room.sources_m[0], sphere)
    for ear in range(2):
        measured = measure_rt60(brir.ir[ear].astype(np.float64), 16000, decay_db=30)  # T30, Schroeder
        assert abs(measured - rt60_s) <= 0.2 * rt60_s, (ear, measured)


def _onset(ir: np.ndarray) -> int:
    return int(np.argmax(np.abs(ir) >= 0.2 * np.abs(ir).max()))


@pytest.mark.parametrize("azimuth, first", [(90.0, 0), (270.0, 1)])
def test_direct_path_from_the_side_reaches_that_ear_first(sphere, azimuth, first):
    listener = (2.0, 2.0, 1.5)
    source = (2.0 + 1.5 * math.cos(math.radians(azimuth)), 2.0 + 1.5 * math.sin(math.radians(azimuth)), 1.5)
    brir = rooms.compute_brir((4.0, 4.0, 2.6), 0.3, 4, listener, source, sphere)
    onsets = [_onset(brir.ir[ear]) for ear in range(2)]
    assert onsets[first] < onsets[1 - first]
    # ...at the time of flight of 1.5 m (plus the HRIR's own onset and the sinc's half length).
    assert abs(min(onsets) - (1.5 / rooms.SPEED_OF_SOUND * 16000 + 40)) < 40


def test_draw_room_places_sources_at_their_azimuth_inside_the_room():
    ranges = rooms.RoomRanges()
    for seed in range(20):
        rng = np.random.default_rng(seed)
        azimuths = tuple(float(a) for a in rng.uniform(0, 360, 3))
        room = rooms.draw_room(rng, azimuths, ranges)
        assert ranges.rt60_s[0] <= room.rt60_s <= ranges.rt60_s[1]
        listener = np.array(room.listener_m)
        for azimuth, source, distance in zip(azimuths, room.sources_m, room.distances_m):
            offset = np.array(source) - listener
            assert ranges.distance_m[0] <= distance <= ranges.distance_m[1]
            assert np.linalg.norm(offset) == pytest.approx(distance)
            assert math.degrees(math.atan2(offset[1], offset[0])) % 360 == pytest.approx(azimuth % 360)
            assert all(rooms.WALL_MARGIN_M - 1e-9 <= source[k] <= room.dims_m[k] - rooms.WALL_MARGIN_M + 1e-9 for k in range(2))


def test_bank_serves_stored_entries_and_rebuilds_a_damaged_one(tmp_path, sphere):
    spec = BrirSpec(dims_m=(3.0, 3.0, 2.4), absorption=0.4, image_order=3, listener_m=(1.5, 1.5, 1.5),
                    source_m=(2.5, 1.8, 1.5))
    bank = BrirBank(tmp_path / "bank", sphere)
    first = bank.get(spec)
    assert (bank.builds, bank.hits) == (1, 0)
    np.testing.assert_array_equal(bank.get(spec).ir, first.ir)
    assert (bank.builds, bank.hits) == (1, 1)
    npy, meta = bank.paths(spec)
    payload = bytearray(npy.read_bytes())
    payload[-1] ^= 0xFF  # one flipped byte in the samples
    npy.write_bytes(bytes(payload))
    np.testing.assert_array_equal(bank.get(spec).ir, first.ir)
    assert bank.builds == 2
    # A copied bank opened elsewhere serves the repaired entry without recomputing it.
    other = BrirBank(tmp_path / "bank", sphere)
    other.get(spec)
    assert (other.builds, other.hits) == (0, 1)
    # Another HRTF identity is another key.
    assert BrirBank(tmp_path / "bank", replace(sphere, identity="other")).key(spec) != bank.key(spec)


def test_reverberant_set_records_its_rooms_and_rerenders_from_the_bank(tmp_path, corpus_spec):
    config = SimulationConfig(num_sources=2, num_mixtures=2, seed=3, duration_s=0.5, corpus=corpus_spec, **TINY_ROOMS)
    simulate(config, tmp_path / "set", progress=False, brir_bank=tmp_path / "bank")
    manifest = load_manifest(tmp_path / "set")
    row = manifest.iloc[0]
    assert row["room"] == "reverberant" and 0.15 <= row["rt60_s"] <= 0.25
    assert len(row["source_positions_m"]) == 2 and len(row["drr_db"]) == 2 and np.isfinite(row["drr_db"]).all()
    assert 0 < row["wall_absorption"] < 1 and row["image_order"] <= 6
    # The same recipes as the anechoic set of the same seed: only the room is added.
    anechoic = replace(config, room="anechoic")
    simulate(anechoic, tmp_path / "dry", progress=False)
    dry = load_manifest(tmp_path / "dry")
    for column in ("clip_ids", "azimuths_deg", "snr_db", "gains", "onsets_s"):
        assert [list(v) for v in manifest[column]] == [list(v) for v in dry[column]]
    assert manifest["mixture_sha256"].tolist() != dry["mixture_sha256"].tolist()
    assert verify(tmp_path / "set", progress=False, brir_bank=tmp_path / "bank").ok
    # A fresh bank recomputes every BRIR (to within float32 rounding: verify compares content).
    assert verify(tmp_path / "set", progress=False, brir_bank=tmp_path / "fresh").ok
    stored = json.loads((tmp_path / "set" / "config.json").read_text())
    assert stored["room"] == "reverberant" and stored["max_image_order"] == 6
    # The benchmark scores the room as the set's condition.
    assert set(load_dataset(tmp_path / "set").manifest["condition"]) == {"reverberant"}
    assert set(load_dataset(tmp_path / "dry").manifest["condition"]) == {"anechoic"}


@pytest.mark.parametrize("num_samples", [30011, 160003])  # one overlap-add block; several (49,152-point FFTs)
def test_render_filters_equals_direct_convolution(num_samples):
    renderer = Renderer(load_hrtf("kemar", 16000))
    rng = np.random.default_rng(0)
    dry = (0.1 * rng.standard_normal((2, num_samples))).astype(np.float32)
    filters = (rng.standard_normal((2, 2, 15000)) * np.exp(-np.arange(15000) / 2000.0)).astype(np.float32)
    rendered = renderer.render_filters(dry, filters)
    for ear in range(2):
        expected = fftconvolve(dry[1].astype(np.float64), filters[1, ear].astype(np.float64))[:num_samples]
        np.testing.assert_allclose(rendered.interferers[0, ear], expected, atol=2e-4 * np.abs(expected).max())
    with pytest.raises(ValueError, match="shape"):
        renderer.render_filters(dry, filters[:1])


def test_reverberant_config_round_trips_and_bad_ranges_are_refused():
    config = SimulationConfig(**TINY_ROOMS)
    assert SimulationConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(LusebenchError, match="room"):
        SimulationConfig(room="cave")  # type: ignore[arg-type]
    with pytest.raises(LusebenchError, match="long and wide"):
        SimulationConfig(room="reverberant", room_length_range_m=(2.0, 3.0))
    assert BENCHMARK_SETS["test-3src-reverb"].config().room == "reverberant"
    assert BENCHMARK_SETS["test-3src-reverb"].seed == BENCHMARK_SETS["test-3src"].seed


def test_cli_refuses_room_with_a_benchmark_set(tmp_path, capsys):
    argv = ["simulate", "--benchmark", "test-2src-reverb", "--room", "anechoic", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--room" in err and len(err.splitlines()) == 1


def test_old_manifest_rows_without_room_columns_read_as_anechoic(tmp_path, corpus_spec):
    from lusebench.simulation.writer import recipe_from_row

    config = SimulationConfig(num_sources=2, num_mixtures=1, duration_s=0.5, corpus=corpus_spec)
    simulate(config, tmp_path / "set", progress=False)
    row = load_manifest(tmp_path / "set").iloc[0].to_dict()
    old = {key: value for key, value in row.items() if key not in ("room", "rt60_s", "drr_db", "distances_m")}
    assert recipe_from_row(old).room == "anechoic"


def test_an_image_source_between_two_grid_directions_takes_the_lower_index(sphere):
    # Which of two equidistant neighbours a KD-tree returns depends on its build (scipy's
    # version); the BRIR must not, so a tie goes to the lower index whatever the tree says.
    between = (sphere.directions[3] + sphere.directions[7]) / 2

    class HigherFirst:
        def query(self, vectors, k):
            distance = np.linalg.norm(sphere.directions[7] - vectors[0])
            return np.array([[distance, distance]]), np.array([[7, 3]])

    tied = rooms.SphereHrirs(sphere.directions, sphere.hrirs, sphere.sample_rate, sphere.identity)
    tied.__dict__["tree"] = HigherFirst()
    assert tied.nearest(between[None]).tolist() == [3]
    near_seven = 0.05 * sphere.directions[3] + 0.95 * sphere.directions[7]
    assert sphere.nearest(near_seven[None]).tolist() == [7]
