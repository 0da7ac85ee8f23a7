"""What the CLI imports: torch and scipy.signal each cost seconds of start-up (perf/cli_startup.py),
and simulation needs neither. Not a timed test: a heavy import coming back fails it on any machine,
however fast."""

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy.signal")

_PROBE = """
import json, sys
from lusebench.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as exit:  # argparse's --help and --version
    code = exit.code
print(json.dumps({"code": code, "heavy": [name for name in json.loads(sys.argv[2]) if name in sys.modules]}))
"""


def _imported(argv: list[str], tmp_path) -> list[str]:
    """The HEAVY modules loaded once ``lusebench argv`` ran in a fresh interpreter (it must exit 0)."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
                          capture_output=True, text=True, cwd=tmp_path, check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["code"] in (0, None), done.stderr
    return outcome["heavy"]


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["simulate", "--help"]])
def test_version_and_help_import_neither_torch_nor_scipy_signal(argv, tmp_path):
    assert _imported(argv, tmp_path) == []


def test_an_anechoic_simulate_imports_neither_torch_nor_scipy_signal(tmp_path):
    argv = ["simulate", "--num", "1", "--duration", "1", "--no-progress", "--out", str(tmp_path / "set")]
    assert _imported(argv, tmp_path) == []
    assert (tmp_path / "set" / "manifest.parquet").is_file()


def test_a_reverberant_simulate_does_not_import_torch(tmp_path):
    # pyroomacoustics imports scipy.signal itself; torch it does not.
    argv = ["simulate", "--num", "1", "--duration", "1", "--room", "reverberant", "--brir-bank", str(tmp_path / "bank"),
            "--no-progress", "--out", str(tmp_path / "set")]
    assert "torch" not in _imported(argv, tmp_path)
    assert (tmp_path / "set" / "manifest.parquet").is_file()
