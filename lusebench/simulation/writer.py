"""Writes a rendered set to disk (the dataset folder of docs/dataset-format.md) and verifies one.

Each mixture leaves a marker ``.rows/<mixture_id>.json`` holding its manifest row once all of its
files are in place; a re-run skips mixtures whose marker and checksums match, so an interrupted
run resumes, and shards of one set (``shard i/n`` renders indices ``i, i+n, ...``) can run on
different machines into copies of the same folder. Whoever completes the last row writes
``manifest.parquet`` from the markers, so the union of shards equals a one-machine run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from lusebench import __version__
from lusebench.allocator import retain_freed_memory
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, encode_audio, sha256_file, write_bytes, write_json
from lusebench.simulation.brir_bank import BrirBank, open_bank
from lusebench.simulation.config import SCHEMA_VERSION, SimulationConfig
from lusebench.simulation.corpus import Corpus, distinct_captions, open_corpus
from lusebench.simulation.hrtf import load_hrtf
from lusebench.simulation.recipe import Recipe, draw_recipe, mixture_id, render_recipe
from lusebench.simulation.render import RenderedMixture, Renderer

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.parquet"
_ROWS = ".rows"

# Column order of manifest.parquet (docs/dataset-format.md); file columns follow.
MANIFEST_COLUMNS = (
    "mixture_id", "split", "index", "num_sources", "seed", "sample_rate", "num_samples", "duration_s", "corpus",
    "caption", "target_clip_id", "target_azimuth_deg", "clip_ids", "captions", "clip_offsets_s", "onsets_s",
    "azimuths_deg", "snr_db", "gains", "mixture_gain", "angular_separation_deg", "hrtf", "hrtf_interpolation",
    "schema_version", "lusebench_version",
)
# The room's columns (neutral on anechoic rows: room "anechoic", rt60_s 0, empty lists).
ROOM_COLUMNS = (
    "room", "rt60_s", "room_dims_m", "listener_position_m", "source_positions_m", "distances_m", "wall_absorption",
    "image_order", "drr_db",
)
_LIST_FIELDS = {
    "clip_ids", "captions", "clip_offsets_s", "onsets_s", "azimuths_deg", "snr_db", "gains", "room_dims_m",
    "listener_position_m", "distances_m", "drr_db",
}


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count``: the mixtures whose index is ``index`` modulo ``count``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise LusebenchError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise LusebenchError(f"--shard {text}: need 0 <= i < n")
        return cls(index, count)


def _rng_key(config: SimulationConfig, index: int) -> list[int]:
    return [config.seed, config.split_code, index]


def max_distinct_mixtures(num_captions: int, num_sources: int) -> int:
    """Distinct (target caption, interferer caption set) pairs that ``num_captions`` captions allow."""
    if num_captions < num_sources:
        return 0
    return num_captions * math.comb(num_captions - 1, num_sources - 1)


Inputs = tuple[Corpus, Renderer, BrirBank | None]


def _open_inputs(config: SimulationConfig, brir_bank: Path | str | None = None) -> Inputs:
    corpus = open_corpus(config.corpus)
    clips = corpus.split(config.split)
    captions = distinct_captions(clips)
    limit = max_distinct_mixtures(captions, config.num_sources)
    if config.num_mixtures > limit:
        raise LusebenchError(
            f"split {config.split!r} of corpus {corpus.name} has {captions} distinct captions, which allow at most "
            f"{limit} distinct {config.num_sources}-source mixtures; asked for {config.num_mixtures}"
        )
    hrtf = load_hrtf(config.hrtf, config.sample_rate)
    return corpus, Renderer(hrtf, config.interpolation), open_bank(config, brir_bank)


def recipe_from_row(row: dict[str, Any]) -> Recipe:
    """The recipe stored in one manifest row."""
    values = {}
    for field in fields(Recipe):
        if field.name not in row:  # a manifest written before the field existed
            continue
        value = row[field.name]
        if field.name == "source_positions_m":
            value = tuple(tuple(float(v) for v in position) for position in value)
        elif field.name in _LIST_FIELDS:
            value = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
        elif isinstance(value, np.generic):
            value = value.item()
        values[field.name] = value
    return Recipe(**values)


def _encoded_files(config: SimulationConfig, recipe: Recipe, rendered: RenderedMixture) -> dict[str, tuple[str, bytes]]:
    """Column prefix -> (relative path, file bytes) of every file of one mixture."""
    ext = config.audio_format
    sr = config.sample_rate
    files = {
        "mixture": (f"audio/mixture/{recipe.mixture_id}.{ext}", encode_audio(rendered.mixture, sr, ext)),
        "target": (f"audio/target/{recipe.mixture_id}.{ext}", encode_audio(rendered.target, sr, ext)),
    }
    if config.save_sources:
        files["dry"] = (f"audio/dry/{recipe.mixture_id}.{ext}", encode_audio(rendered.dry_target, sr, ext))
        for k, image in enumerate(rendered.interferers, start=1):
            files[f"interferer{k}"] = (
                f"audio/interferers/{recipe.mixture_id}_{k}.{ext}",
                encode_audio(image, sr, ext),
            )
    return files


def _row(config: SimulationConfig, recipe: Recipe, checksums: dict[str, tuple[str, str]]) -> dict[str, Any]:
    row: dict[str, Any] = {field.name: getattr(recipe, field.name) for field in fields(Recipe)}
    row = {key: list(value) if isinstance(value, tuple) else value for key, value in row.items()}
    row.update(
        num_sources=recipe.num_sources,
        duration_s=recipe.num_samples / recipe.sample_rate,
        target_clip_id=recipe.clip_ids[0],
        target_azimuth_deg=recipe.azimuths_deg[0],
        angular_separation_deg=recipe.angular_separation_deg,
        schema_version=SCHEMA_VERSION,
        lusebench_version=__version__,
    )
    for prefix, (path, digest) in checksums.items():
        row[f"{prefix}_path"] = path
        row[f"{prefix}_sha256"] = digest
    return row


# Per-process state of a rendering worker, set once by _init_worker.
_STATE: dict[str, Any] = {}


def _init_worker(config: SimulationConfig, out: str, brir_bank: str | None, inputs: Inputs | None = None) -> None:
    # One thread per process: processes scale, and torch 2.13's MKL threads can hang after fork.
    torch.set_num_threads(1)
    retain_freed_memory()
    corpus, renderer, bank = inputs if inputs is not None else _open_inputs(config, brir_bank)
    _STATE.update(
        config=config, out=Path(out), corpus=corpus, renderer=renderer, bank=bank, clips=corpus.split(config.split)
    )


def _marker(out: Path, mixture_id: str) -> Path:
    return out / _ROWS / f"{mixture_id}.json"


def _read_marker(out: Path, mixture_id: str) -> dict[str, Any] | None:
    try:
        return json.loads(_marker(out, mixture_id).read_text())
    except (json.JSONDecodeError, OSError):
        return None


def _finished_row(out: Path, mixture_id: str) -> dict[str, Any] | None:
    """The row of a mixture whose marker exists and whose files match their checksums."""
    row = _read_marker(out, mixture_id)
    if row is None:
        return None
    for key, value in row.items():
        if key.endswith("_path"):
            path = out / value
            if not path.is_file() or sha256_file(path) != row.get(key[: -len("_path")] + "_sha256"):
                return None
    return row


def _render_one(index: int) -> str:
    """Render, write and mark mixture ``index``; return ``skipped`` or ``written``."""
    config: SimulationConfig = _STATE["config"]
    out: Path = _STATE["out"]
    if _finished_row(out, mixture_id(config.split, config.num_sources, index)) is not None:
        return "skipped"
    recipe, rendered = draw_recipe(
        _STATE["corpus"], _STATE["clips"], config, _rng_key(config, index), _STATE["renderer"], index, _STATE["bank"]
    )
    checksums = {}
    for prefix, (path, payload) in _encoded_files(config, recipe, rendered).items():
        checksums[prefix] = (path, write_bytes(out / path, payload))
    write_json(_marker(out, recipe.mixture_id), _row(config, recipe, checksums))
    return "written"


def _prepare_folder(out: Path, config: SimulationConfig) -> bool:
    """Create or re-open the output folder; return True if this call created it."""
    config_path = out / CONFIG_FILE
    if config_path.is_file():
        stored = json.loads(config_path.read_text())
        stored_config = {k: v for k, v in stored.items() if k not in ("schema_version", "lusebench_version")}
        if stored_config != config.to_dict():
            differing = sorted(k for k in config.to_dict() if stored_config.get(k) != config.to_dict()[k])
            raise LusebenchError(
                f"{out} holds another set (differs in {', '.join(differing)}); choose another --out"
            )
        return False
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LusebenchError(f"{out} exists and is not a lusebench dataset folder; choose another --out")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as error:
        raise LusebenchError(f"cannot write to output folder {out}: {error.strerror}") from None
    return created


def _write_static_files(out: Path, config: SimulationConfig) -> None:
    write_json(out / CONFIG_FILE, {**config.to_dict(), "schema_version": SCHEMA_VERSION, "lusebench_version": __version__})
    licences = resources.files("lusebench").joinpath("assets", "minicaps", "LICENSES.md")
    text = "# Licences and credits of the sounds and HRTF used in this set\n\n"
    if config.corpus == "minicaps" and licences.is_file():
        text += licences.read_text()
    else:
        text += f"Clips from corpus `{config.corpus}`: see its own licence.\n"
    hrtf_licence = resources.files("lusebench").joinpath("assets", "hrtf", "LICENSE.md")
    if config.hrtf == "kemar" and hrtf_licence.is_file():
        text += "\n" + hrtf_licence.read_text()
    atomic_write(out / "LICENSES.md", lambda tmp: tmp.write_text(text))


def _mixture_ids(config: SimulationConfig) -> list[str]:
    return [mixture_id(config.split, config.num_sources, i) for i in range(config.num_mixtures)]


def write_manifest(out: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``manifest.parquet`` atomically from rows in index order."""
    frame = pd.DataFrame(rows)
    known = list(MANIFEST_COLUMNS) + list(ROOM_COLUMNS)
    frame = frame[known + sorted(set(frame.columns) - set(known))]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    path = out / MANIFEST_FILE
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def _iterate(
    indices: list[int], config: SimulationConfig, out: Path, workers: int, inputs: Inputs, brir_bank: str | None
) -> Iterator[str]:
    if workers <= 1:
        threads = torch.get_num_threads()
        _init_worker(config, str(out), brir_bank, inputs)
        try:
            yield from map(_render_one, indices)
        finally:
            torch.set_num_threads(threads)
        return
    # spawn, not fork: a forked child inherits torch's thread pools in an undefined state.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(config, str(out), brir_bank)) as pool:
        yield from pool.imap(_render_one, indices, chunksize=4)


