"""Recipes: everything needed to re-render one mixture, drawn as the paper's protocol says.

Protocol (paper section 3.1, DESIGN.md): one anchor clip is the target; 1 or 2 interferers come
from other clips whose captions differ from the target's; each interferer is scaled to the
target's energy, then given an SNR drawn uniformly from [-5, 5] dB relative to the target (on the
dry signals, before the HRTF); every source gets an azimuth uniform in [0, 360).

Clips longer than the mixture are cut at an offset drawn uniformly; shorter clips are placed
whole at an onset drawn uniformly, silence around them.

The reverberant condition draws a room after all of the above (rooms.py): the same rng key
gives the same clips, SNRs and azimuths in both conditions, and anechoic recipes are unchanged.

An absent-target item is drawn as a present one, then asked for a clip that is not in it: after
every other draw, a query clip whose captions share no content word with any caption of the
mixture's sources (a proxy for "another category", since the corpora carry no categories: "a
steam train whistles" and "a steam locomotive" share "steam"). The mixture is the present-target
item's mixture; only the query differs.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from lusebench.errors import LusebenchError
from lusebench.simulation.config import SimulationConfig
from lusebench.simulation.corpus import Clip, Corpus
from lusebench.simulation.render import RenderedMixture, Renderer
from lusebench.simulation.rooms import Brir, draw_room, room_absorption

if TYPE_CHECKING:
    from lusebench.simulation.audiocaps_sets import FixedMixture
    from lusebench.simulation.brir_bank import BrirBank, BrirSpec

# Peak that the loudest written sample may reach; the rest is headroom for the 24-bit FLAC.
PEAK_LIMIT = 0.99
# A dry excerpt quieter than this (-80 dBFS RMS) cannot carry an SNR; a new excerpt is drawn.
SILENCE_POWER = 1e-8
_EXCERPT_TRIES = 8
_REJECTION_TRIES = 32
# The fourth word of a fixed recipe's room rng key: a stream no drawn set's three-word key meets.
ROOM_STREAM = 1
# The fourth word of the rng key that draws a mixture's head in a set of several heads (writer.py):
# a stream that neither the mixture's draws, a fixed recipe's room nor the absent items' draw meets.
HEAD_STREAM = 2
# Words that say nothing about what sounds: an absent query may share these with the mixture's captions.
_STOP_WORDS = frozenset(
    "a an the of in on at to and or with by from into onto over under while as is are be being it its this that "
    "then there their some someone something one two three several other another up down out off away through "
    "near far distance distant background foreground loud loudly softly quiet quietly briefly repeatedly "
    "continuously once twice again before after sound sounds play plays playing".split()
)


@dataclass(frozen=True)
class Recipe:
    """One mixture, target first in every per-source tuple."""

    mixture_id: str
    split: str
    index: int
    seed: int
    sample_rate: int
    num_samples: int
    corpus: str
    caption: str
    clip_ids: tuple[str, ...]
    captions: tuple[str, ...]
    clip_offsets_s: tuple[float, ...]
    onsets_s: tuple[float, ...]
    azimuths_deg: tuple[float, ...]
    snr_db: tuple[float, ...]
    gains: tuple[float, ...]
    mixture_gain: float
    hrtf: str
    hrtf_interpolation: str
    # The room (neutral values when anechoic). Positions are metres in room coordinates; the
    # head faces +x, so azimuths relative to the head are azimuths in the room.
    room: str = "anechoic"
    rt60_s: float = 0.0
    room_dims_m: tuple[float, ...] = ()
    listener_position_m: tuple[float, ...] = ()
    source_positions_m: tuple[tuple[float, ...], ...] = ()
    distances_m: tuple[float, ...] = ()
    wall_absorption: float = 0.0
    image_order: int = 0
    drr_db: tuple[float, ...] = ()
    # An absent-target item: ``caption`` describes ``query_clip_id``, a clip not in the mixture; every
    # clip of ``clip_ids`` is a source, none of them the target.
    target_absent: bool = False
    query_clip_id: str = ""

    @property
    def num_sources(self) -> int:
        return len(self.clip_ids)

    @property
    def angular_separation_deg(self) -> float:
        return angular_separation_deg(self.azimuths_deg[0], self.azimuths_deg[1:])


def mixture_id(split: str, num_sources: int, index: int) -> str:
    return f"{split}-{num_sources}src-{index:06d}"


def circular_distance_deg(a: float | np.ndarray, b: float | np.ndarray) -> float | np.ndarray:
    """Smallest angle between two azimuths, in [0, 180] degrees."""
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def angular_separation_deg(target_deg: float, interferers_deg: Sequence[float]) -> float:
    """Smallest circular distance between the target and any interferer, in [0, 180] degrees."""
    return float(np.min(circular_distance_deg(target_deg, np.asarray(interferers_deg))))


def _excerpt(length: int, num_samples: int, rng: np.random.Generator) -> tuple[int, int]:
    """(offset into the clip, onset in the mixture), in samples."""
    if length >= num_samples:
        return int(rng.integers(0, length - num_samples + 1)), 0
    return 0, int(rng.integers(0, num_samples - length + 1))


def place(audio: np.ndarray, offset: int, onset: int, num_samples: int) -> np.ndarray:
    """The clip excerpt as it sits in the mixture: (num_samples,) float32, silence around it."""
    segment = np.zeros(num_samples, dtype=np.float32)
    piece = audio[offset : offset + num_samples - onset]
    segment[onset : onset + len(piece)] = piece
    return segment


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _compatible(clip: Clip, chosen: Sequence[Clip]) -> bool:
    return all(clip.clip_id != c.clip_id and not set(clip.captions) & set(c.captions) for c in chosen)


@functools.lru_cache(maxsize=1 << 18)
def caption_words(caption: str) -> frozenset[str]:
    """The content words of a caption, lower-case, without a plural or -ing/-ed ending.

    Cached: dynamic mixing with absent queries scans every training caption per absent item
    (AudioCaps' 230k captions: the cache keeps that from re-parsing them each time)."""
    words = set()
    for word in re.findall(r"[a-z]+", caption.lower()):
        if word in _STOP_WORDS:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            # A stem of three letters at least, and "hiss" is no plural.
            if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word.endswith("ss"):
                word = word[: -len(suffix)]
                break
        words.add(word)
    return frozenset(words)


def _unrelated(clip: Clip, chosen: Sequence[Clip]) -> bool:
    """Whether ``clip`` is none of ``chosen``, of another category than each where the corpus has
    categories (debcaps), and no caption of it shares a content word with theirs (no near-synonyms
    of one kind of sound: "a hen clucks" is not the answer to "a rooster crows")."""
    taken = frozenset().union(*(caption_words(c) for other in chosen for c in other.captions))
    return all(
        clip.clip_id != other.clip_id and not (clip.category and clip.category == other.category) for other in chosen
    ) and not any(caption_words(c) & taken for c in clip.captions)


def _draw_absent_query(
    clips: Sequence[Clip], chosen: Sequence[Clip], rng: np.random.Generator, corpus: str, config: SimulationConfig
) -> Clip:
    """A clip unrelated to every source of the mixture (:func:`_unrelated`), uniformly among them."""
    candidates = [clip for clip in clips if _unrelated(clip, chosen)]
    if not candidates:
        raise LusebenchError(
            f"split {config.split!r} of corpus {corpus} has no clip whose captions share no word with a "
            f"{config.num_sources}-source mixture's: it cannot hold absent-target items"
        )
    return candidates[int(rng.integers(len(candidates)))]


def absent_indices(num_mixtures: int, absent_share: float, seed: int, split_code: int) -> frozenset[int]:
    """The indices of a set's absent-target items: exactly ``round(share * num_mixtures)`` of them.

    Drawn from their own stream (``[seed, split_code, num_mixtures, 1]``, a key no mixture uses),
    so the share is exact, any mixture still re-renders alone, and a set of share 0 draws nothing.
    """
    count = int(round(absent_share * num_mixtures))
    if count == 0:
        return frozenset()
    rng = np.random.default_rng([seed, split_code, num_mixtures, 1])
    return frozenset(int(i) for i in rng.choice(num_mixtures, size=count, replace=False))


def _draw_interferer(
    clips: Sequence[Clip], chosen: Sequence[Clip], rng: np.random.Generator, corpus: str, config: SimulationConfig
) -> Clip:
    """A clip whose id and captions differ from every clip already chosen."""
    # Rejection first: O(1) per draw on a 46k-clip corpus, where filtering the list costs ms.
    for _ in range(_REJECTION_TRIES):
        clip = clips[int(rng.integers(len(clips)))]
        if _compatible(clip, chosen):
            return clip
    candidates = [clip for clip in clips if _compatible(clip, chosen)]
    if not candidates:
        raise LusebenchError(
            f"split {config.split!r} of corpus {corpus} has too few distinct captions "
            f"for {config.num_sources}-source mixtures"
        )
    return candidates[int(rng.integers(len(candidates)))]


def draw_recipe(
    corpus: Corpus,
    clips: Sequence[Clip],
    config: SimulationConfig,
    rng_key: Sequence[int],
    renderer: Renderer,
    index: int,
    bank: BrirBank | None = None,
    absent: bool = False,
) -> tuple[Recipe, RenderedMixture]:
    """Draw one mixture from ``np.random.default_rng(rng_key)`` and render it.

    Args:
        corpus: where the clips' audio comes from.
        clips: the split's clips, in the corpus order.
        config: the set's configuration.
        rng_key: the whole randomness of this mixture, e.g. ``[seed, split_code, index]``.
        renderer: the HRTF renderer at ``config.sample_rate``.
        index: the mixture's position in its set (names it).
        bank: where the BRIRs come from; required when ``config.room`` is ``reverberant``.
        absent: draw an absent-target item: the same mixture, queried for an unrelated clip
            (the rendered ``target`` is then the first source's image, no reference).

    Returns:
        The recipe and the rendered signals (already scaled by the recipe's ``mixture_gain``).
    """
    rng = np.random.default_rng(list(rng_key))
    sr, num_samples = config.sample_rate, config.num_samples
    anchor = clips[int(rng.integers(len(clips)))]
    caption = anchor.captions[int(rng.integers(len(anchor.captions)))]
    chosen = [anchor]
    for _ in range(config.num_sources - 1):
        chosen.append(_draw_interferer(clips, chosen, rng, corpus.name, config))
    offsets, onsets, dry, powers = [], [], [], []
    for clip in chosen:
        audio = corpus.audio(clip, sr)
        for _ in range(_EXCERPT_TRIES):
            offset, onset = _excerpt(len(audio), num_samples, rng)
            segment = place(audio, offset, onset, num_samples)
            power = _power(segment)
            if power > SILENCE_POWER:
                break
        else:
            raise LusebenchError(f"clip {clip.clip_id} of corpus {corpus.name} is silent")
        offsets.append(offset)
        onsets.append(onset)
        dry.append(segment)
        powers.append(power)
    low, high = config.snr_range_db
    snr = [0.0] + [float(rng.uniform(low, high)) for _ in chosen[1:]]
    azimuths = [float(rng.uniform(0.0, 360.0)) for _ in chosen]
    room_fields, brirs = _draw_room(rng, azimuths, config, bank) if config.room == "reverberant" else ({}, None)
    query = {}
    if absent:  # last, so that the mixture is the one a present-target item of this key holds
        query_clip = _draw_absent_query(clips, chosen, rng, corpus.name, config)
        query = dict(
            caption=query_clip.captions[int(rng.integers(len(query_clip.captions)))],
            target_absent=True,
            query_clip_id=query_clip.clip_id,
        )
    recipe = Recipe(
        mixture_id=mixture_id(config.split, config.num_sources, index),
        split=config.split,
        index=index,
        seed=config.seed,
        sample_rate=sr,
        num_samples=num_samples,
        corpus=corpus.name,
        caption=caption,
        clip_ids=tuple(clip.clip_id for clip in chosen),
        captions=tuple(clip.captions[0] if clip is not anchor else caption for clip in chosen),
        clip_offsets_s=tuple(o / sr for o in offsets),
        onsets_s=tuple(o / sr for o in onsets),
        azimuths_deg=tuple(azimuths),
        snr_db=tuple(snr),
        gains=_gains(powers, snr, config),
        mixture_gain=1.0,
        hrtf=renderer.hrtf.identity,
        hrtf_interpolation=renderer.interpolation,
        **room_fields,
    )
    recipe = replace(recipe, **query)
    return _finish(recipe, np.stack(dry), renderer, brirs)


def _gains(powers: Sequence[float], snr_db: Sequence[float], config: SimulationConfig) -> tuple[float, ...]:
    target_power = 10.0 ** (config.target_rms_dbfs / 10.0)
    # Interferer k gets the target's energy, then sits snr_k dB below it.
    return tuple(float(np.sqrt(target_power / power / 10.0 ** (s / 10.0))) for power, s in zip(powers, snr_db))


def _finish(recipe: Recipe, dry: np.ndarray, renderer: Renderer, brirs: list[Brir] | None) -> tuple[Recipe, RenderedMixture]:
    """Render a recipe from its dry excerpts (S, time), then give it the headroom gain it needs."""
    rendered = _render(dry, recipe, renderer, brirs)
    # max and -min give |x|'s peak exactly, without abs's temporary copy of every signal.
    signals = (rendered.mixture, rendered.target, rendered.interferers)
    peak = max(max(float(signal.max()), -float(signal.min())) for signal in signals)
    if peak > PEAK_LIMIT:
        # Never clip: one gain on every signal, recorded, so the references stay consistent.
        recipe = replace(recipe, mixture_gain=headroom_gain(peak))
        rendered = _scale(rendered, recipe.mixture_gain)
    return recipe, rendered


def fixed_recipe(
    corpus: Corpus, mixture: FixedMixture, config: SimulationConfig, renderer: Renderer, bank: BrirBank | None = None
) -> tuple[Recipe, RenderedMixture]:
    """Render one recipe of a fixed set (audiocaps_sets.py): its clips, query, SNRs and azimuths are
    the table's; each clip is read from its start, and the gains follow from this copy's audio. In
    the reverberant condition the room is drawn from ``[seed, split_code, index, ROOM_STREAM]``,
    a function of the recipe alone (the table's draw is not replayed), its BRIRs come from ``bank``."""
    sr, num_samples = config.sample_rate, config.num_samples
    dry = [place(corpus.audio(corpus.clip(clip_id), sr), 0, 0, num_samples) for clip_id in mixture.clip_ids]
    zeros = tuple(0.0 for _ in mixture.clip_ids)
    recipe = Recipe(
        mixture_id=mixture.mixture_id, split=config.split, index=mixture.index, seed=config.seed, sample_rate=sr,
        num_samples=num_samples, corpus=corpus.name, caption=mixture.captions[0], clip_ids=mixture.clip_ids,
        captions=mixture.captions, clip_offsets_s=zeros, onsets_s=zeros, azimuths_deg=mixture.azimuths_deg,
        snr_db=mixture.snr_db, gains=_gains([_power(segment) for segment in dry], mixture.snr_db, config),
        mixture_gain=1.0, hrtf=renderer.hrtf.identity, hrtf_interpolation=renderer.interpolation,
    )
    if config.room == "anechoic":
        return _finish(recipe, np.stack(dry), renderer, None)
    rng = np.random.default_rng([config.seed, config.split_code, mixture.index, ROOM_STREAM])
    room_fields, brirs = _draw_room(rng, list(mixture.azimuths_deg), config, bank)
    return _finish(replace(recipe, **room_fields), np.stack(dry), renderer, brirs)


def headroom_gain(peak: float) -> float:
    """The gain that brings ``peak`` to at most PEAK_LIMIT, rounded down to a 0.1 dB step.

    The peak is a rendered sample, whose last bits follow the CPU's FFT kernels; the gain is a
    recipe field, which must not. On a 0.1 dB grid another CPU's peak (within ~1e-7 of this one)
    lands on another step only if this one lies within ~1e-6 dB of a step's edge.
    """
    steps = math.ceil(200.0 * math.log10(peak / PEAK_LIMIT))  # 0.1 dB steps of attenuation
    return float(np.float32(10.0 ** (-steps / 200.0)))


def _draw_room(
    rng: np.random.Generator, azimuths: list[float], config: SimulationConfig, bank: BrirBank | None
) -> tuple[dict[str, Any], list[Brir]]:
    """The recipe's room fields, and the BRIRs that render it (fetched once, for both)."""
    room = draw_room(rng, tuple(azimuths), config.room_ranges)
    absorption, order = room_absorption(room, config.max_image_order, config.sample_rate)
    brirs = _brirs(bank, brir_specs(room.dims_m, absorption, order, room.listener_m, room.sources_m))
    fields: dict[str, Any] = dict(
        room="reverberant",
        rt60_s=room.rt60_s,
        room_dims_m=room.dims_m,
        listener_position_m=room.listener_m,
        source_positions_m=room.sources_m,
        distances_m=room.distances_m,
        wall_absorption=absorption,
        image_order=order,
        drr_db=tuple(brir.drr_db for brir in brirs),
    )
    return fields, brirs


def brir_specs(
    dims_m: tuple[float, ...],
    absorption: float,
    order: int,
    listener_m: tuple[float, ...],
    sources_m: tuple[tuple[float, ...], ...],
) -> list[BrirSpec]:
    """The BRIR of each source of a room, target first."""
    from lusebench.simulation.brir_bank import BrirSpec

    return [BrirSpec(tuple(dims_m), absorption, order, tuple(listener_m), tuple(source)) for source in sources_m]  # type: ignore[arg-type]


def recipe_brir_specs(recipe: Recipe) -> list[BrirSpec]:
    """The BRIRs a reverberant recipe renders with (none when anechoic)."""
    if recipe.room != "reverberant":
        return []
    return brir_specs(recipe.room_dims_m, recipe.wall_absorption, recipe.image_order, recipe.listener_position_m,
                      recipe.source_positions_m)


def _brirs(bank: BrirBank | None, specs: list[BrirSpec]) -> list[Brir]:
    if bank is None:
        raise ValueError("a reverberant recipe needs a BRIR bank")
    return [bank.get(spec) for spec in specs]


def _scale(rendered: RenderedMixture, gain: float) -> RenderedMixture:
    g = np.float32(gain)
    return RenderedMixture(
        mixture=rendered.mixture * g,
        target=rendered.target * g,
        dry_target=rendered.dry_target * g,
        interferers=rendered.interferers * g,
    )


def _render(segments: np.ndarray, recipe: Recipe, renderer: Renderer, brirs: list[Brir] | None) -> RenderedMixture:
    """Render through the HRIRs of the recipe's azimuths, or through ``brirs`` in a reverberant room."""
    gains = np.asarray(recipe.gains, dtype=np.float32)[:, None]
    if recipe.room == "anechoic":
        return renderer.render(segments * gains, np.asarray(recipe.azimuths_deg))
    if recipe.room != "reverberant":
        raise ValueError(f"unknown room {recipe.room!r}")
    irs = [brir.ir for brir in brirs]
    length = max(ir.shape[-1] for ir in irs)
    filters = np.stack([np.pad(ir, ((0, 0), (0, length - ir.shape[-1]))) for ir in irs])  # (S, 2, L)
    return renderer.render_filters(segments * gains, filters)


def render_recipe(recipe: Recipe, corpus: Corpus, renderer: Renderer, bank: BrirBank | None = None) -> RenderedMixture:
    """Re-render a recipe from its recorded fields alone (no random draw); BRIRs come from ``bank``."""
    sr, num_samples = recipe.sample_rate, recipe.num_samples
    segments = []
    for clip_id, offset_s, onset_s in zip(recipe.clip_ids, recipe.clip_offsets_s, recipe.onsets_s):
        audio = corpus.audio(corpus.clip(clip_id), sr)
        segments.append(place(audio, int(round(offset_s * sr)), int(round(onset_s * sr)), num_samples))
    brirs = _brirs(bank, recipe_brir_specs(recipe)) if recipe.room == "reverberant" else None
    rendered = _render(np.stack(segments), recipe, renderer, brirs)
    return rendered if recipe.mixture_gain == 1.0 else _scale(rendered, recipe.mixture_gain)
