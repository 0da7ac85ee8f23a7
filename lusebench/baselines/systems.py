"""The paper's five systems as one configurable module, a registry by name, and checkpoint dicts.

=============== ======== ============ ========= ========= ======================================
name            paper    tasks        channels  GCC-PHAT  parts
=============== ======== ============ ========= ========= ======================================
t-htdemucs      T-HTD.   extraction   1         no        backbone (1 ch, run per ear)
mlp-gcc         MLP-GCC  localization 2         yes       text vector + GCC-PHAT -> DoA decoder
luseel-extract  LuSeeL†  extraction   2         no        backbone
luseel-nogcc    LuSeeL°  both         2         no        backbone + spectral DoA encoder
luseel          LuSeeL   both         2         yes       backbone + spectral DoA + GCC-PHAT
=============== ======== ============ ========= ========= ======================================

Every system takes a (B, 2, T) binaural mixture and captions (or precomputed
:class:`TextEmbedding`) and returns a :class:`SystemOutput`. The frozen text encoder is not part
of the module's state: it is rebuilt from the config (the embedded MiniLM, a local T5, or the
seeded tiny T5), so a checkpoint holds only trained weights plus the config that rebuilds the
module (:func:`system_from_checkpoint_dict`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any, Literal

import torch
from torch import nn

from lusebench import __version__
from lusebench.baselines.backbone import BackboneConfig, HybridBackbone
from lusebench.baselines.localization import DoAConfig, DoADecoder, GccPhatConfig, SpectralDoAEncoder, gcc_phat
from lusebench.baselines.losses import (
    LossConfig, delta_spectrum_loss, doa_label_prior, doa_mse, neg_si_snr, output_level_db,
)
from lusebench.baselines.text import (
    CachedTextEncoder,
    TextAdapter,
    TextConfig,
    TextEmbedding,
    encoder_width,
    load_text_encoder,
)
from lusebench.errors import LusebenchError

CHECKPOINT_SCHEMA_VERSION = 1
Preset = Literal["paper", "small", "tiny"]


@dataclass(frozen=True)
class SystemConfig:
    """Everything that builds one system; defaults are the full LuSeeL at the paper preset.

    Attributes:
        name: registry name of the system.
        sample_rate: audio sample rate in Hz.
        clip_samples: clip length the localization head is built for (paper: 10 s = 160000).
        extraction: the system returns a waveform.
        localization: the system returns DoA likelihoods.
        spectral_doa: localization reads the backbone's spectral layers (else the text vector).
        backbone: extraction backbone; None for a system without one (MLP-GCC).
        text: frozen text encoder and trainable adapter.
        gcc: GCC-PHAT features for localization; None to leave them out.
        doa: localization head sizes.
        loss: loss weights.
    """

    name: str = "luseel"
    sample_rate: int = 16000
    clip_samples: int = 160000
    extraction: bool = True
    localization: bool = True
    spectral_doa: bool = True
    backbone: BackboneConfig | None = BackboneConfig()
    text: TextConfig = TextConfig()
    gcc: GccPhatConfig | None = GccPhatConfig()
    doa: DoAConfig = DoAConfig()
    loss: LossConfig = LossConfig()

    @property
    def input_channels(self) -> int:
        """Channels the network itself takes (1 for T-HTDemucs, which is run on each ear)."""
        return self.backbone.audio_channels if self.backbone is not None else 2

    @property
    def tasks(self) -> str:
        if self.extraction and self.localization:
            return "both"
        return "extraction" if self.extraction else "localization"


@dataclass(frozen=True)
class SystemOutput:
    """What a system returns for a batch.

    Attributes:
        waveform: (B, 2, T) extracted binaural target, or None for a localization-only system.
        doa_likelihood: (B, num_bins) sigmoid likelihoods per azimuth bin, or None.
        spectral_layers: spectral stream (B, N_spec, dim) after each transformer layer; empty
            without a backbone, and from the per-ear batch (2B) for T-HTDemucs.
    """

    waveform: torch.Tensor | None
    doa_likelihood: torch.Tensor | None
    spectral_layers: tuple[torch.Tensor, ...]


class BaselineSystem(nn.Module):
    """One of the five systems, chosen by its config; see the module docstring.

    Args:
        config: what to build. Use :func:`build_system` for the registered systems.
    """

    def __init__(self, config: SystemConfig) -> None:
        super().__init__()
        if not (config.extraction or config.localization):
            raise LusebenchError(f"system {config.name!r} has neither extraction nor localization")
        if (config.extraction or (config.localization and config.spectral_doa)) and config.backbone is None:
            raise LusebenchError(f"system {config.name!r} needs a backbone for extraction or spectral DoA")
        self.config = config
        self._encoder: CachedTextEncoder | None = None
        self.text_adapter = TextAdapter(encoder_width(config.text), config.text)
        self.backbone = HybridBackbone(config.backbone, config.text.adapter_dim) if config.backbone else None
        self.spectral_doa: SpectralDoAEncoder | None = None
        self.doa_decoder: DoADecoder | None = None
        if config.localization:
            if config.spectral_doa:
                tokens = config.backbone.spectral_tokens(config.clip_samples)
                self.spectral_doa = SpectralDoAEncoder(tokens, config.backbone.transformer_layers, config.doa)
                width = config.backbone.transformer_dim
            else:
                width = config.text.adapter_dim
            if config.gcc is not None:
                width += config.gcc.num_features
            prior = doa_label_prior(config.doa.num_bins, config.loss.sigma2_deg2, config.loss.doa_label)
            self.doa_decoder = DoADecoder(width, config.doa, prior)

    @property
    def text_encoder(self) -> CachedTextEncoder:
        """The frozen, cached text encoder, loaded on first use (not part of the state dict)."""
        if self._encoder is None:
            self._encoder = CachedTextEncoder(load_text_encoder(self.config.text))
        return self._encoder

    def embed_text(self, text: Sequence[str] | TextEmbedding, device: torch.device) -> TextEmbedding:
        """Captions -> frozen token embeddings on ``device``; embeddings pass through."""
        if isinstance(text, TextEmbedding):
            return text.to(device)
        if isinstance(text, str):
            raise LusebenchError("captions must be a list of strings, one per mixture, not a single string")
        return self.text_encoder.encode(list(text)).to(device)

    def doa_features(
        self, mixture: torch.Tensor, pooled_text: torch.Tensor, spectral_layers: tuple[torch.Tensor, ...]
    ) -> torch.Tensor:
        """Input of the DoA decoder (B, D): spectral DoA vector (or text vector), then GCC-PHAT.

        At the paper preset for ``luseel``: 512 + 376 = 888.
        """
        parts = [self.spectral_doa(spectral_layers) if self.spectral_doa is not None else pooled_text]
        if self.config.gcc is not None:
            parts.append(gcc_phat(mixture, self.config.gcc).flatten(1).to(parts[0].dtype))
        return torch.cat(parts, dim=1)

    def forward(self, mixture: torch.Tensor, text: Sequence[str] | TextEmbedding) -> SystemOutput:
        """Extracts and/or localizes the captioned source.

        Args:
            mixture: (B, 2, T) binaural waveform (T-HTDemucs also takes (B, 1, T)).
            text: B captions, or their precomputed frozen-encoder embeddings.

        Returns:
            The :class:`SystemOutput`; the waveform has the mixture's shape.

        Raises:
            LusebenchError: wrong mixture shape, caption count, or clip length for localization.
        """
        cfg = self.config
        if mixture.dim() != 3 or mixture.shape[1] not in ((1, 2) if cfg.input_channels == 1 else (2,)):
            raise LusebenchError(f"system {cfg.name!r} needs a (batch, 2, time) mixture, got {tuple(mixture.shape)}")
        batch, channels, length = mixture.shape
        embedding = self.embed_text(text, mixture.device)
        if embedding.tokens.shape[0] != batch:
            raise LusebenchError(f"{batch} mixtures but {embedding.tokens.shape[0]} captions")
        if cfg.localization and length != cfg.clip_samples:
            raise LusebenchError(
                f"system {cfg.name!r} localizes {cfg.clip_samples}-sample clips only, got {length} samples"
            )
        _, pooled = self.text_adapter(embedding)  # (B, adapter_dim)

        waveform, layers = None, ()
        if self.backbone is not None:
            ears = channels // cfg.input_channels
            # A single-channel backbone sees each ear as its own item, so it maps (B,2,T)->(B,2,T).
            out = self.backbone(
                mixture.reshape(batch * ears, cfg.input_channels, length),
                pooled.repeat_interleave(ears, dim=0),
                decode=cfg.extraction,
            )
            layers = out.spectral_layers
            if out.waveform is not None:
                waveform = in_mixture_polarity(out.waveform.reshape(batch, channels, length), mixture)
        likelihood = None
        if self.doa_decoder is not None:
            likelihood = self.doa_decoder(self.doa_features(mixture, pooled, layers))
        return SystemOutput(waveform, likelihood, layers)

    def loss(
        self,
        output: SystemOutput,
        target_waveform: torch.Tensor | None,
        azimuth_deg: torch.Tensor | None,
        mixture: torch.Tensor | None = None,
        absent: torch.Tensor | None = None,
        level_match: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Loss terms and their total ``-SI-SNR + delta spectrum + gamma * DoA MSE`` (paper eq. 1-3).

        Absent-target items (``absent``) are extracted to silence: their extraction loss is the
        output's level re the mixture (losses.output_level_db) instead of the paper's two terms, and
        the batch's extraction loss is the mean over items of each one's own; their DoA label is
        all zeros (a NaN azimuth).

        ``level_match`` adds, on present items, the distance in dB between the output's level and the
        target's (both re the mixture). A run with absent queries needs it: -SI-SNR ignores scale
        and the delta spectrum is too small to matter, so without it the cheapest way to silence
        absent queries is to answer every query 38 dB under the mixture (measured: luseel-extract,
        small preset, 10 % absent queries; docs/small-preset.md).

        Args:
            output: this system's output.
            target_waveform: (B, 2, T) binaural image of the target; needed for extraction.
            azimuth_deg: (B,) target azimuth in degrees (NaN where absent); needed for localization.
            mixture: (B, 2, T) the input; needed for extraction where an item is absent or with
                ``level_match``.
            absent: (B,) bool, the absent-target items; None or all False, without ``level_match``:
                the paper's loss exactly.
            level_match: add the present items' level error (train-baseline sets it where
                ``--absent-share`` is above 0).

        Returns:
            ``neg_si_snr`` and ``delta_spectrum`` (extraction, over the present items),
            ``level_error_db`` (with ``level_match``, over the present items),
            ``absent_level_db`` (extraction, over the absent items, where the batch has some),
            ``doa_mse`` (localization), ``total``.
        """
        terms: dict[str, torch.Tensor] = {}
        total = None
        if output.waveform is not None:
            if target_waveform is None or target_waveform.shape != output.waveform.shape:
                got = None if target_waveform is None else tuple(target_waveform.shape)
                raise LusebenchError(f"target waveform must be {tuple(output.waveform.shape)}, got {got}")
            some_absent = absent is not None and bool(absent.any())
            if (some_absent or level_match) and (mixture is None or mixture.shape != output.waveform.shape):
                raise LusebenchError("absent-target items and level matching need the mixture, shaped as the output, for their loss")
            # Without absent items the present ones are the whole batch, unindexed: the paper's loss to the bit.
            present = ~absent if some_absent else None
            estimate, target = output.waveform, target_waveform
            mixture_present = mixture
            if some_absent:
                terms["absent_level_db"] = output_level_db(output.waveform[absent], mixture[absent]).mean()
                total = terms["absent_level_db"] * (int(absent.sum()) / len(absent))
                estimate, target, mixture_present = estimate[present], target[present], mixture[present]
            if len(estimate):
                terms["neg_si_snr"] = neg_si_snr(estimate, target)
                terms["delta_spectrum"] = delta_spectrum_loss(estimate, target, self.config.loss.resolutions)
                extraction = terms["neg_si_snr"] + terms["delta_spectrum"]
                if level_match:
                    terms["level_error_db"] = (
                        output_level_db(estimate, mixture_present) - output_level_db(target, mixture_present)
                    ).abs().mean()
                    extraction = extraction + terms["level_error_db"]
                total = extraction if total is None else total + extraction * (len(estimate) / len(absent))
        if output.doa_likelihood is not None:
            if azimuth_deg is None or azimuth_deg.shape != output.doa_likelihood.shape[:1]:
                got = None if azimuth_deg is None else tuple(azimuth_deg.shape)
                raise LusebenchError(f"azimuth_deg must be ({output.doa_likelihood.shape[0]},), got {got}")
            loss = self.config.loss
            terms["doa_mse"] = doa_mse(output.doa_likelihood, azimuth_deg, loss.sigma2_deg2, loss.doa_label)
            weighted = self.config.loss.gamma * terms["doa_mse"]
            total = weighted if total is None else total + weighted
        terms["total"] = total
        return terms

    def checkpoint_dict(self) -> dict[str, Any]:
        """Weights plus the config that rebuilds this module with no config file."""
        return {
            "schema_version": CHECKPOINT_SCHEMA_VERSION,
            "lusebench_version": __version__,
            "config": dataclasses.asdict(self.config),
            "state_dict": self.state_dict(),
        }


