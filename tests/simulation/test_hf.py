"""A rendered set in Hugging Face ``datasets`` (3.x, offline), through to_hf_dataset and through plain datasets."""

import datasets
import numpy as np
import pytest

from lusebench.io import read_audio
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.hf import to_hf_dataset
from lusebench.simulation.writer import simulate



@pytest.fixture(scope="module")
def rendered(tmp_path_factory, corpus_spec):
    out = tmp_path_factory.mktemp("hf") / "set"
    config = SimulationConfig(split="test", num_sources=2, num_mixtures=3, duration_s=0.5, corpus=corpus_spec)
    simulate(config, out, progress=False)
    return out


def test_to_hf_dataset_decodes_audio_gives_tensors_and_round_trips_on_disk(rendered, tmp_path):
    import torch

    dataset = to_hf_dataset(rendered)
    assert isinstance(dataset.features["mixture"], datasets.Audio)
    assert dataset.features["azimuths_deg"] == datasets.Sequence(datasets.Value("float64"))
    row = dataset[1]
    assert row["mixture_id"] == "test-2src-000001" and row["mixture"]["sampling_rate"] == 16000
    expected, _ = read_audio(rendered / row["mixture_path"])
    np.testing.assert_allclose(row["mixture"]["array"], expected, atol=1e-7)
    tensors = dataset.with_format("torch")[1]
    assert isinstance(tensors["target"]["array"], torch.Tensor) and tensors["target"]["array"].shape == (2, 8000)
    assert isinstance(tensors["azimuths_deg"], torch.Tensor)
    dataset.save_to_disk(str(tmp_path / "saved"))
    again = datasets.load_from_disk(str(tmp_path / "saved"))
    assert again.features == dataset.features
    np.testing.assert_array_equal(again[2]["target"]["array"], dataset[2]["target"]["array"])


def test_plain_datasets_loads_the_manifest_and_casts_its_path_columns_to_audio(rendered, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    manifest = str(rendered / "manifest.parquet")
    table = datasets.load_dataset("parquet", data_files=manifest, split="train", cache_dir=str(tmp_path / "cache"))
    table = table.cast_column("target_path", datasets.Audio(mono=False))
    monkeypatch.chdir(rendered)  # the manifest's paths are relative to the dataset folder
    target = table[0]["target_path"]
    expected, _ = read_audio(rendered / "audio" / "target" / "test-2src-000000.flac")
    np.testing.assert_allclose(target["array"], expected, atol=1e-7)
