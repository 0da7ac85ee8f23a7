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
from dataclasses import dataclass, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from lusebench import __version__
from lusebench.allocator import retain_freed_memory
from lusebench.errors import LusebenchError
from lusebench.fingerprint import PROTOCOL_VERSION
from lusebench.schema import load_json, read_manifest
from lusebench.io import (
    atomic_write,
    encode_audio,
    read_audio,
    remove_stale_temporaries,
    resolve_inside,
    sha256_file,
    write_bytes,
    write_json,
)
from lusebench.simulation.audiocaps_sets import FixedSet, open_fixed_set
from lusebench.simulation.brir_bank import BrirBank, open_bank
from lusebench.simulation.config import SCHEMA_VERSION, SimulationConfig
from lusebench.simulation.corpus import EMBEDDED, Corpus, distinct_captions, open_corpus
from lusebench.simulation.heads import HEADS
from lusebench.simulation.hrtf import draw_head, load_hrtf, split_heads
from lusebench.simulation.recipe import HEAD_STREAM, Recipe, absent_indices, draw_recipe, fixed_recipe, mixture_id, recipe_brir_specs
from lusebench.simulation.render import RenderedMixture, Renderer

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.parquet"
_ROWS = ".rows"
# A live temporary is written within seconds; one untouched for ten minutes belongs to a dead run.
_STALE_AFTER_S = 600.0
# A marker holds one manifest row (~2 KB), a config.json ~1 KB: anything far larger is not one.
_MAX_MARKER_BYTES = 1 << 20
_MAX_CONFIG_BYTES = 1 << 20

_F64 = pa.float64()
_FLOATS = pa.list_(pa.float64())
_STRINGS = pa.list_(pa.string())
# manifest.parquet's columns and types (docs/dataset-format.md), the same for every condition: a
# field that does not apply to a row (an anechoic row's room lists) is null, never an untyped
# empty list, so manifests of both conditions concatenate. File columns (``<prefix>_path``,
# ``<prefix>_sha256``, strings) follow in the order they were written.
MANIFEST_SCHEMA = pa.schema([
    ("mixture_id", pa.string()), ("split", pa.string()), ("index", pa.int64()), ("num_sources", pa.int64()),
    ("seed", pa.int64()), ("sample_rate", pa.int64()), ("num_samples", pa.int64()), ("duration_s", _F64),
    ("corpus", pa.string()), ("caption", pa.string()), ("target_clip_id", pa.string()),
    ("target_azimuth_deg", _F64), ("clip_ids", _STRINGS), ("captions", _STRINGS), ("clip_offsets_s", _FLOATS),
    ("onsets_s", _FLOATS), ("azimuths_deg", _FLOATS), ("snr_db", _FLOATS), ("gains", _FLOATS),
    ("mixture_gain", _F64), ("angular_separation_deg", _F64), ("hrtf", pa.string()),
    ("hrtf_interpolation", pa.string()),
    # The room (anechoic rows: room "anechoic", rt60_s, wall_absorption and image_order 0, lists null).
    ("room", pa.string()), ("rt60_s", _F64), ("room_dims_m", _FLOATS), ("listener_position_m", _FLOATS),
    ("source_positions_m", pa.list_(_FLOATS)), ("distances_m", _FLOATS), ("wall_absorption", _F64),
    ("image_order", pa.int64()), ("drr_db", _FLOATS),
    # The assets the row reads, for the fingerprint (lusebench/fingerprint.py).
    ("clip_sha256", _STRINGS), ("hrtf_sha256", pa.string()), ("brir_keys", _STRINGS),
    ("protocol_version", pa.int64()), ("schema_version", pa.int64()), ("lusebench_version", pa.string()),
])
# What the rows of a fixed AudioCaps set add (audiocaps_sets.py); other sets' manifests lack these
# columns, so that their fingerprints stay what they were.
FIXED_SET_FIELDS = [
    pa.field("recipe_set", pa.string()), pa.field("recipe_set_sha256", pa.string()),
    pa.field("recipe_set_size", pa.int64()), pa.field("audiocap_ids", _STRINGS),
]
# Columns a manifest holds only where the set has absent-target items, so that the manifests (and
# fingerprints) of sets without them stay as they were.
_ABSENT_COLUMNS = {"target_absent": pa.bool_(), "query_clip_id": pa.string()}
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


