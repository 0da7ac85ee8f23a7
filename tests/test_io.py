import io
import os

import numpy as np
import pytest
import soundfile as sf

from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, encode_audio, read_audio, write_bytes


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("x"))
    with open(tmp_path / "b.txt", "w") as handle:
        handle.write("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode
    assert os.stat(tmp_path / "a.txt").st_mode & 0o044  # readable by others under the usual umasks


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "a.txt", fail)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [float("nan"), 0.1], [-1.0, 0.1], [0.5, float("inf")]])
def test_encode_refuses_what_the_file_would_clip_or_cannot_hold(bad):
    with pytest.raises(LusebenchError, match="refusing to encode"):
        encode_audio(np.asarray(bad, dtype=np.float32), 16000, "flac")


def test_encode_round_trips_within_24_bit_resolution(tmp_path):
    audio = np.random.default_rng(0).uniform(-0.99, 0.99, (2, 1000)).astype(np.float32)
    write_bytes(tmp_path / "a.flac", encode_audio(audio, 16000, "flac"))
    decoded, rate = read_audio(tmp_path / "a.flac")
    assert rate == 16000 and decoded.shape == (2, 1000)
    np.testing.assert_allclose(decoded, audio, atol=2.0**-23)


@pytest.mark.parametrize("shape", [(2, 4000), (4000,)])
def test_flac_decodes_to_the_samples_soundfile_makes_of_the_floats(shape):
    """encode_audio quantises to 24 bits itself (faster, other compression level): the decoded
    samples must be bit for bit those of libsndfile's own float conversion, ties and extremes included."""
    rng = np.random.default_rng(1)
    audio = rng.uniform(-0.999, 0.999, shape).astype(np.float32)
    flat = audio.reshape(-1)
    # Exact ties of x * 2^23 (round half to even), full-scale edges, signed zeros and tiny values.
    flat[:8] = (np.array([0.5, 1.5, 2.5, -0.5, -2.5, 8388607.0, -8388607.5, 12345.5]) / 2**23).astype(np.float32)
    flat[8:14] = [np.nextafter(np.float32(1), np.float32(0)), np.nextafter(np.float32(-1), np.float32(0)),
                  0.0, -0.0, 1e-30, -1e-30]
    buffer = io.BytesIO()
    sf.write(buffer, audio.T if audio.ndim == 2 else audio, 16000, subtype="PCM_24", format="FLAC")
    expected, _ = sf.read(io.BytesIO(buffer.getvalue()), dtype="int32")
    decoded, _ = sf.read(io.BytesIO(encode_audio(audio, 16000, "flac")), dtype="int32")
    np.testing.assert_array_equal(decoded, expected)
