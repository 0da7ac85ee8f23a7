"""Every Python snippet of the README and docs/ runs as written (issue 22: the build_system
snippet never defined its input and failed in training mode)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _snippets() -> list[tuple[str, str]]:
    return [(f"{page.name}:{text[: match.start()].count(chr(10)) + 1}", match.group(1))
            for page in PAGES for text in [page.read_text()] for match in SNIPPET.finditer(text)]


def test_the_readme_has_snippets_to_run():
    assert len(_snippets()) >= 2


@pytest.mark.parametrize("where, code", _snippets(), ids=[where for where, _ in _snippets()])
def test_snippet_runs(where, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a snippet that writes, writes here
    exec(compile(code, where, "exec"), {"__name__": "__snippet__"})