def set_absent_indices(config: SimulationConfig) -> frozenset[int]:
    """The indices of the set's absent-target items."""
    return absent_indices(config.num_mixtures, config.absent_share, config.seed, config.split_code)


def max_distinct_mixtures(num_captions: int, num_sources: int) -> int:
    """Distinct (target caption, interferer caption set) pairs that ``num_captions`` captions allow."""
    if num_captions < num_sources:
        return 0
    return num_captions * math.comb(num_captions - 1, num_sources - 1)


# A renderer per head of the set, in the order of ``config.hrtf``'s list.
Renderers = dict[str, Renderer]
Inputs = tuple[Corpus, Renderers, BrirBank | None, FixedSet | None]


def mixture_head(config: SimulationConfig, heads: tuple[str, ...], index: int) -> str:
    """The head mixture ``index`` is rendered on: the set's only one, or one of ``heads`` drawn
    from ``[seed, split_code, index, HEAD_STREAM]``; the recipe's own draws are those of a one-head
    set, so a set on several heads holds the one-head set's recipes, each on one of them."""
    return draw_head(heads, [config.seed, config.split_code, index, HEAD_STREAM])


def _renderer(config: SimulationConfig, renderers: Renderers, index: int) -> Renderer:
    return renderers[mixture_head(config, tuple(renderers), index)]


def _open_inputs(config: SimulationConfig, brir_bank: Path | str | None = None, fixed: FixedSet | None = None) -> Inputs:
    """The corpus, renderers, BRIR bank and fixed set of ``config``; ``fixed``, when given, is the
    fixed set already opened (a worker gets the parent's rather than probing every clip again)."""
    heads = split_heads(config.hrtf)
    if len(heads) > 1 and config.room == "reverberant":
        raise LusebenchError(f"--hrtf {config.hrtf!r}: a reverberant set takes one head (its BRIRs are computed on one)")
    renderers = {head: Renderer(load_hrtf(head, config.sample_rate), config.interpolation) for head in heads}
    if config.recipes:
        if fixed is None:
            fixed = open_fixed_set(config.recipes, config.split, config.num_sources, config.num_mixtures, config.corpus,
                                   config.sample_rate, config.num_samples)
        return fixed.corpus, renderers, open_bank(config, brir_bank), fixed
    corpus = open_corpus(config.corpus)
    clips = corpus.split(config.split)
    captions = distinct_captions(clips)
    limit = max_distinct_mixtures(captions, config.num_sources)
    if config.num_mixtures > limit:
        raise LusebenchError(
            f"split {config.split!r} of corpus {corpus.name} has {captions} distinct captions, which allow at most "
            f"{limit} distinct {config.num_sources}-source mixtures; asked for {config.num_mixtures}"
        )
    return corpus, renderers, open_bank(config, brir_bank), None


def recipe_from_row(row: dict[str, Any]) -> Recipe:
    """The recipe stored in one manifest row."""
    values = {}
    for field in fields(Recipe):
        if field.name not in row:  # a manifest written before the field existed
            continue
        value = row[field.name]
        if field.name == "source_positions_m" and value is not None:
            value = tuple(tuple(float(v) for v in position) for position in value)
        elif value is None:  # a field that does not apply to the row
            value = ()
        elif field.name in _LIST_FIELDS:
            value = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
        elif isinstance(value, np.generic):
            value = value.item()
        values[field.name] = value
    return Recipe(**values)


def _signals(config: SimulationConfig, recipe: Recipe, rendered: RenderedMixture) -> dict[str, tuple[str, np.ndarray]]:
    """Column prefix -> (relative path, samples) of every file of one mixture (no target when it is absent)."""
    ext = config.audio_format
    signals = {"mixture": (f"audio/mixture/{recipe.mixture_id}.{ext}", rendered.mixture)}
    if not recipe.target_absent:
        signals["target"] = (f"audio/target/{recipe.mixture_id}.{ext}", rendered.target)
    if config.save_sources:
        signals["dry"] = (f"audio/dry/{recipe.mixture_id}.{ext}", rendered.dry_target)
        for k, image in enumerate(rendered.interferers, start=1):
            signals[f"interferer{k}"] = (f"audio/interferers/{recipe.mixture_id}_{k}.{ext}", image)
    return signals


