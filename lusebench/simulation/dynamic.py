"""Dynamic mixing for training: train recipes drawn and rendered on the fly by the same renderer.

Mixture ``i`` of epoch ``e`` is drawn from ``default_rng([seed, split_code, epoch, i])``: a
pure function of (seed, epoch, i). A DataLoader (or a DistributedSampler) hands each worker and
rank different indices, so no two workers repeat a mixture, and an epoch's content does not
depend on how many workers or GPUs render it.

With ``config.room == "reverberant"`` each mixture is also placed in a room (rooms.py) and its
BRIRs come from the shared BRIR bank, so a mixture seen again (the same epoch and index, on
any machine that shares the bank folder) costs a render, not a room simulation.

With several heads (``config.hrtf`` a comma-separated list, e.g. ``kemar,sonicom-1,fabian``) each
mixture is rendered on one of them, drawn uniformly from its own stream (``[seed, split_code,
epoch, i, 1]``): the recipe's draws are those of a one-head run, only the head differs.

With ``query_pairs`` each mixture is served twice in a row, items ``2k`` and ``2k + 1``: once
asking for its target, once for its first interferer (its caption, image and azimuth). A batch
then holds the same mixtures under two queries, and ignoring the query costs the model twice.

With ``absent_share`` P each item is, with probability P drawn from its own stream (``[seed,
split_code, epoch, item, ABSENT_STREAM]``), an absent-target item: its mixture is the one it would
have had, its query the caption of a clip that is not in it, chosen by the fixed sets' rule
(recipe.py: another category than every source where the corpus has categories, no shared content
word); its target is silence and its azimuth NaN (no direction: a DoA label without a peak), as
RenderedSet gives for a fixed set's absent item. The decision is per item, not per mixture: with
query pairs an absent item keeps its pair's mixture and takes the place of that item's query alone,
so a batch holds a mixture under a present and an absent query (the query, not the mixture, decides
whether there is anything to extract), the item share stays P and the batch layout is unchanged.
Both items of a pair drawn absent (P**2 of pairs) ask for the same absent clip.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from lusebench.allocator import retain_freed_memory
from lusebench.simulation.brir_bank import BrirBank, open_bank
from lusebench.simulation.config import SimulationConfig, check_absent_share
from lusebench.simulation.corpus import Corpus, open_corpus
from lusebench.simulation.hrtf import draw_head, load_hrtf, split_heads
from lusebench.simulation.recipe import draw_recipe
from lusebench.simulation.render import Renderer

# The last word of the rng key that decides whether an item is an absent-target item; the head
# stream ends in 1, mixtures' keys are one word shorter.
ABSENT_STREAM = 2


class DynamicMixingDataset(Dataset):
    """A map-style dataset of ``config.num_mixtures`` freshly drawn mixtures per epoch.

    Items are dicts: ``mixture`` (2, N) float32 tensor, ``target`` (2, N) float32 tensor (the
    target's binaural image; zeros for an absent target), ``azimuth_deg`` float (NaN for an absent
    target), ``caption`` str, ``interferer_caption`` str (another source's of the same mixture),
    ``mixture_id`` str.

    Args:
        config: the mixing configuration (its split is usually ``train``).
        epoch: which epoch's stream to draw; change it with :meth:`set_epoch`.
        corpus: an opened corpus; opened from ``config.corpus`` in each worker when None.
        brir_bank: BRIR bank folder for reverberant mixing; ``default_bank_dir()`` when None.
        query_pairs: serve each mixture under its target's and its first interferer's query
            (``config.num_mixtures`` items are then half as many mixtures).
        absent_share: probability, in [0, 0.5], that an item asks for a sound not in its mixture.
    """

    def __init__(
        self, config: SimulationConfig, epoch: int = 0, corpus: Corpus | None = None, brir_bank: str | None = None,
        query_pairs: bool = False, absent_share: float = 0.0,
    ) -> None:
        check_absent_share(absent_share)
        self.config = config
        self.epoch = epoch
        self.brir_bank = brir_bank
        self.query_pairs = query_pairs
        self.absent_share = absent_share
        self._corpus = corpus
        self.heads = split_heads(config.hrtf)  # every head checked now, in the main process
        self._renderers: dict[str, Renderer] = {}
        self._bank: BrirBank | None = None
        # The pair's second item comes right after the first, in the same worker: render once.
        self._last: tuple[tuple[int, int], Any, Any] | None = None
        if corpus is not None:
            corpus.split(config.split)  # fail now, in the main process, on an empty split

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.config.num_mixtures

    def _inputs(self, head: str) -> tuple[Corpus, Renderer]:
        # Opened lazily so that each DataLoader worker builds its own after the fork/spawn.
        if self._corpus is None:
            # A YouTube copy of AudioCaps always lacks some clips: train on those it holds (logged).
            self._corpus = open_corpus(self.config.corpus, skip_missing=True)
        if head not in self._renderers:
            retain_freed_memory()
            self._renderers[head] = Renderer(load_hrtf(head, self.config.sample_rate), self.config.interpolation)
        if self._bank is None:
            self._bank = open_bank(self.config, self.brir_bank)
        return self._corpus, self._renderers[head]

    def head(self, key: list[int]) -> str:
        """The head mixture ``key`` is rendered on: the only one, or one drawn from its own stream."""
        return draw_head(self.heads, [*key, 1])

    def absent(self, index: int) -> bool:
        """Whether item ``index`` of this epoch asks for a sound that is not in its mixture."""
        if self.absent_share == 0.0:
            return False
        key = [self.config.seed, self.config.split_code, self.epoch, index, ABSENT_STREAM]
        return bool(np.random.default_rng(key).random() < self.absent_share)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        mixture, query = divmod(index, 2) if self.query_pairs else (index, 0)
        if self._last is not None and self._last[0] == (self.epoch, mixture):
            recipe, rendered = self._last[1], self._last[2]
        else:
            key = [self.config.seed, self.config.split_code, self.epoch, mixture]
            corpus, renderer = self._inputs(self.head(key))
            # An absent draw renders the same mixture and draws its query last: draw it where any
            # item of this mixture is absent, and the pair's present item still reads its source.
            items = (2 * mixture, 2 * mixture + 1) if self.query_pairs else (mixture,)
            recipe, rendered = draw_recipe(
                corpus, corpus.split(self.config.split), self.config, key, renderer, mixture, self._bank,
                absent=any(self.absent(item) for item in items),
            )
            self._last = ((self.epoch, mixture), recipe, rendered)
        absent = self.absent(index)
        if absent:
            target = np.zeros_like(rendered.mixture)
        else:
            target = rendered.target if query == 0 else rendered.interferers[0]
        suffix = (f"/query{query}" if self.query_pairs else "") + ("/absent" if absent else "")
        return {
            "mixture": torch.from_numpy(np.ascontiguousarray(rendered.mixture)),
            "target": torch.from_numpy(np.ascontiguousarray(target)),
            "azimuth_deg": math.nan if absent else recipe.azimuths_deg[query],
            # recipe.caption is the absent query where the mixture was drawn absent; captions[q]
            # is always source q's.
            "caption": recipe.caption if absent else recipe.captions[query],
            # Another source of the same mixture, as RenderedSet gives, for the query-swap check.
            "interferer_caption": recipe.captions[0 if absent else 1 - query],
            "mixture_id": f"{recipe.mixture_id}@epoch{self.epoch}{suffix}",
        }

    def __getstate__(self) -> dict[str, Any]:
        # Workers re-open the corpus and HRTF themselves rather than unpickling decoders and caches.
        state = dict(self.__dict__)
        state["_corpus"] = None
        state["_renderers"] = {}
        state["_bank"] = None
        state["_last"] = None
        return state