def simulate(
    config: SimulationConfig,
    out: Path | str,
    workers: int = 1,
    shard: Shard = Shard(),
    progress: bool = True,
    brir_bank: Path | str | None = None,
) -> Path | None:
    """Render the set ``config`` describes into ``out``.

    Args:
        config: what to render.
        out: the dataset folder; created if absent, resumed if it holds the same set.
        workers: processes, one thread each.
        shard: the part of the set this call renders.
        progress: show a progress bar.
        brir_bank: folder of the BRIR bank (reverberant sets); ``default_bank_dir()`` when None.

    Returns:
        The manifest path once every mixture of the set is in ``out``, else None (other shards pending).

    Raises:
        LusebenchError: bad input (corpus, HRTF, folder, counts), before anything is written.
    """
    out = Path(out)
    if workers < 1:
        raise LusebenchError(f"--workers must be at least 1, got {workers}")
    bank_dir = None if brir_bank is None else str(brir_bank)
    inputs = _open_inputs(config, bank_dir)  # fails early on a bad corpus or SOFA file
    inputs[0].check(config.split)
    created = _prepare_folder(out, config)
    start = time.perf_counter()
    indices = list(range(shard.index, config.num_mixtures, shard.count))
    counts = {"written": 0, "skipped": 0}
    try:
        _write_static_files(out, config)
        bar = tqdm(total=len(indices), desc=f"simulate {out.name}", unit="mix", disable=not progress)
        with bar:
            for outcome in _iterate(indices, config, out, workers, inputs, bank_dir):
                counts[outcome] += 1
                bar.update()
    except BaseException:
        if created and not any((out / _ROWS).glob("*.json")):
            shutil.rmtree(out, ignore_errors=True)  # nothing finished: leave nothing behind
        raise
    log.info(
        "%d mixtures written, %d already there, in %.1f s", counts["written"], counts["skipped"], time.perf_counter() - start
    )
    # Markers are only written after their files, and were checked when skipped: no re-hashing.
    rows = [_read_marker(out, mixture) for mixture in _mixture_ids(config)]
    if any(row is None for row in rows):
        pending = sum(row is None for row in rows)
        log.info("%d mixtures of the set are still to render (other shards); no manifest yet", pending)
        return None
    return write_manifest(out, rows)  # type: ignore[arg-type]