def _row(
    recipe: Recipe, assets: dict[str, Any], checksums: dict[str, tuple[str, str]], absent_columns: bool = False
) -> dict[str, Any]:
    """One manifest row. An absent-target row names its query clip as ``target_clip_id`` and has no
    target azimuth, separation or target file (null); ``absent_columns`` adds ``target_absent`` and
    ``query_clip_id`` (every row of a set with absent items has them)."""
    row: dict[str, Any] = {field.name: getattr(recipe, field.name) for field in fields(Recipe)}
    if not absent_columns:
        del row["target_absent"], row["query_clip_id"]
    absent = recipe.target_absent
    # Tuples become lists; an empty tuple is a field that does not apply to this row (null).
    row = {key: (list(value) or None) if isinstance(value, tuple) else value for key, value in row.items()}
    if row["source_positions_m"] is not None:
        row["source_positions_m"] = [list(position) for position in row["source_positions_m"]]
    row.update(
        num_sources=recipe.num_sources,
        duration_s=recipe.num_samples / recipe.sample_rate,
        target_clip_id=recipe.query_clip_id if absent else recipe.clip_ids[0],
        target_azimuth_deg=None if absent else recipe.azimuths_deg[0],
        angular_separation_deg=None if absent else recipe.angular_separation_deg,
        protocol_version=PROTOCOL_VERSION,
        schema_version=SCHEMA_VERSION,
        lusebench_version=__version__,
        **assets,
    )
    for prefix, (path, digest) in checksums.items():
        row[f"{prefix}_path"] = path
        row[f"{prefix}_sha256"] = digest
    return row


def _assets(recipe: Recipe, corpus: Corpus, renderer: Renderer, bank: BrirBank | None) -> dict[str, Any]:
    """The checksums of what the recipe reads: its clips, the HRTF file, its BRIRs' bank keys."""
    keys = [bank.key(spec) for spec in recipe_brir_specs(recipe)] if bank is not None else []
    return {
        "clip_sha256": [corpus.checksum(corpus.clip(clip_id)) for clip_id in recipe.clip_ids],
        "hrtf_sha256": renderer.hrtf.sha256,
        "brir_keys": keys or None,
    }


# Per-process state of a rendering worker, set once by _init_worker.
_STATE: dict[str, Any] = {}


def _init_worker(config: SimulationConfig, out: str, brir_bank: str | None, inputs: Inputs | None = None,
                 fixed: FixedSet | None = None) -> None:
    retain_freed_memory()
    corpus, renderers, bank, fixed = inputs if inputs is not None else _open_inputs(config, brir_bank, fixed)
    _STATE.update(
        config=config, out=Path(out), corpus=corpus, renderers=renderers, bank=bank, clips=corpus.split(config.split),
        fixed=fixed,
        absent=set_absent_indices(config),
    )


def _marker(out: Path, mixture_id: str) -> Path:
    return out / _ROWS / f"{mixture_id}.json"


def _read_marker(out: Path, mixture_id: str) -> dict[str, Any] | None:
    """The row a marker holds, or None when absent, damaged or not a regular file (the mixture is
    then rendered again)."""
    try:
        row = load_json(_marker(out, mixture_id), _MAX_MARKER_BYTES)
    except LusebenchError:
        return None
    if not isinstance(row, dict) or row.get("mixture_id") != mixture_id:
        return None
    try:
        manifest_table([row])  # typed as the manifest: a row it cannot hold must not reach it
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return row


def _finished_row(out: Path, mixture_id: str) -> dict[str, Any] | None:
    """The row of a mixture whose marker exists and whose files (inside ``out``) match their checksums."""
    row = _read_marker(out, mixture_id)
    if row is None:
        return None
    for key, value in row.items():
        if key.endswith("_path"):
            try:
                path = resolve_inside(out, value, f"{_marker(out, mixture_id)}: {key}")
                if sha256_file(path) != row.get(key[: -len("_path")] + "_sha256"):
                    return None
            except LusebenchError:
                return None
    return row


