"""Inference: a trained checkpoint over a rendered set, written as a benchmark submission."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lusebench.baselines.data import RenderedSet, collate, peak_normalise
from lusebench.baselines.systems import SYSTEMS, BaselineSystem, parameter_count, system_from_checkpoint_dict
from lusebench.baselines.train import autocast, load_checkpoint, resolve_device
from lusebench.baselines.windows import run_windowed
from lusebench.benchmark.dataset import load_dataset
from lusebench.benchmark.submission import (
    AUDIO_DIR,
    SUBMISSION_ENTRIES,
    SystemInfo,
    write_doa_csv,
    write_doa_likelihood,
    write_set_json,
    write_system_json,
)
from lusebench.errors import LusebenchError
from lusebench.io import encode_audio, replace_folder, write_bytes
from lusebench.simulation.corpus import split_spec

log = logging.getLogger(__name__)

def corpus_label(spec: str) -> str:
    """A corpus spec as a result may show it: folders by their name, not their machine's path
    (``minicaps+audiocaps:/home/me/data/gmcaps-2000`` -> ``minicaps+gmcaps-2000``)."""
    parts = []
    for part in split_spec(spec):
        kind, _, location = part.partition(":")
        parts.append(Path(location).name or location if kind == "audiocaps" and location else part)
    return "+".join(parts)


def system_info(payload: dict, model: BaselineSystem) -> SystemInfo:
    """The ``system.json`` of a trained checkpoint: its name says how it was trained (preset,
    device, corpus), so a CPU-sized row is never read as the paper's system."""
    config, recipe = model.config, payload["train_config"]
    preset, device = recipe.get("preset", "paper"), payload.get("device", "unrecorded device")
    corpus = corpus_label(str(recipe.get("corpus")))
    tasks = tuple(task for task, on in (("extraction", config.extraction), ("localization", config.localization)) if on)
    return SystemInfo(
        name=f"{config.name} ({preset} preset, {device.upper() if device in ('cpu', 'cuda') else device}, {corpus})",
        tasks=tasks,
        parameters=parameter_count(model),
        description=f"{SYSTEMS[config.name].paper_name} trained with lusebench {payload['lusebench_version']}: "
        f"{preset} preset, {recipe.get('num_sources')} sources, corpus {corpus}, text encoder {config.text.encoder}, "
        f"{payload['step']} steps on {device}",
        channels=1 if config.input_channels == 1 else 2,
        gcc_phat=config.gcc is not None and config.localization,
    )


def infer(
    checkpoint: Path | str,
    data: Path | str,
    out: Path | str,
    batch_size: int = 8,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Run a checkpoint over every mixture of ``data`` and write a submission folder ``out``.

    Extraction writes ``audio/<mixture_id>.flac`` (2 channels; a single-channel system runs on
    each ear); localization writes ``doa_likelihood.npy`` (N, 360) in manifest order and
    ``doa.csv`` with the argmax azimuths; ``system.json`` comes from the checkpoint. Mixtures
    of another length than the system's clips run in overlapping windows (windows.py).

    Raises:
        LusebenchError: missing, foreign or inconsistent checkpoint, data folder without a
            manifest, a sample rate the system was not built for, a bad batch size or device, or
            an ``out`` that cannot be written, all before anything is written; a mixture that
            cannot be read leaves ``out`` as it was.
    """
    if batch_size < 1:
        raise LusebenchError(f"--batch-size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    model = system_from_checkpoint_dict(payload["model"])
    config = model.config
    dataset = RenderedSet(data)
    answered = load_dataset(data)  # its fingerprint goes into set.json, which evaluate checks
    if dataset.sample_rate != config.sample_rate:
        raise LusebenchError(f"{data} is at {dataset.sample_rate} Hz; {config.name} was trained at {config.sample_rate} Hz")
    model.to(device).eval()
    out = Path(out)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    if dataset.num_samples != config.clip_samples:
        log.info(
            "%s was trained on %d-sample clips: running it over %d-sample mixtures in overlapping windows",
            config.name, config.clip_samples, dataset.num_samples,
        )

    def run(windows: torch.Tensor, captions: list[str]):
        with autocast(device):
            return model(windows, captions)

    # Written beside itself and renamed into place whole: a corrupt mixture halfway leaves nothing.
    with replace_folder(out, owned=SUBMISSION_ENTRIES) as staging:
        likelihoods: list[np.ndarray] = []
        azimuths: dict[str, float] = {}
        with torch.no_grad():
            for batch in tqdm(loader, desc="infer", unit="batch", disable=not progress):
                output = run_windowed(run, batch["mixture"].to(device), batch["caption"], config.clip_samples)
                if output.waveform is not None:
                    for mixture_id, waveform in zip(batch["mixture_id"], output.waveform.cpu().numpy()):
                        payload_bytes = encode_audio(peak_normalise(waveform), dataset.sample_rate, "flac")
                        write_bytes(staging / AUDIO_DIR / f"{mixture_id}.flac", payload_bytes)
                if output.doa_likelihood is not None:
                    batch_likelihood = output.doa_likelihood.cpu().numpy()  # (B, 360)
                    likelihoods.append(batch_likelihood)
                    bins = batch_likelihood.shape[1]
                    for mixture_id, row in zip(batch["mixture_id"], batch_likelihood):
                        azimuths[mixture_id] = float(np.argmax(row)) * 360.0 / bins
        if likelihoods:
            write_doa_likelihood(staging, np.concatenate(likelihoods).astype(np.float32))
            write_doa_csv(staging, azimuths)
        write_set_json(staging, answered)
        write_system_json(staging, system_info(payload, model))
    log.info("wrote a %s submission for %d mixtures to %s", config.tasks, len(dataset), out)
    return out