def in_mixture_polarity(waveform: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """``waveform`` with each ear's sign flipped where it is anti-correlated with that ear's mixture.

    Every loss term of the paper is blind to the output's sign (-SI-SNR, the delta spectrum's
    magnitudes, levels), so a network keeps whatever polarity its initial weights gave each ear:
    T-HTDemucs with seed 0 answered every item inverted, which plain SDR scores as about -6 dB
    while SI-SNR does not notice. The target is part of the mixture, so a right answer correlates
    positively with it. The losses, and so training, are unchanged to the bit (negation is exact).

    Args:
        waveform: (B, C, T) extracted signal.
        mixture: (B, C, T) the input it was extracted from.
    """
    projection = (waveform * mixture).sum(dim=-1, keepdim=True)
    return torch.where(projection < 0, -waveform, waveform)


def _dataclass_type(annotation: Any) -> type | None:
    """The dataclass inside ``X`` or ``X | None``, else None."""
    candidates = typing.get_args(annotation) or (annotation,)
    return next((c for c in candidates if isinstance(c, type) and is_dataclass(c)), None)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    """Rebuilds a (nested) frozen config dataclass from plain values; lists become tuples."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise LusebenchError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        sub = _dataclass_type(hints[name])
        if sub is not None and isinstance(value, dict):
            value = _from_dict(sub, value, f"{where}.{name}")
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        _check_type(value, hints[name], f"{where}.{name}")  # a checkpoint's config is a stranger's
        kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> SystemConfig:
    """Inverse of ``dataclasses.asdict`` for :class:`SystemConfig` (also after a JSON round trip)."""
    return _from_dict(SystemConfig, data, "system config")


# No size of any preset comes near this (the widest is a 160,000-sample clip); a crafted config
# asking for more is refused before anything of its size is built.
MAX_CONFIG_INT = 1 << 20


def _check_weights_fit(config: SystemConfig, state_dict: Any) -> None:
    """Refuses weights that are not tensors of exactly the shapes ``config`` builds, before building it.

    The system is first built on the meta device (no memory), so a config whose sizes ask for
    terabytes is refused by comparing its shapes with the weights the file holds.

    Raises:
        LusebenchError: a size over ``MAX_CONFIG_INT``, a state dict that is not a mapping of
            tensors, or a missing, extra or differently shaped tensor.
    """
    def sizes(value: Any, where: str) -> Iterator[tuple[str, int]]:
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                yield from sizes(getattr(value, field.name), f"{where}.{field.name}")
        elif isinstance(value, (tuple, list)):
            for item in value:
                yield from sizes(item, where)
        elif isinstance(value, int) and not isinstance(value, bool):
            yield where, value

    for where, size in sizes(config, "config"):
        if abs(size) > MAX_CONFIG_INT:
            raise LusebenchError(f"checkpoint {where} is {size}; no system is that large (at most {MAX_CONFIG_INT})")
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise LusebenchError("checkpoint state_dict is not a mapping of names to tensors")
    try:
        with torch.device("meta"):
            expected = {name: tuple(t.shape) for name, t in BaselineSystem(config).state_dict().items()}
    except (RuntimeError, ValueError, TypeError) as error:
        raise LusebenchError(f"checkpoint config does not build a system: {str(error).splitlines()[0][:200]}") from None
    found = {name: tuple(t.shape) for name, t in state_dict.items()}
    wrong = sorted(name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name))
    if wrong:
        name = wrong[0]
        raise LusebenchError(
            f"checkpoint weights do not fit its config: {name} is {found.get(name, 'missing')}, the config builds "
            f"{expected.get(name, 'no such tensor')} ({len(wrong)} tensor(s) differ)"
        )


def system_from_checkpoint_dict(checkpoint: dict[str, Any]) -> BaselineSystem:
    """Rebuilds a system and loads its weights from :meth:`BaselineSystem.checkpoint_dict` output.

    Raises:
        LusebenchError: not a lusebench checkpoint, a newer schema, a config that is not the
            registered system it names, or weights that do not fit.
    """
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state_dict" not in checkpoint:
        raise LusebenchError("not a lusebench system checkpoint (needs 'config' and 'state_dict')")
    version = checkpoint.get("schema_version")
    if version != CHECKPOINT_SCHEMA_VERSION:
        raise LusebenchError(f"checkpoint schema_version {version} is not {CHECKPOINT_SCHEMA_VERSION}")
    if not isinstance(checkpoint["config"], dict):
        raise LusebenchError("checkpoint config is not a mapping of fields")
    config = config_from_dict(checkpoint["config"])
    _check_registered(config)
    _check_weights_fit(config, checkpoint["state_dict"])
    system = BaselineSystem(config)
    try:
        system.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).splitlines()[0]
        raise LusebenchError(f"checkpoint weights do not fit its config: {first}") from error
    return system


# Presets. The tiny preset keeps every part and the layer pattern but shrinks widths and the
# clip (1 s) so a system has well under 1M parameters and trains a step on CPU in a blink; its
# text encoder is the random tiny T5, so it tests the plumbing, not learning. The small preset
# is sized to learn on a 2-core CPU in about 20 minutes (docs/small-preset.md has the sweep that
# chose it): the same 1 s clips, 4x the widths, the real (offline) MiniLM text encoder, and a
# complex-mask spectral output, which reached the mixture's SI-SNR in a quarter of the steps that
# direct prediction needed.
TINY_CLIP_SAMPLES = 16000
_TINY_BACKBONE = BackboneConfig(
    channels=8, nfft=1024, hop_length=256, transformer_dim=32, transformer_heads=2, transformer_ffn=64
)
_TINY_TEXT = TextConfig(encoder="tiny-t5", adapter_dim=32, adapter_layers=2, adapter_heads=2, adapter_ffn=64)
_TINY_GCC = GccPhatConfig(nfft=512, hop_length=256, segments=2)
_TINY_DOA = DoAConfig(layer_tokens_out=8, fdoa_hidden=(32, 16), decoder_hidden=64, decoder_layers=3)
SMALL_CLIP_SAMPLES = 16000
_SMALL_BACKBONE = BackboneConfig(
    channels=16, nfft=1024, hop_length=256, transformer_dim=128, transformer_heads=4, transformer_ffn=256,
    spectral_output="mask",
)
_SMALL_TEXT = TextConfig(encoder="minilm", adapter_dim=128, adapter_layers=2, adapter_heads=2, adapter_ffn=256)
_SMALL_GCC = GccPhatConfig(segments=4)
_SMALL_DOA = DoAConfig(layer_tokens_out=16, fdoa_hidden=(128, 64), decoder_hidden=256, decoder_layers=4)
_PRESETS: dict[str, tuple[BackboneConfig, TextConfig, GccPhatConfig, DoAConfig, int]] = {
    "paper": (BackboneConfig(), TextConfig(), GccPhatConfig(), DoAConfig(), 160000),
    "small": (_SMALL_BACKBONE, _SMALL_TEXT, _SMALL_GCC, _SMALL_DOA, SMALL_CLIP_SAMPLES),
    "tiny": (_TINY_BACKBONE, _TINY_TEXT, _TINY_GCC, _TINY_DOA, TINY_CLIP_SAMPLES),
}


@dataclass(frozen=True)
class SystemSpec:
    """A registered system: its names in lusebench and in the paper, and what it does.

    Attributes:
        name: registry name.
        paper_name: name in the paper's Table 1.
        single_channel: runs a 1-channel backbone on each ear.
        extraction: returns a waveform.
        localization: returns DoA likelihoods.
        spectral_doa: localizes from the backbone's spectral layers.
        gcc: uses GCC-PHAT features.
    """

    name: str
    paper_name: str
    single_channel: bool
    extraction: bool
    localization: bool
    spectral_doa: bool
    gcc: bool

    def config(self, preset: Preset) -> SystemConfig:
        """This system's config at ``preset``."""
        if preset not in _PRESETS:
            raise LusebenchError(f"unknown preset {preset!r}; choose {', '.join(_PRESETS)}")
        backbone, text, gcc, doa, clip = _PRESETS[preset]
        needs_backbone = self.extraction or self.spectral_doa
        return SystemConfig(
            name=self.name,
            clip_samples=clip,
            extraction=self.extraction,
            localization=self.localization,
            spectral_doa=self.spectral_doa,
            backbone=replace(backbone, audio_channels=1 if self.single_channel else 2) if needs_backbone else None,
            text=text,
            gcc=gcc if self.gcc else None,
            doa=doa,
        )


SYSTEMS: dict[str, SystemSpec] = {
    spec.name: spec
    for spec in (
        SystemSpec("t-htdemucs", "T-HTDemucs", True, True, False, False, False),
        SystemSpec("mlp-gcc", "MLP-GCC", False, False, True, False, True),
        SystemSpec("luseel-extract", "LuSeeL†", False, True, False, False, False),
        SystemSpec("luseel-nogcc", "LuSeeL°", False, True, True, True, False),
        SystemSpec("luseel", "LuSeeL", False, True, True, True, True),
    )
}


def _check_registered(config: SystemConfig) -> None:
    """Refuses a config that names no registered system, or is built as another one than it names.

    A submission says which system wrote it from this name, so a checkpoint whose name was edited
    must not pass for the system it now names.

    Raises:
        LusebenchError: an unknown name, or parts that differ from the registered system's.
    """
    spec = SYSTEMS.get(config.name)
    if spec is None:
        raise LusebenchError(f"checkpoint names unknown system {config.name!r}; known: {', '.join(SYSTEMS)}")
    registered = {"extraction": spec.extraction, "localization": spec.localization, "spectral_doa": spec.spectral_doa,
                  "gcc": spec.gcc, "single_channel": spec.single_channel}
    built = {"extraction": config.extraction, "localization": config.localization, "spectral_doa": config.spectral_doa,
             "gcc": config.gcc is not None, "single_channel": config.input_channels == 1}
    differ = [f"{part}={built[part]}" for part in registered if built[part] != registered[part]]
    if differ:
        raise LusebenchError(f"checkpoint says {config.name!r} but is built as another system ({', '.join(differ)})")


def _check_type(value: Any, annotation: Any, where: str) -> None:
    """Rejects an override whose type does not match the field's (an int passes for a float)."""
    if typing.get_origin(annotation) is Literal:
        if value not in typing.get_args(annotation):
            raise LusebenchError(f"{where}: {value!r} is not one of {typing.get_args(annotation)}")
        return
    is_union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    members = typing.get_args(annotation) if is_union else (annotation,)
    allowed = tuple(typing.get_origin(m) or m for m in members)
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok and not (float in allowed and type(value) is int):
        raise LusebenchError(f"{where}: {value!r} does not have the field's type {annotation}")


def apply_overrides(config: Any, overrides: dict[str, Any], where: str = "override") -> Any:
    """A copy of a config dataclass with fields replaced; nested configs take a dict of fields.

    Raises:
        LusebenchError: an unknown field or a value of the wrong type.
    """
    hints = typing.get_type_hints(type(config))
    changes = {}
    for name, value in overrides.items():
        if name not in hints:
            raise LusebenchError(f"{where}: unknown field {name!r}; known: {', '.join(sorted(hints))}")
        current = getattr(config, name)
        if is_dataclass(current) and isinstance(value, dict):
            value = apply_overrides(current, value, f"{where}.{name}")
        elif not is_dataclass(value):
            _check_type(value, hints[name], f"{where}.{name}")
        changes[name] = value
    return replace(config, **changes)


def system_config(name: str, preset: Preset = "paper", **overrides: Any) -> SystemConfig:
    """The config of a registered system at a preset, with ``overrides`` applied.

    Raises:
        LusebenchError: unknown system, preset or override.
    """
    if name not in SYSTEMS:
        raise LusebenchError(f"unknown system {name!r}; choose one of {', '.join(SYSTEMS)}")
    return apply_overrides(SYSTEMS[name].config(preset), overrides, f"{name}/{preset}")


def build_system(
    name: str, preset: Preset = "paper", *, seed: int = 0, device: torch.device | str | None = None, **overrides: Any
) -> BaselineSystem:
    """Builds a registered system with weights initialised from ``seed``.

    Args:
        name: one of :data:`SYSTEMS`.
        preset: ``paper`` (the paper's sizes), ``small`` (learns on a CPU in minutes, 1 s clips)
            or ``tiny`` (plumbing tests, 1 s clips).
        seed: initialisation seed; the caller's global RNG state is left as it was.
        device: where to allocate; ``"meta"`` builds without memory (parameter counts).
        **overrides: :class:`SystemConfig` fields; nested configs take a dict of their fields,
            e.g. ``backbone={"channels": 32}``.

    Raises:
        LusebenchError: unknown system, preset or override, or absent text encoder files.
    """
    config = system_config(name, preset, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device) if device is not None else contextlib.nullcontext():
            return BaselineSystem(config)


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters (the frozen text encoder is not part of the module)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass(frozen=True)
class SystemRow:
    """One line of ``lusebench systems``; ``params`` maps each preset to its parameter count."""

    name: str
    paper_name: str
    tasks: str
    channels: int
    gcc_phat: bool
    params: dict[str, int]


def system_table() -> list[SystemRow]:
    """Every registered system with its parameter counts at every preset (built on 'meta')."""
    return [
        SystemRow(
            spec.name,
            spec.paper_name,
            spec.config("tiny").tasks,
            1 if spec.single_channel else 2,
            spec.gcc,
            {preset: parameter_count(build_system(spec.name, preset, device="meta")) for preset in _PRESETS},
        )
        for spec in SYSTEMS.values()
    ]


def format_system_table(rows: Sequence[SystemRow]) -> str:
    """Plain-text table of :func:`system_table` rows."""
    header = ("name", "paper", "tasks", "channels", "GCC-PHAT", *(f"params ({p})" for p in _PRESETS))
    body = [
        (r.name, r.paper_name, r.tasks, str(r.channels), "yes" if r.gcc_phat else "no",
         *(f"{r.params[p]:,}" for p in _PRESETS))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in (header, *body)]
    return "\n".join(lines)