def _mixture_id(config: SimulationConfig, fixed: FixedSet | None, index: int) -> str:
    return mixture_id(config.split, config.num_sources, index) if fixed is None else fixed.mixtures[index].mixture_id


def _draw(
    config: SimulationConfig, inputs: Inputs, clips: list, index: int, absent: frozenset[int] = frozenset()
) -> tuple[Recipe, RenderedMixture, dict[str, Any]]:
    """Mixture ``index``: drawn from its rng key (an absent-target item where ``absent`` holds it), or a
    fixed set's recipe; plus the row fields it adds."""
    corpus, renderers, bank, fixed = inputs
    renderer = _renderer(config, renderers, index)
    if fixed is None:
        drawn = draw_recipe(corpus, clips, config, _rng_key(config, index), renderer, index, bank, absent=index in absent)
        return (*drawn, {})
    mixture = fixed.mixtures[index]
    return (*fixed_recipe(corpus, mixture, config, renderer, bank), fixed.extra_fields(mixture))


def _render_one(index: int) -> str:
    """Render, write and mark mixture ``index``; return ``skipped`` or ``written``."""
    config: SimulationConfig = _STATE["config"]
    out: Path = _STATE["out"]
    if _finished_row(out, _mixture_id(config, _STATE["fixed"], index)) is not None:
        return "skipped"
    inputs = (_STATE["corpus"], _STATE["renderers"], _STATE["bank"], _STATE["fixed"])
    recipe, rendered, extra = _draw(config, inputs, _STATE["clips"], index, _STATE["absent"])
    checksums = {}
    for prefix, (path, signal) in _signals(config, recipe, rendered).items():
        payload = encode_audio(signal, config.sample_rate, config.audio_format)
        checksums[prefix] = (path, write_bytes(out / path, payload))
    assets = _assets(recipe, _STATE["corpus"], _renderer(config, _STATE["renderers"], index), _STATE["bank"])
    write_json(_marker(out, recipe.mixture_id), _row(recipe, {**assets, **extra}, checksums, config.absent_share > 0.0))
    return "written"


def _read_config_json(config_path: Path) -> dict[str, Any]:
    """A set's config.json as stored; one line when it is damaged."""
    try:
        stored = load_json(config_path, _MAX_CONFIG_BYTES)
    except LusebenchError as error:
        raise LusebenchError(f"cannot read {config_path}: {error}") from None
    if not isinstance(stored, dict):
        raise LusebenchError(f"{config_path} must hold a JSON object")
    return stored


def _config_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """The config fields of a stored config.json, without the version stamps."""
    return {k: v for k, v in stored.items() if k not in ("schema_version", "lusebench_version")}


def _prepare_folder(out: Path, config: SimulationConfig) -> bool:
    """Create or re-open the output folder; return True if this call created it."""
    config_path = out / CONFIG_FILE
    if config_path.exists() or config_path.is_symlink():  # read, and refused there, if not a regular file
        stored = _read_config_json(config_path)
        if stored.get("schema_version") != SCHEMA_VERSION:
            raise LusebenchError(
                f"{out} holds a set of schema {stored.get('schema_version')} (this lusebench writes "
                f"{SCHEMA_VERSION}); choose another --out"
            )
        stored_config = _config_fields(stored)
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
    text = "# Licences and credits of the sounds and HRTF used in this set\n\n"
    licences = resources.files("lusebench").joinpath("assets", config.corpus, "LICENSES.md") if config.corpus in EMBEDDED else None
    if licences is not None and licences.is_file():
        text += licences.read_text()
    else:
        text += f"Clips from corpus `{config.corpus}`: see its own licence.\n"
    # Heads of one licence file (the two SONICOM subjects) share its text once.
    for licence in dict.fromkeys(HEADS[name].licence_path for name in split_heads(config.hrtf) if name in HEADS):
        if licence.is_file():
            text += "\n" + licence.read_text()
    atomic_write(out / "LICENSES.md", lambda tmp: tmp.write_text(text))


