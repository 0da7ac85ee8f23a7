import os

import pytest

from lusebench.io import atomic_write


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
