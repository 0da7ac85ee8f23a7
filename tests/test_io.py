import os

import numpy as np
import pytest

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
