from pathlib import Path

import pytest

from lusebench.simulation.config import SimulationConfig
from lusebench.testing.corpus import make_corpus


@pytest.fixture(scope="session")
def corpus_spec(tmp_path_factory) -> str:
    """A synthetic AudioCaps-layout corpus: 8 clips per split, 1.5 s tones."""
    root = make_corpus(tmp_path_factory.mktemp("corpus"), clips_per_split=8)
    return f"audiocaps:{root}"


@pytest.fixture
def small_config(corpus_spec) -> SimulationConfig:
    return SimulationConfig(num_sources=3, split="test", num_mixtures=6, seed=7, duration_s=1.0, corpus=corpus_spec)


def checksums(folder: Path) -> dict[str, str]:
    import hashlib

    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".rows" not in path.parts
    }