def _indices(config: SimulationConfig, fixed: FixedSet | None) -> list[int]:
    """The set's mixture indices: all of them, or those of a fixed set's recipes the copy covers."""
    return list(range(config.num_mixtures)) if fixed is None else sorted(fixed.mixtures)


def manifest_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows in index order as a table of :data:`MANIFEST_SCHEMA` (+ :data:`FIXED_SET_FIELDS` when the
    rows have them), file columns after it."""
    fixed = [f for f in FIXED_SET_FIELDS if any(f.name in row for row in rows)]
    known = set(MANIFEST_SCHEMA.names) | {f.name for f in fixed}
    extra = [name for name in dict.fromkeys(key for row in rows for key in row) if name not in known]
    schema = pa.schema(list(MANIFEST_SCHEMA) + fixed + [(name, _ABSENT_COLUMNS.get(name, pa.string())) for name in extra])
    return pa.Table.from_pylist(rows, schema=schema)


def write_manifest(out: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``manifest.parquet`` atomically from rows in index order."""
    table = manifest_table(rows)
    path = out / MANIFEST_FILE
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    return path


def _iterate(
    indices: list[int], config: SimulationConfig, out: Path, workers: int, inputs: Inputs, brir_bank: str | None
) -> Iterator[str]:
    if workers <= 1:
        _init_worker(config, str(out), brir_bank, inputs)
        yield from map(_render_one, indices)
        return
    # spawn, not fork: a forked child inherits the thread pools of its parent (a caller's torch or
    # BLAS) in an undefined state.
    context = multiprocessing.get_context("spawn")
    # A fixed set goes to the workers as opened: opening it decodes every clip of the user's copy.
    initargs = (config, str(out), brir_bank, None, inputs[3])
    with context.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
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
    fixed = inputs[3]
    if fixed is None:
        inputs[0].check(config.split)  # a fixed set probed every clip it uses as it opened
    else:
        log.info("%s", fixed.coverage.summary())
    created = _prepare_folder(out, config)
    removed = remove_stale_temporaries(out, _STALE_AFTER_S)
    if removed:
        log.info("removed %d temporary file(s) that an interrupted run left in %s", removed, out)
    start = time.perf_counter()
    indices = [i for i in _indices(config, fixed) if i % shard.count == shard.index]
    counts = {"written": 0, "skipped": 0}
    try:
        _write_static_files(out, config)
        if fixed is not None:
            fixed.write_reports(out)
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
    rows = [_read_marker(out, _mixture_id(config, fixed, i)) for i in _indices(config, fixed)]
    if any(row is None for row in rows):
        pending = sum(row is None for row in rows)
        log.info("%d mixtures of the set are still to render (other shards); no manifest yet", pending)
        return None
    return write_manifest(out, rows)  # type: ignore[arg-type]


def load_config(data_dir: Path | str) -> SimulationConfig:
    """The configuration stored in a dataset folder."""
    path = Path(data_dir) / CONFIG_FILE
    if not (path.exists() or path.is_symlink()):
        raise LusebenchError(f"{data_dir} is not a lusebench dataset folder (no {CONFIG_FILE})")
    return SimulationConfig.from_dict(_config_fields(_read_config_json(path)))


def load_manifest(data_dir: Path | str) -> pd.DataFrame:
    """The manifest of a dataset folder, one row per mixture in index order, checked (lusebench/schema.py)."""
    path = Path(data_dir) / MANIFEST_FILE
    if not (path.exists() or path.is_symlink()):
        raise LusebenchError(f"{data_dir} has no {MANIFEST_FILE}: render it with `lusebench simulate` first")
    return read_manifest(path, Path(data_dir))


