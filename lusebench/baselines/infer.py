"""Inference: a trained checkpoint over a rendered set, written as a benchmark submission."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from lusebench.baselines.data import RenderedSet, collate, peak_normalise
from lusebench.baselines.presets import PAPER, PRESETS
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


# Recipe fields a run may change from its preset, in the words a run name uses.
_CHANGES = {
    "query_pairs": lambda on: "query pairs" if on else "no query pairs",
    "select_on": lambda on: f"select on {on}",
    "seed": lambda seed: f"seed {seed}",
    "doa_label": lambda label: f"{label} DoA label",
    "text_encoder": lambda encoder: f"text {encoder}",
    "epoch_mixtures": lambda size: f"epoch size {size}",
    "absent_share": lambda share: f"absent queries {100 * share:g}%",
}


def recipe_changes(recipe: dict) -> list[str]:
    """What a run's train_config changes from its preset's recipe, as short phrases."""
    preset = PRESETS.get(recipe.get("preset", "paper"), PAPER)
    defaults = {**preset, "seed": 0, "doa_label": "likelihood", "text_encoder": None}
    changes = []
    for field, default in defaults.items():
        value = recipe.get(field, default)
        if field in ("max_epochs", "num_workers", "val_mixtures") or value == default:
            continue  # limits show as the step count; workers and the val size do not change the recipe
        if field in _CHANGES:
            changes.append(_CHANGES[field](value))
        else:
            changes.append(f"{field.replace('_', ' ')} {value:g}" if isinstance(value, float) else f"{field.replace('_', ' ')} {value}")
    return changes


def config_hash(recipe: dict) -> str:
    """Seven hex digits of the train_config: runs of one name and steps but another config differ here.
    A share of absent queries of 0 is left out, so a run of the recipe before that field hashes as one after."""
    if recipe.get("absent_share") == 0.0:
        recipe = {key: value for key, value in recipe.items() if key != "absent_share"}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:7]


# infer's default absent threshold: the one stored in the checkpoint.
CHECKPOINT_THRESHOLD = "checkpoint"


def check_absent_threshold(value: float | None, name: str = "--absent-threshold") -> float | None:
    """A threshold a likelihood peak is compared with: a positive finite number, or None (always answer).

    Raises:
        LusebenchError: anything else (NaN, infinite, zero, negative, not a number).
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise LusebenchError(f"{name} must be a positive number or none, got {value!r}")
    return float(value)


def stored_absent_threshold(payload: dict, path: Path | str) -> float | None:
    """The checkpoint's ``absent_threshold`` (train.absent_threshold); None where it has none, as
    every checkpoint trained without absent queries or before them."""
    return check_absent_threshold(payload.get("absent_threshold"), f"{path}: absent_threshold")


def system_info(payload: dict, model: BaselineSystem, absent_threshold: float | None = None) -> SystemInfo:
    """The ``system.json`` of a trained checkpoint: its name says how it was trained (preset and
    what the run changed from it, corpus, steps, device, a hash of the whole config), so a CPU-sized
    row is never read as the paper's system, and two runs that differ are never named alike; an
    ``absent_threshold`` other than the checkpoint's is named too."""
    config, recipe = model.config, payload["train_config"]
    changes = recipe_changes(recipe)
    preset, device = recipe.get("preset", "paper"), payload.get("device", "unrecorded device")
    corpus = corpus_label(str(recipe.get("corpus")))
    tasks = tuple(task for task, on in (("extraction", config.extraction), ("localization", config.localization)) if on)
    if config.localization and absent_threshold != payload.get("absent_threshold"):
        # Not the checkpoint's threshold: another answer from the same weights, named apart.
        changes = [*changes, "never absent" if absent_threshold is None else f"absent under {absent_threshold:g}"]
    parts = [f"{preset} preset", *changes, corpus, f"{payload['step']:,} steps",
             device.upper() if device in ("cpu", "cuda") else device, f"cfg {config_hash(recipe)}"]
    return SystemInfo(
        name=f"{config.name} ({', '.join(parts)})",
        tasks=tasks,
        parameters=parameter_count(model),
        description=f"{SYSTEMS[config.name].paper_name} trained with lusebench {payload['lusebench_version']}: "
        f"{preset} preset, {recipe.get('num_sources')} sources, corpus {corpus}, text encoder {config.text.encoder}, "
        f"{payload['step']} steps on {device}",
        channels=1 if config.input_channels == 1 else 2,
        gcc_phat=config.gcc is not None and config.localization,
        absent_threshold=absent_threshold,
    )


def infer(
    checkpoint: Path | str,
    data: Path | str,
    out: Path | str,
    batch_size: int = 8,
    device: str | None = None,
    progress: bool = True,
    absent_threshold: float | None | Literal["checkpoint"] = CHECKPOINT_THRESHOLD,
) -> Path:
    """Run a checkpoint over every mixture of ``data`` and write a submission folder ``out``.

    Extraction writes ``audio/<mixture_id>.flac`` (2 channels; a single-channel system runs on
    each ear); localization writes ``doa_likelihood.npy`` (N, 360) in manifest order and
    ``doa.csv`` with the argmax azimuths; ``system.json`` comes from the checkpoint. Mixtures
    of another length than the system's clips run in overlapping windows (windows.py).

    A checkpoint trained with absent queries carries an ``absent_threshold``: a likelihood row
    peaking under it is written as "absent" (an empty azimuth in ``doa.csv``; the threshold goes
    into ``system.json``, so the likelihood file says the same). Its audio is written as the model
    made it, as every output is: ``peak_normalise`` only keeps a peak off the FLAC's full scale, so
    it never lifts a near-silent answer. Without a threshold every mixture gets an azimuth.
    ``absent_threshold`` replaces the checkpoint's: a positive number (one chosen on a val set
    with absent items, ``lusebench absent-threshold``), or None to answer every mixture.
    ``doa_likelihood.npy`` is the same whatever the threshold.

    Raises:
        LusebenchError: missing, foreign or inconsistent checkpoint, data folder without a
            manifest, a sample rate the system was not built for, a bad batch size, device or
            threshold (or one given to a system without localization), or an ``out`` that cannot
            be written, all before anything is written; a mixture that cannot be read leaves
            ``out`` as it was.
    """
    if batch_size < 1:
        raise LusebenchError(f"--batch-size must be at least 1, got {batch_size}")
    if absent_threshold != CHECKPOINT_THRESHOLD:
        absent_threshold = check_absent_threshold(absent_threshold)
    device = resolve_device(device)
    payload = load_checkpoint(checkpoint)
    model = system_from_checkpoint_dict(payload["model"])
    if absent_threshold == CHECKPOINT_THRESHOLD:
        threshold = stored_absent_threshold(payload, checkpoint) if model.config.localization else None
    elif not model.config.localization:
        raise LusebenchError(f"--absent-threshold: {model.config.name} ({checkpoint}) does not localize; "
                             "a threshold applies to DoA likelihoods only")
    else:
        threshold = absent_threshold
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
                        absent = threshold is not None and float(row.max()) < threshold
                        azimuths[mixture_id] = math.nan if absent else float(np.argmax(row)) * 360.0 / bins
        if likelihoods:
            write_doa_likelihood(staging, np.concatenate(likelihoods).astype(np.float32))
            write_doa_csv(staging, azimuths)
        write_set_json(staging, answered)
        write_system_json(staging, system_info(payload, model, threshold))
    log.info("wrote a %s submission for %d mixtures to %s", config.tasks, len(dataset), out)
    return out
