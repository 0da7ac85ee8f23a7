"""Who made an output: the lusebench commit and the command, for results and training runs alike."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

from lusebench import __version__


def git_commit() -> str | None:
    """The commit of the lusebench checkout running, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def git_dirty() -> bool | None:
    """Whether the checkout's tracked Python files differ from its commit (None outside a git
    checkout): a commit names the code only when this is False. Data files are left out: writing
    the leaderboard's entries must not mark the code that scored them as edited."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "*.py"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def provenance(command: str | None) -> dict:
    """A record of this invocation: command line, lusebench version and commit, UTC time."""
    return {
        "command": command,
        "lusebench_version": __version__,
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
