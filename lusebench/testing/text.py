"""A tiny T5 saved as a local folder, as a user's own T5 would be: for tests of ``--text-encoder t5``."""

from __future__ import annotations

from pathlib import Path

import torch

_WORDS = ("a", "the", "dog", "barks", "rain", "falls", "on", "roof", "engine", "starts", "wind", "blows")


def make_tiny_t5_folder(folder: Path | str, seed: int = 0) -> Path:
    """Writes a 2-layer, 16-wide random T5 encoder and a word-level tokenizer to ``folder``.

    ``transformers`` loads it with ``from_pretrained(folder, local_files_only=True)`` like any
    downloaded T5; no file is fetched.
    """
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder = Path(folder)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(_WORDS)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", eos_token="</s>").save_pretrained(folder)
    config = T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0, pad_token_id=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        T5EncoderModel(config).save_pretrained(folder)
    return folder
