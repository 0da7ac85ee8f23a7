"""Training with the paper's recipe (section 3.4) on one CPU, one GPU, or many under torchrun.

AdamW at 1e-4, linear warm-up over 5,000 steps, the rate halved after every 6 epochs without a
better validation loss, stop after 10; gradient clipping; bf16 autocast on CUDA. Training data are
mixed on the fly (``DynamicMixingDataset``); validation runs on a fixed rendered val set.

Determinism: mixture ``i`` of epoch ``e`` is a pure function of (seed, e, i); each rank takes the
indices ``rank, rank + world, ...`` in order, and checkpoints keep every RNG state and the
position in the epoch, so a killed and resumed run ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import pickle
import random
import shutil
import time
import typing
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from lusebench import __version__
from lusebench.baselines.data import RenderedSet, collate
from lusebench.baselines.presets import PAPER, PRESETS
from lusebench.baselines.losses import DoALabel, circular_distance_deg, doa_label_peak, neg_si_snr
from lusebench.baselines.systems import BaselineSystem, SystemOutput, build_system
from lusebench.baselines.text import EncoderKind
from lusebench.errors import LusebenchError
from lusebench.io import atomic_write, open_regular, read_regular_file, write_json
from lusebench.provenance import provenance
from lusebench.schema import decode_json
from lusebench.simulation.audiocaps_sets import is_copy_of
from lusebench.simulation.config import BENCHMARK_CORPUS, BENCHMARK_SETS, SimulationConfig, check_absent_share
from lusebench.simulation.corpus import open_corpus
from lusebench.simulation.dynamic import DynamicMixingDataset
from lusebench.simulation.hrtf import load_hrtf, split_heads
from lusebench.simulation.writer import load_config, simulate

log = logging.getLogger(__name__)

TRAIN_SCHEMA_VERSION = 1
Selection = Literal["loss", "metrics"]
# With select_on="metrics", 1 dB of val SI-SNRi weighs as much as 10 deg of val DoA MAE: about the
# spread of both between checkpoints of one small-preset run (docs/small-preset.md).
MAE_DEG_PER_DB = 10.0


# A run trained with absent queries says "absent" where its likelihood peaks under this share of the
# label's peak: the decoder learns the label's peak where the target is, and all zeros where it is
# absent, and half-way is where the squared errors of the two answers at the peak bin are equal.
# Fixed from the label coding, not chosen on the val set: the val sets hold no absent items.
ABSENT_PEAK_FRACTION = 0.5

MAX_TRAIN_SEED = 2**32 - 1
# One short record per epoch: a run of a million epochs stays far below.
_MAX_METRICS_BYTES = 256 << 20


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults are the paper's recipe at its per-GPU batch (4 GPUs x 32 = 128).

    Attributes:
        system: registry name of the system.
        preset: ``paper``, ``small`` (learns on a 2-core CPU in about 20 minutes) or ``tiny``
            (plumbing tests); the model sizes and the recipe below.
        num_sources: sources per training and validation mixture.
        batch_size: mixtures per step on each rank.
        epoch_mixtures: mixtures drawn per epoch, over all ranks (the paper does not say; 20k
            mixtures of 10 s is ~55 h of audio, about AudioCaps' training set).
        val_mixtures: size of the rendered val set when lusebench renders it itself.
        lr: AdamW learning rate. warmup_steps: linear warm-up. weight_decay: AdamW's.
        halve_after / stop_after: epochs without a better validation loss before halving the
            rate / stopping.
        max_epochs, max_steps: hard limits (None = none).
        grad_clip: max gradient norm.
        num_workers: DataLoader processes per rank (each renders with one thread).
        seed: seeds data, initialisation and dropout.
        corpus, hrtf: where training and validation mixtures come from (by default the fixed test
            sets' corpus, so a run is scored on the kinds of sounds it trained on); ``hrtf`` may list several heads
            (``kemar,sonicom-1``): each training mixture is rendered on one drawn at random, the
            validation set on the first.
        text_encoder: frozen text encoder (``minilm``, ``t5``, ``tiny-t5``); None keeps the preset's.
        text_model: T5 folder or Hugging Face cache id when ``text_encoder`` is ``t5``.
        doa_label: DoA label coding, ``likelihood`` or ``density`` (losses.py).
        query_pairs: each training mixture twice in a batch, queried for its target and for its
            first interferer (simulation/dynamic.py); the paper draws one query per mixture.
        select_on: what picks the best checkpoint, halves the rate and stops the run: the val
            ``loss`` (the paper's training loss), or the val ``metrics`` the benchmark scores
            (:func:`selection_criterion`).
        absent_share: probability, in [0, 0.5], that a training item asks for a sound not in its
            mixture (simulation/dynamic.py), to be answered with silence and no direction; a run
            trained with it answers "absent" where its likelihood peaks under
            :func:`absent_threshold` (infer.py); its present items also learn their level
            (BaselineSystem.loss's ``level_match``). 0 in every preset: the paper has no such queries.
    """

    system: str = "luseel"
    preset: Literal["paper", "small", "tiny"] = "paper"
    num_sources: int = 3
    batch_size: int = PAPER["batch_size"]
    epoch_mixtures: int = PAPER["epoch_mixtures"]
    val_mixtures: int = PAPER["val_mixtures"]
    lr: float = PAPER["lr"]
    warmup_steps: int = PAPER["warmup_steps"]
    weight_decay: float = 0.01
    halve_after: int = PAPER["halve_after"]
    stop_after: int = PAPER["stop_after"]
    max_epochs: int | None = PAPER["max_epochs"]
    max_steps: int | None = None
    grad_clip: float = 5.0
    num_workers: int = PAPER["num_workers"]
    seed: int = 0
    corpus: str = BENCHMARK_CORPUS
    hrtf: str = "kemar"
    text_encoder: EncoderKind | None = None
    text_model: str | None = None
    doa_label: DoALabel = "likelihood"
    query_pairs: bool = PAPER["query_pairs"]
    select_on: Selection = PAPER["select_on"]
    absent_share: float = PAPER["absent_share"]

    def __post_init__(self) -> None:
        # Checked here, before a run folder is touched: a zero batch or step count used to be
        # accepted (and trained one step), a negative worker count failed deep in the DataLoader.
        counts = (("--batch-size", self.batch_size), ("--epoch-size", self.epoch_mixtures),
                  ("val_mixtures", self.val_mixtures), ("--max-steps", self.max_steps),
                  ("--max-epochs", self.max_epochs))
        for flag, value in counts:
            if value is not None and value < 1:
                raise LusebenchError(f"{flag} must be at least 1, got {value}")
        if self.num_workers < 0:
            raise LusebenchError(f"--workers must be at least 0, got {self.num_workers}")
        if not 0 <= self.seed <= MAX_TRAIN_SEED:  # np.random.seed's range
            raise LusebenchError(f"--seed must lie in [0, 2**32 - 1], got {self.seed}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise LusebenchError(f"--lr must be a positive number, got {self.lr}")
        if self.warmup_steps < 0:
            raise LusebenchError(f"--warmup-steps must be 0 or more, got {self.warmup_steps}")
        if self.text_encoder is not None and self.text_encoder not in typing.get_args(EncoderKind):
            raise LusebenchError(f"unknown text encoder {self.text_encoder!r}; choose {', '.join(typing.get_args(EncoderKind))}")
        if (self.text_model is not None) != (self.text_encoder == "t5"):
            raise LusebenchError("a T5 model (--text-model) goes with --text-encoder t5, and only with it")
        if self.select_on not in typing.get_args(Selection):
            raise LusebenchError(f"unknown selection {self.select_on!r}; choose {' or '.join(typing.get_args(Selection))}")
        if self.doa_label not in typing.get_args(DoALabel):
            raise LusebenchError(f"unknown DoA label {self.doa_label!r}; choose {' or '.join(typing.get_args(DoALabel))}")
        check_absent_share(self.absent_share)

    def model_overrides(self) -> dict[str, Any]:
        """The :func:`build_system` overrides this run makes to its preset's model."""
        overrides: dict[str, Any] = {"loss": {"doa_label": self.doa_label}}
        if self.text_encoder is not None:
            overrides["text"] = {"encoder": self.text_encoder}
            if self.text_model is not None:
                overrides["text"]["encoder_name"] = self.text_model
        return overrides

    @classmethod
    def for_preset(cls, preset: str, **overrides: Any) -> TrainConfig:
        """A preset's recipe (presets.py); explicit overrides win."""
        if preset not in PRESETS:
            raise LusebenchError(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
        if overrides.get("max_steps") is not None and overrides.get("max_epochs") is None:
            base.pop("max_epochs", None)  # an asked-for step count is not cut short by the preset's epoch cap
        return cls(preset=preset, **{**base, **{k: v for k, v in overrides.items() if v is not None}})


def absent_threshold(config: TrainConfig, model: BaselineSystem) -> float | None:
    """The likelihood peak under which a run's localization says "absent" (system.json's
    ``absent_threshold``); None where it was trained without absent queries (it always answers)."""
    if config.absent_share == 0.0 or not model.config.localization:
        return None
    loss = model.config.loss
    return ABSENT_PEAK_FRACTION * doa_label_peak(loss.doa_label, loss.sigma2_deg2)


class LearningRate:
    """Linear warm-up times a factor halved on validation plateaus (state kept in checkpoints)."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.scale = 1.0
        self.best = math.inf
        self.bad_epochs = 0

    def at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / max(1, self.config.warmup_steps))
        return self.config.lr * warm * self.scale

    def after_validation(self, criterion: float) -> tuple[bool, bool]:
        """Record an epoch's validation criterion (lower is better); return (improved, stop)."""
        if criterion < self.best:
            self.best, self.bad_epochs = criterion, 0
            return True, False
        self.bad_epochs += 1
        if self.bad_epochs % self.config.halve_after == 0:
            self.scale *= 0.5
            log.info("no better validation %s for %d epochs: learning rate halved", self.config.select_on, self.bad_epochs)
        return False, self.bad_epochs >= self.config.stop_after

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale, self.best, self.bad_epochs = float(state["scale"]), float(state["best"]), int(state["bad_epochs"])


class _RankIndices(Sampler[int]):
    """This rank's share of an epoch, ``rank, rank + world, ...``, from position ``start`` on.

    The last ``size % world`` mixtures are left out, so that every rank takes the same number of
    steps: a rank with one batch more would wait forever for the others' gradients.
    """

    def __init__(self, size: int, rank: int, world: int, start: int = 0) -> None:
        self.indices = list(range(rank, size - size % world, world))[start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class _Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed() -> _Distributed:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Distributed()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    return _Distributed(dist.get_rank(), dist.get_world_size(), local_rank)


def _finite_on_every_rank(loss: torch.Tensor, ddp: _Distributed) -> bool:
    """Whether the loss is finite on every rank: all stop together, none waits in backward for a
    rank that has stopped."""
    finite = torch.isfinite(loss.detach()).to(torch.int32)
    if ddp.world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _rng_state() -> dict[str, Any]:
    """Every RNG state as tensors and plain values, which ``torch.load(weights_only=True)`` reads."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), position, has_gauss, cached_gaussian],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save, atomically."""
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


_PAYLOAD_TYPES = {
    "lusebench_version": str, "train_config": dict, "model": dict, "optimizer": dict, "schedule": dict,
    "rng": dict, "step": int, "epoch": int, "position": int,
}


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """A lusebench training checkpoint, checked whole, with one-line errors for a missing or foreign file.

    Read with ``weights_only=True``: a checkpoint may come from a stranger, and unpickling
    anything but tensors and plain values can run code.
    """
    path = Path(path)
    if not path.exists():
        raise LusebenchError(f"checkpoint not found: {path}")
    try:
        with open_regular(path) as handle:  # never a FIFO or device, which torch.load would block on
            payload = torch.load(handle, map_location="cpu", weights_only=True)
    except LusebenchError:
        raise
    except pickle.UnpicklingError:
        raise LusebenchError(
            f"{path} holds objects other than tensors and plain values; refused (a checkpoint must not run code)"
        ) from None
    except Exception as error:  # torch.load raises many types for a file that is not a checkpoint
        # The first sentence of torch's message says what is wrong (e.g. a zip archive cut short);
        # bounded, since it may quote the file.
        reason = " ".join(str(error).split()).split(". ")[0][:160]
        raise LusebenchError(f"cannot read checkpoint {path} (truncated, or not a torch checkpoint): "
                             f"{type(error).__name__}: {reason}") from None
    if not isinstance(payload, dict) or "model" not in payload or "train_schema_version" not in payload:
        raise LusebenchError(f"{path} is not a lusebench training checkpoint")
    if payload["train_schema_version"] != TRAIN_SCHEMA_VERSION:
        raise LusebenchError(
            f"{path} was written by lusebench {payload.get('lusebench_version')} "
            f"(checkpoint schema {payload['train_schema_version']}); this version reads {TRAIN_SCHEMA_VERSION}"
        )
    wrong = [key for key, kind in _PAYLOAD_TYPES.items() if not isinstance(payload.get(key), kind)]
    if wrong:
        raise LusebenchError(
            f"{path} is not a complete lusebench training checkpoint: {', '.join(wrong)} missing or mistyped"
        )
    try:
        config = TrainConfig(**payload["train_config"])
    except TypeError as error:
        raise LusebenchError(f"{path}: train_config does not fit this lusebench: {error}") from None
    model_config = payload["model"].get("config")
    if not isinstance(model_config, dict) or model_config.get("name") != config.system:
        raise LusebenchError(f"{path}: its model is not the system its train_config names ({config.system!r})")
    return payload


def val_simulation_config(config: TrainConfig, sample_rate: int, duration_s: float) -> SimulationConfig:
    """The val set a run renders for itself, at the clip length the model takes: on a user's AudioCaps
    copy the fixed audiocaps-val-Nsrc recipes it covers (the first ``val_mixtures``), else the
    fixed val-Nsrc seed; on the first head of ``config.hrtf`` (a run trained on several selects on the first)."""
    head = split_heads(config.hrtf)[0]
    audiocaps = f"audiocaps-val-{config.num_sources}src"
    if audiocaps in BENCHMARK_SETS and is_copy_of(config.corpus, audiocaps, "val", config.num_sources):
        fixed = BENCHMARK_SETS[audiocaps]
        return dataclasses.replace(
            fixed.config(sample_rate=sample_rate, duration_s=duration_s, corpus=config.corpus, hrtf=head),
            num_mixtures=min(config.val_mixtures, fixed.num_mixtures),
        )
    # A run on minicaps keeps the seed of the first fixed val sets, so its val set is the one it had before debcaps.
    prefix = "minicaps-" if config.corpus.split("+")[0] == "minicaps" else ""
    benchmark = BENCHMARK_SETS[f"{prefix}val-{config.num_sources}src"] if config.num_sources in (2, 3) else None
    seed = benchmark.seed if benchmark else 1000 + config.num_sources
    return SimulationConfig(
        num_sources=config.num_sources, split="val", num_mixtures=config.val_mixtures, seed=seed,
        sample_rate=sample_rate, duration_s=duration_s, corpus=config.corpus, hrtf=head,
    )


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """The device ``name`` names, checked to exist here; by default this rank's GPU, else the CPU.

    Raises:
        LusebenchError: a name that is not cpu, cuda or cuda:N, or a GPU this machine lacks.
    """
    if name is None:
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise LusebenchError(f"--device {name!r}: choose cpu, cuda or cuda:N")
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= available:
        raise LusebenchError(f"--device {name}: this machine has {available} usable CUDA device(s)")
    return device


def autocast(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA (lusebench's choice for speed and memory; the paper names no precision); float32 elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _forward(
    model: BaselineSystem | DistributedDataParallel, batch: dict[str, Any], device: torch.device, query: str = "caption"
) -> SystemOutput:
    """The model's output on one batch, in float32 whatever the autocast; ``query`` names the
    batch's list of captions to ask with."""
    with autocast(device):
        output = model(batch["mixture"].to(device, non_blocking=True), batch[query])
    # Losses in float32: SI-SNR's log ratios lose too much in bf16.
    return dataclasses.replace(
        output,
        waveform=None if output.waveform is None else output.waveform.float(),
        doa_likelihood=None if output.doa_likelihood is None else output.doa_likelihood.float(),
    )


def batch_loss(
    model: BaselineSystem | DistributedDataParallel, batch: dict[str, Any], device: torch.device,
    level_match: bool = False,
) -> dict[str, torch.Tensor]:
    """The system's loss terms on one batch; the forward pass runs through ``model`` (DDP included).
    ``level_match``: BaselineSystem.loss's, set by a run with absent queries."""
    output = _forward(model, batch, device)
    system = model.module if isinstance(model, DistributedDataParallel) else model
    azimuth = batch["azimuth_deg"].to(device)
    return system.loss(output, batch["target"].to(device), azimuth, batch["mixture"].to(device), torch.isnan(azimuth),
                       level_match)


@torch.no_grad()
def validate(
    model: BaselineSystem, loader: DataLoader, device: torch.device, swap_query: bool = False,
    level_match: bool = False,
) -> dict[str, float]:
    """Means over a rendered set: ``loss`` (the total, which picks the best checkpoint), and what
    a user reads: ``si_snri_db`` (extraction) and ``doa_mae_deg`` (argmax, localization), both over
    the items whose target is present (a NaN azimuth marks an absent one).

    With ``swap_query`` the model is asked for the first interferer while the figures still score
    the target: a system that follows its query falls well below its own figures, one that ignores
    the query scores the same (scripts/train_val_gap.py). ``level_match`` goes to the loss, as in
    training.
    """
    model.eval()
    sums: dict[str, float] = {}
    count = counts_present = 0
    for batch in loader:
        if swap_query and None in batch["interferer_caption"]:
            raise LusebenchError("the query-swap check needs the manifest's captions of at least two sources per mixture")
        output = _forward(model, batch, device, "interferer_caption" if swap_query else "caption")
        target, azimuth = batch["target"].to(device), batch["azimuth_deg"].to(device)
        mixture = batch["mixture"].to(device).float()
        absent = torch.isnan(azimuth)
        present = ~absent
        items, present_items = len(batch["caption"]), int(present.sum())
        sums["loss"] = sums.get("loss", 0.0) + float(model.loss(output, target, azimuth, mixture, absent, level_match)["total"]) * items
        values = {}
        if output.waveform is not None and present_items:
            estimate, reference = output.waveform[present], target[present]
            values["si_snri_db"] = float(neg_si_snr(mixture[present], reference) - neg_si_snr(estimate, reference))
        if output.doa_likelihood is not None and present_items:
            bins = output.doa_likelihood.shape[1]
            predicted = output.doa_likelihood[present].argmax(dim=1).float() * (360.0 / bins)
            values["doa_mae_deg"] = float(circular_distance_deg(predicted, azimuth[present]).mean())
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value * present_items
        count += items
        counts_present += present_items
    model.train()
    return {key: value / max(count if key == "loss" else counts_present, 1) for key, value in sums.items()}


def selection_criterion(val: dict[str, float], select_on: Selection) -> float:
    """The number, lower is better, that a validation is judged by.

    ``loss``: the val loss. ``metrics``: -SI-SNRi + MAE / MAE_DEG_PER_DB, over what the system
    outputs. At the small preset the DoA loss (an MSE over 360 bins) and the MAE disagree: the
    loss rewards near-empty likelihoods (its all-zero floor is 39.6) and rose while the MAE fell
    from 74 to 56 deg, so the loss kept the 250-step checkpoint.
    """
    if select_on == "loss":
        return val["loss"]
    return -val.get("si_snri_db", 0.0) + val.get("doa_mae_deg", 0.0) / MAE_DEG_PER_DB


def train(
    config: TrainConfig,
    out: Path | str,
    resume: bool = False,
    val_data: Path | str | None = None,
    device: str | None = None,
    progress: bool = True,
    force: bool = False,
    command: str | None = None,
) -> Path:
    """Train ``config.system`` into ``out`` (``last.pt``, ``best.pt``, ``metrics.jsonl``, ``provenance.json``).

    Every argument is checked before anything is written. A folder that holds an earlier run is
    refused unless ``resume`` (continue it; a finished run is left as it is) or ``force``.

    Args:
        config: the run.
        out: run folder; holds ``train_config.json`` and the checkpoints.
        resume: continue from ``out/last.pt``.
        force: start over in a folder that holds an earlier run, removing its checkpoints,
            metrics, TensorBoard logs, and its val set if the new run's differs.
        val_data: a rendered val folder; rendered into ``out/val`` when None.
        device: ``cpu``, ``cuda``, ``cuda:1``; default cuda when available (the local rank's GPU under torchrun).
        progress: show progress bars (rank 0).
        command: the command line that asked for the run, kept in ``provenance.json`` with the
            lusebench commit (each ``--resume`` adds its own record).

    Returns:
        Path of the best checkpoint: ``best.pt``, written even when no epoch finished.

    Raises:
        LusebenchError: a bad argument, an earlier run in ``out`` without ``resume`` or ``force``,
            a foreign checkpoint, or a non-finite loss.
    """
    out = Path(out)
    ddp = _setup_distributed()
    try:
        return _train(config, out, resume, force, val_data, device, progress, ddp, command)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


_RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "provenance.json", "tensorboard")


@contextmanager
def _removed_on_failure(folder: Path, remove: bool) -> Iterator[None]:
    """Remove ``folder`` (when ``remove``) if the block fails."""
    try:
        yield
    except BaseException:
        if remove:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _load_state(path: Path, what: str, load: Any, state: Any) -> None:
    """``load(state)`` for one part of a resumed checkpoint, one line when it does not fit this run."""
    try:
        load(state)
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0][:200]
        raise LusebenchError(f"--resume: the {what} in {path} do not fit this run: {first}") from None


def _earlier_run(out: Path, force: bool, val_config: SimulationConfig | None) -> list[Path]:
    """What of an earlier run in ``out`` a new run would replace; refused unless ``force``.

    Args:
        val_config: the val set the new run renders into ``out/val``; None when it reads another.
    """
    if out.exists() and not out.is_dir():
        raise LusebenchError(f"--out {out} is a file, not a run folder")
    earlier = [out / name for name in _RUN_FILES if (out / name).exists()]
    val_dir = out / "val"
    if val_config is not None and val_dir.exists():
        try:
            same_val = load_config(val_dir) == val_config
        except (LusebenchError, ValueError, TypeError):  # a damaged val folder is not this run's set
            same_val = False
        if not same_val:
            earlier.append(val_dir)
    if earlier and not force:
        raise LusebenchError(
            f"{out} holds an earlier run ({', '.join(p.name for p in earlier)}); "
            "--resume to continue it or --force to start over"
        )
    return earlier


def _finished(config: TrainConfig, checkpoint: dict[str, Any]) -> str | None:
    """Why the run a checkpoint stopped is over under ``config``'s limits, or None if it goes on."""
    if checkpoint["schedule"]["bad_epochs"] >= config.stop_after:
        return f"no better validation {config.select_on} for {config.stop_after} epochs"
    if config.max_steps is not None and checkpoint["step"] >= config.max_steps:
        return f"{checkpoint['step']} steps done, --max-steps {config.max_steps}"
    if config.max_epochs is not None and checkpoint["epoch"] >= config.max_epochs:
        return f"{checkpoint['epoch']} epochs done, --max-epochs {config.max_epochs}"
    return None


def _keep_metrics_before(path: Path, epoch: int) -> None:
    """Drops the records of epoch ``epoch`` on from ``metrics.jsonl``.

    A run killed after writing an epoch's record but before its checkpoint (or in the middle of
    the record) repeats that epoch on resume, which would otherwise leave two records for it.
    """
    if not (path.exists() or path.is_symlink()):
        return
    kept = []
    # Read through the door: a FIFO there would block this read and every later append.
    for line in read_regular_file(path, max_bytes=_MAX_METRICS_BYTES).decode("utf-8", "replace").splitlines():
        try:
            if decode_json(line.encode(), path)["epoch"] < epoch:
                kept.append(line + "\n")
        except (LusebenchError, KeyError, TypeError):  # a record torn by the kill
            continue
    atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))