def load_config(data_dir: Path | str) -> SimulationConfig:
    """The configuration stored in a dataset folder."""
    path = Path(data_dir) / CONFIG_FILE
    if not path.is_file():
        raise LusebenchError(f"{data_dir} is not a lusebench dataset folder (no {CONFIG_FILE})")
    stored = json.loads(path.read_text())
    return SimulationConfig.from_dict({k: v for k, v in stored.items() if k not in ("schema_version", "lusebench_version")})


def load_manifest(data_dir: Path | str) -> pd.DataFrame:
    """The manifest of a dataset folder, one row per mixture in index order."""
    path = Path(data_dir) / MANIFEST_FILE
    if not path.is_file():
        raise LusebenchError(f"{data_dir} has no {MANIFEST_FILE}: render it with `lusebench simulate` first")
    return pd.read_parquet(path)


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    mismatched: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.mismatched


def verify(data_dir: Path | str, progress: bool = True, brir_bank: Path | str | None = None) -> VerifyReport:
    """Re-render every mixture of a folder from its manifest row and compare the files' checksums.

    Reverberant rows take their BRIRs from ``brir_bank`` (computing any that are missing).
    """
    data_dir = Path(data_dir)
    config = load_config(data_dir)
    manifest = load_manifest(data_dir)
    corpus, renderer, bank = _open_inputs(config, brir_bank)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the rendering path of simulate: same thread count, same floats
    mismatched = []
    try:
        for row in tqdm(manifest.to_dict("records"), desc="verify", unit="mix", disable=not progress):
            recipe = recipe_from_row(row)
            rendered = render_recipe(recipe, corpus, renderer, bank)
            for prefix, (_, payload) in _encoded_files(config, recipe, rendered).items():
                if hashlib.sha256(payload).hexdigest() != row[f"{prefix}_sha256"]:
                    mismatched.append(recipe.mixture_id)
                    break
    finally:
        torch.set_num_threads(threads)
    return VerifyReport(checked=len(manifest), mismatched=tuple(mismatched))