# A correct copy of a set differs from a fresh rendering by float32 rounding (the CPU's FFT kernels,
# ~-140 dBFS) plus half a step of the 24-bit FLAC (-144 dBFS); -100 dBFS leaves 40 dB for other
# compilers and kernels, and still lies ~50 dB under a 0.1 dB gain error or one moved sample.
VERIFY_BOUND_DBFS = -100.0


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found in a dataset folder.

    Attributes:
        checked: mixtures re-drawn and re-rendered.
        files: audio files compared.
        worst_dbfs: largest |file sample - re-rendered sample| over every intact file, dB below
            full scale (-inf when every sample is equal; None when no file could be compared).
        worst_file: the file holding that sample.
        byte_identical: files whose re-encoding is byte for byte the file on disk (informational:
            bytes vary with the CPU and the FLAC encoder's version).
        damaged: ``path: reason`` of every file that is missing, fails its manifest checksum,
            cannot be decoded or has the wrong shape.
        differing: ``path: level`` of every intact file over ``bound_dbfs``.
        recipes_differ: mixtures whose manifest recipe is not what the set's config draws.
        bound_dbfs: the pass bound.
        columns_differ: ``mixture_id: column ...`` of every derived manifest value (DoA label,
            separation, duration, paths, asset checksums, ...) that is not what the recipe gives.
    """

    checked: int
    files: int
    worst_dbfs: float | None
    worst_file: str | None
    byte_identical: int
    damaged: tuple[str, ...]
    differing: tuple[str, ...]
    recipes_differ: tuple[str, ...]
    bound_dbfs: float = VERIFY_BOUND_DBFS
    columns_differ: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.differing or self.recipes_differ or self.columns_differ)


def difference_dbfs(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute sample difference between two signals of one shape, in dB below full scale."""
    worst = float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)), initial=0.0))
    return 20.0 * math.log10(worst) if worst > 0.0 else -math.inf


def _same_recipe(stored: Recipe, drawn: Recipe) -> bool:
    # The DRR is measured on the BRIR, whose last bits follow the CPU: compared to 1e-6 dB.
    if replace(stored, drr_db=()) != replace(drawn, drr_db=()):
        return False
    return np.allclose(stored.drr_db, drawn.drr_db, rtol=0.0, atol=1e-6) if stored.drr_db else not drawn.drr_db


def _file_damage(data_dir: Path, row: dict[str, Any], prefix: str, shape: tuple[int, ...]) -> tuple[str | None, np.ndarray | None]:
    """(damage, decoded samples) of one file of a manifest row; exactly one of them is None."""
    relative = row.get(f"{prefix}_path")
    if relative is None:
        return f"{row['mixture_id']}: the manifest has no {prefix}_path", None
    path = data_dir / relative  # inside data_dir: the manifest was checked
    if not (path.exists() or path.is_symlink()):
        return f"{relative}: missing", None
    try:
        digest = sha256_file(path)
    except LusebenchError as error:  # a FIFO, a device, a dangling link: named, never waited on
        return f"{relative}: {error}", None
    if digest != row.get(f"{prefix}_sha256"):
        return f"{relative}: bytes differ from the manifest's sha256 (damaged or altered)", None
    try:
        samples, _ = read_audio(path)
    except LusebenchError as error:
        return f"{relative}: undecodable ({error})", None
    samples = samples[0] if len(shape) == 1 and samples.shape[0] == 1 else samples
    if samples.shape != shape:
        return f"{relative}: shape {samples.shape}, expected {shape}", None
    if not np.isfinite(samples).all():  # NaN would compare as no difference at all
        return f"{relative}: NaN or Inf samples", None
    return None, samples