# A record per resume of a few hundred bytes: thousands of resumes, and never a stranger's gigabyte.
_MAX_PROVENANCE_BYTES = 1 << 20


def _record_provenance(path: Path, command: str | None, resumed: bool) -> None:
    """``provenance.json``: how the run started (command, lusebench commit) and each resume after."""
    record = provenance(command)
    try:
        earlier = decode_json(read_regular_file(path, max_bytes=_MAX_PROVENANCE_BYTES), path) if resumed else None
    except LusebenchError:  # missing or damaged: the resume starts a new record
        earlier = None
    if isinstance(earlier, dict):
        write_json(path, {**earlier, "resumes": [*earlier.get("resumes", []), record]})
    else:
        write_json(path, {**record, "resumes": []})


def _open_val_set(val_data: Path, config: TrainConfig, sample_rate: int, clip_samples: int) -> RenderedSet:
    val_set = RenderedSet(val_data)
    if val_set.num_samples != clip_samples or val_set.sample_rate != sample_rate:
        raise LusebenchError(
            f"val set {val_data} has {val_set.num_samples} samples at {val_set.sample_rate} Hz; "
            f"{config.system} ({config.preset}) needs {clip_samples} at {sample_rate} Hz"
        )
    return val_set


def _train(
    config: TrainConfig, out: Path, resume: bool, force: bool, val_data: Path | str | None, device_name: str | None,
    progress: bool, ddp: _Distributed, command: str | None = None,
) -> Path:
    if resume and force:
        raise LusebenchError("--resume continues the run in OUT, --force starts it over: choose one")
    device = resolve_device(device_name, ddp.local_rank)
    if device.type == "cpu" and config.preset == "paper" and ddp.main:
        log.warning("training the paper preset on CPU takes ~4 s per mixture per step here; "
                    "use a GPU, or --preset small (about 20 min on a CPU) or tiny (seconds) to try the loop")
    last_path, best_path = out / "last.pt", out / "best.pt"
    checkpoint = None
    if resume:
        if not last_path.is_file():
            raise LusebenchError(f"--resume: no checkpoint to resume in {out} (expected {last_path.name})")
        checkpoint = load_checkpoint(last_path)
        stored = TrainConfig(**checkpoint["train_config"])
        if stored.system != config.system:
            raise LusebenchError(f"--resume: {last_path} trains {stored.system!r}, not {config.system!r}")
        # The run goes on as it was configured; only its limits may change.
        config = dataclasses.replace(stored, max_steps=config.max_steps, max_epochs=config.max_epochs)
        finished = _finished(config, checkpoint)
        if finished is not None:
            log.info("the run in %s is complete (%s); nothing to do", out, finished)
            return best_path if best_path.is_file() else last_path

    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    model = build_system(config.system, config.preset, **config.model_overrides()).to(device)
    if checkpoint is not None:
        _load_state(last_path, "model weights", model.load_state_dict, checkpoint["model"]["state_dict"])
    sample_rate, clip_samples = model.config.sample_rate, model.config.clip_samples
    duration_s = clip_samples / sample_rate

    val_config = val_simulation_config(config, sample_rate, duration_s)
    val_set = None if val_data is None else _open_val_set(Path(val_data), config, sample_rate, clip_samples)
    # The loader's workers open the training corpus and HRTF lazily; open them once here, so that a
    # bad --corpus or --hrtf fails before the run folder exists, with --val-data given too.
    # skip_missing as the dynamic mixing has it: a YouTube copy of AudioCaps always lacks some clips.
    open_corpus(config.corpus, skip_missing=True).split("train")
    for head in split_heads(config.hrtf):
        load_hrtf(head, sample_rate)
    earlier = [] if resume else _earlier_run(out, force, val_config if val_data is None else None)
    if ddp.world > 1:
        dist.barrier()  # every rank has checked its arguments before rank 0 writes
    # A run folder this call creates goes again when the set-up fails (an unknown corpus, a garbage
    # HRTF, too few captions for --sources: found while rendering the val set), so no half run is left.
    with _removed_on_failure(out, ddp.main and not out.exists()):
        if ddp.main:
            for path in earlier:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LusebenchError(f"cannot create run folder {out}: {error.strerror}") from None
            if checkpoint is not None:
                _keep_metrics_before(out / "metrics.jsonl", checkpoint["epoch"])
            write_json(out / "train_config.json", dataclasses.asdict(config))
            _record_provenance(out / "provenance.json", command, resumed=checkpoint is not None)
        if val_set is None:
            val_data = out / "val"
            if ddp.main:
                simulate(val_config, val_data, progress=progress)
            if ddp.world > 1:
                dist.barrier()
            val_set = _open_val_set(val_data, config, sample_rate, clip_samples)
    # Loaders get their own generator: iterating one would otherwise draw from the global RNG,
    # and a resumed run would see other dropout masks than an uninterrupted one.
    val_loader = DataLoader(
        val_set, batch_size=config.batch_size, collate_fn=collate, num_workers=0, generator=torch.Generator()
    )

    train_set = DynamicMixingDataset(
        SimulationConfig(
            num_sources=config.num_sources, split="train", num_mixtures=config.epoch_mixtures, seed=config.seed,
            sample_rate=sample_rate, duration_s=duration_s, corpus=config.corpus, hrtf=config.hrtf,
        ),
        query_pairs=config.query_pairs, absent_share=config.absent_share,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    schedule = LearningRate(config)
    step, epoch, position = 0, 0, 0
    if checkpoint is not None:
        _load_state(last_path, "optimizer state", optimizer.load_state_dict, checkpoint["optimizer"])
        _load_state(last_path, "schedule", schedule.load_state_dict, checkpoint["schedule"])
        step, epoch, position = checkpoint["step"], checkpoint["epoch"], checkpoint["position"]
        _load_state(last_path, "RNG state", _set_rng_state, checkpoint["rng"])
        log.info("resumed %s at epoch %d, step %d", last_path, epoch, step)
    wrapped = model
    if ddp.world > 1:
        wrapped = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def payload(next_position: int, at_epoch: int) -> dict[str, Any]:
        return {
            "train_schema_version": TRAIN_SCHEMA_VERSION,
            "lusebench_version": __version__,
            "train_config": dataclasses.asdict(config),
            "model": model.checkpoint_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "rng": _rng_state(),
            "step": step,
            "epoch": at_epoch,
            "position": next_position,
            "device": device.type,
            "absent_threshold": absent_threshold(config, model),
        }

    # -SI-SNR is blind to level: a run asked to silence absent queries must also answer present ones at their level.
    level_match = config.absent_share > 0
    metrics_path = out / "metrics.jsonl"
    writer = _tensorboard(out) if ddp.main else None
    stop = False
    model.train()
    while not stop:
        if config.max_epochs is not None and epoch >= config.max_epochs:
            break
        train_set.set_epoch(epoch)
        sampler = _RankIndices(len(train_set), ddp.rank, ddp.world, start=position * config.batch_size)
        loader = DataLoader(
            train_set, batch_size=config.batch_size, sampler=sampler, collate_fn=collate,
            num_workers=config.num_workers, drop_last=True, pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(config.seed + epoch),
        )
        started, waited, sums, batches = time.perf_counter(), 0.0, {}, 0
        bar = tqdm(total=len(loader), desc=f"epoch {epoch}", unit="step", disable=not (progress and ddp.main))
        fetch = time.perf_counter()
        for batch in loader:
            waited += time.perf_counter() - fetch
            for group in optimizer.param_groups:
                group["lr"] = schedule.at(step)
            terms = batch_loss(wrapped, batch, device, level_match)
            loss = terms["total"]
            if not _finite_on_every_rank(loss, ddp):
                where = " on at least one rank" if ddp.world > 1 else ""
                raise LusebenchError(
                    f"non-finite loss{where} at epoch {epoch}, step {step}; weights left as in {last_path.name}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            step += 1
            position += 1
            batches += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            bar.update()
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
            if ddp.main and step % 50 == 0 and writer is not None:
                writer.add_scalar("train/loss", float(loss.detach()), step)
            if config.max_steps is not None and step >= config.max_steps:
                stop = True
                break
            fetch = time.perf_counter()
        bar.close()
        if batches < len(loader):
            # Stopped mid-epoch by --max-steps: keep the place so --resume continues this epoch.
            if ddp.main:
                save_checkpoint(last_path, payload(position, epoch))
                if not best_path.is_file():
                    # No epoch finished, so nothing was validated: a short run still leaves the
                    # best.pt that infer is pointed at. Not a metrics.jsonl record (that is per
                    # epoch); the next finished epoch of a resumed run replaces this checkpoint.
                    val = validate(model, val_loader, device, level_match=level_match)
                    log.info("stopped after %d steps, before an epoch ended: validated once (%s)", step,
                             ", ".join(f"{key} {value:.2f}" for key, value in val.items()))
                    save_checkpoint(best_path, payload(position, epoch))
            break
        val = validate(model, val_loader, device, level_match=level_match)
        val_loss = val["loss"]
        improved, stop_now = schedule.after_validation(selection_criterion(val, config.select_on))
        stop = stop or stop_now
        epoch += 1
        position = 0
        if ddp.main:
            record = {
                "epoch": epoch - 1, "step": step, **{f"val_{key}": value for key, value in val.items()},
                "lr": schedule.at(step),
                "seconds": time.perf_counter() - started, "data_wait_s": waited,
                **{f"train_{key}": value / max(batches, 1) for key, value in sums.items()},
            }
            with open(metrics_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            if writer is not None:
                writer.add_scalar("val/loss", val_loss, step)
            log.info(
                "epoch %d: train %.4f, val %.4f%s%s, lr %.2e, %.0f s (%.0f%% waiting for data)",
                epoch - 1, record.get("train_total", float("nan")), val_loss, " (best)" if improved else "",
                "".join(f", {key} {value:.2f}" for key, value in val.items() if key != "loss"),
                record["lr"], record["seconds"], 100 * waited / max(record["seconds"], 1e-9),
            )
            save_checkpoint(last_path, payload(0, epoch))
            if improved:
                save_checkpoint(best_path, payload(0, epoch))
    if writer is not None:
        writer.close()
    return best_path


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(out / "tensorboard"))