def _plain(value: Any) -> Any:
    """A manifest value as plain Python (parquet hands lists back as arrays, numbers as numpy scalars,
    and a null float as NaN)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and np.isnan(value) else value


# Columns verify does not re-derive: the files' checksums (their bytes follow the CPU; verify
# compares their content), the DRR (compared to 1e-6 dB with the recipe) and version stamps.
_NOT_DERIVED = {"drr_db", "lusebench_version", "schema_version"}


def _derived_differences(
    row: dict[str, Any], recipe: Recipe, renderer: Renderer, inputs: Inputs, extra: dict[str, Any],
    signals: dict[str, tuple[str, np.ndarray]],
) -> list[str]:
    """``mixture_id: column ...`` for every value of a manifest row that is not what its recipe derives
    (rendered by ``renderer``)."""
    corpus, _, bank, _ = inputs
    files = {prefix: (path, row.get(f"{prefix}_sha256")) for prefix, (path, _) in signals.items()}
    expected = _row(recipe, {**_assets(recipe, corpus, renderer, bank), **extra}, files)
    differences = []
    for key, value in expected.items():
        if key in _NOT_DERIVED or key.endswith("_sha256") and key[: -len("_sha256")] in files:
            continue
        found = _plain(row.get(key)) if key in row else "absent"
        if found != _plain(value):
            differences.append(f"{row['mixture_id']}: {key} is {json.dumps(found, default=str)[:60]}, "
                               f"the recipe gives {json.dumps(_plain(value), default=str)[:60]}")
    return differences


def verify(data_dir: Path | str, progress: bool = True, brir_bank: Path | str | None = None) -> VerifyReport:
    """Re-draw and re-render every mixture of a folder and compare it with the files on disk, by content.

    Each row's recipe must be exactly what the folder's config draws; each file must exist, match its
    manifest checksum (guarding one copy against damage) and decode to samples within
    ``VERIFY_BOUND_DBFS`` of the fresh rendering. Reverberant rows take their BRIRs from
    ``brir_bank`` (computing any that are missing).
    """
    data_dir = Path(data_dir)
    config = load_config(data_dir)
    manifest = load_manifest(data_dir)
    inputs = _open_inputs(config, brir_bank)
    clips, fixed = inputs[0].split(config.split), inputs[3]
    absent = set_absent_indices(config)
    worst, worst_file, files, identical = None, None, 0, 0
    damaged, differing, recipes_differ, columns_differ = [], [], [], []
    for row in tqdm(manifest.to_dict("records"), desc="verify", unit="mix", disable=not progress):
        try:
            stored = recipe_from_row(row)
        except (TypeError, ValueError) as error:
            raise LusebenchError(f"{data_dir / MANIFEST_FILE}: the row of {row['mixture_id']} is no recipe ({error})") from None
        if fixed is not None and stored.index not in fixed.mixtures:
            recipes_differ.append(f"{stored.mixture_id} (the corpus no longer covers it)")
            continue
        recipe, rendered, extra = _draw(config, inputs, clips, stored.index, absent)
        if not _same_recipe(stored, recipe):
            recipes_differ.append(stored.mixture_id)
        signals = _signals(config, recipe, rendered)
        renderer = _renderer(config, inputs[1], stored.index)
        columns_differ += _derived_differences(row, recipe, renderer, inputs, extra, signals)
        for prefix, (path, signal) in signals.items():
            files += 1
            damage, samples = _file_damage(data_dir, row, prefix, signal.shape)
            if damage is not None:
                damaged.append(damage)
                continue
            level = difference_dbfs(samples, signal)
            if worst is None or level > worst:
                worst, worst_file = level, path
            if level > VERIFY_BOUND_DBFS:
                differing.append(f"{path}: {level:.1f} dBFS")
            payload = encode_audio(signal, config.sample_rate, config.audio_format)
            identical += hashlib.sha256(payload).hexdigest() == row[f"{prefix}_sha256"]
    return VerifyReport(
        checked=len(manifest), files=files, worst_dbfs=worst, worst_file=worst_file, byte_identical=identical,
        damaged=tuple(damaged), differing=tuple(differing), recipes_differ=tuple(recipes_differ),
        columns_differ=tuple(columns_differ),
    )


def format_verify_report(report: VerifyReport) -> str:
    """The lines ``lusebench simulate --verify`` prints: the verdict first, then every problem."""
    intact = report.files - len(report.damaged)
    if report.worst_dbfs is None:
        level = "no intact file to compare"
    else:
        level = f"worst difference {report.worst_dbfs:.1f} dBFS ({report.worst_file})"
    lines = [
        f"{'PASS' if report.ok else 'FAIL'}: {report.checked} mixtures, {report.files} files re-rendered",
        f"audio: {intact} intact files, {level}; bound {report.bound_dbfs:g} dBFS",
        f"bytes (informational): {report.byte_identical} of {intact} intact files re-encode byte-identically",
    ]
    lines += [f"damaged: {entry}" for entry in report.damaged]
    lines += [f"over the bound: {entry}" for entry in report.differing]
    lines += [f"recipe differs from the config's draw: {mixture}" for mixture in report.recipes_differ]
    lines += [f"column differs from the recipe's: {entry}" for entry in report.columns_differ]
    return "\n".join(lines)
