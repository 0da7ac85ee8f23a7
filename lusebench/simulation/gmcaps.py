"""gmcaps: a generated training corpus of captioned General-MIDI clips.

minicaps gives a text-queried model 161 training clips, which it memorizes (docs/small-preset.md:
+1.5 dB SI-SNRi on fresh train-split mixtures, -1.5 dB on val). gmcaps renders as many clips as
asked from the TimGM6mb SoundFont: every GM instrument family in several registers, tempi and
playing patterns, each with a caption written from what was rendered (instrument, pattern,
register, tempo), so a caption says nothing the audio does not.

Held out, so that no minicaps val or test clip reappears in training in another guise:
- the GM programs and drum patterns of minicaps' val and test GM clips (families are shared:
  the test's marimba is not rendered, the vibraphone and xylophone are);
- every caption of minicaps' val and test splits (compared case-insensitively).

Clip ``i`` is a pure function of ``(seed, i)``, so a corpus of N clips is the first N clips of
any larger one with the same seed, whatever the number of workers.

The folder is in the AudioCaps layout (``train.csv`` + ``audio/``), so ``audiocaps:DIR`` reads
it, and ``minicaps+audiocaps:DIR`` trains on both (:func:`lusebench.simulation.corpus.open_corpus`).
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lusebench import __version__
from lusebench.errors import LusebenchError
from lusebench.io import replace_folder, write_bytes
from lusebench.simulation import gm
from lusebench.simulation.corpus import AUDIOCAPS_COLUMNS, PROVENANCE_COLUMNS, embedded_root

FOLDER_ENTRIES = ("train.csv", "audio", "README.md", "gmcaps.json")
MAX_CLIPS = 100_000
# Bump when the clips or captions of a (seed, index) change.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Voice:
    """A GM program (or, with ``program`` None, the drum kit) and how it may be played."""

    program: int | None
    name: str  # caption noun, e.g. "grand piano"
    patterns: tuple[str, ...]
    octave: int = 0  # its natural register, in octaves from middle C


def _family(programs: range, names: tuple[str, ...], patterns: tuple[str, ...], octave: int = 0) -> list[Voice]:
    return [Voice(p, n, patterns, octave) for p, n in zip(programs, names, strict=True)]


_KEYS = ("melody", "slow_melody", "chords", "arpeggio", "scale")
_MALLETS = ("melody", "slow_melody", "arpeggio")
_GUITAR = ("arpeggio", "strum", "melody")
_WIND = ("melody", "slow_melody", "scale")
_PAD = ("sustained", "chords")

# General MIDI level 1 program names, as a caption would say them.
VOICES: tuple[Voice, ...] = tuple(
    _family(range(0, 8), ("grand piano", "bright piano", "electric grand piano", "honky-tonk piano",
                          "electric piano", "chorused electric piano", "harpsichord", "clavinet"), _KEYS)
    + _family(range(8, 16), ("celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone",
                             "set of tubular bells", "dulcimer"), _MALLETS, 1)
    + _family(range(16, 24), ("drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ",
                              "accordion", "harmonica", "tango accordion"), ("chords", "sustained", "melody"))
    + _family(range(24, 30), ("nylon string guitar", "steel string guitar", "jazz guitar", "clean electric guitar",
                              "muted electric guitar", "overdriven guitar"), _GUITAR, -1)
    + _family(range(30, 32), ("distorted guitar", "guitar with harmonics"), ("power_chords", "melody"), -1)
    + _family(range(32, 40), ("upright bass", "fingered electric bass", "picked electric bass", "fretless bass",
                              "slap bass", "popping slap bass", "synth bass", "deep synth bass"),
              ("bass_line", "oompah"), -2)
    + _family(range(40, 45), ("violin", "viola", "cello", "double bass", "tremolo string section"),
              ("slow_melody", "melody", "sustained"))
    + [Voice(45, "pizzicato string section", ("melody", "arpeggio")), Voice(46, "harp", ("arpeggio", "scale")),
       Voice(47, "set of timpani", ("low_hits",), -2)]
    + _family(range(48, 55), ("string orchestra", "slow string section", "synth string section", "warm synth string section",
                              "choir", "voice humming", "synth choir"), _PAD)
    + [Voice(55, "orchestra", ("low_hits",), -1)]
    + _family(range(56, 64), ("trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section",
                              "synth brass", "bright synth brass"), ("melody", "slow_melody", "chords"))
    + _family(range(64, 72), ("soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone",
                              "oboe", "english horn", "bassoon", "clarinet"), _WIND)
    + _family(range(72, 80), ("piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi",
                              "whistle", "ocarina"), _WIND, 1)
    + _family(range(80, 88), ("square wave synthesizer", "sawtooth synthesizer", "calliope", "chiff synthesizer",
                              "charang synthesizer", "synth voice", "fifths synthesizer", "bass and lead synthesizer"),
              ("melody", "arpeggio", "scale"))
    + _family(range(88, 104), ("new age synth pad", "warm synth pad", "polysynth pad", "choir synth pad",
                               "bowed glass synth pad", "metallic synth pad", "halo synth pad", "sweeping synth pad",
                               "rain synth effect", "soundtrack synth", "crystal synth", "atmospheric synth",
                               "bright synth", "goblin synth", "echoing synth", "science fiction synth"), _PAD)
    + _family(range(104, 112), ("sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shehnai"),
              ("melody", "arpeggio"))
    + [Voice(112, "tinkling bell", ("melody", "slow_melody"), 1), Voice(113, "agogo bell", ("sfx_hits",)),
       Voice(114, "steel drum", ("melody", "arpeggio")), Voice(115, "woodblock", ("sfx_hits",)),
       Voice(116, "taiko drum", ("low_hits",), -1), Voice(117, "melodic tom", ("low_hits",), -1),
       Voice(118, "synth drum", ("low_hits",), -1), Voice(119, "reverse cymbal", ("sfx_hold",))]
    + [Voice(120, "guitar fret noise", ("sfx_hits",)), Voice(121, "breath noise", ("sfx_breaths",)),
       Voice(122, "seashore", ("sfx_hold",)), Voice(123, "bird tweet", ("sfx_hits",), -1),
       Voice(124, "telephone", ("sfx_rings",), -1), Voice(125, "helicopter", ("sfx_hold",)),
       Voice(126, "applause", ("sfx_hold",)), Voice(127, "gunshot", ("sfx_hits",))]
    + [Voice(None, "drum kit", (p,)) for p in ("drums_rock", "drums_fast", "drums_ride", "drums_toms",
                                                "drums_latin", "drums_cowbell", "drums_tambourine", "drums_claps")]
)

_PHRASES: dict[str, tuple[str, ...]] = {
    "melody": ("a melody", "a lively tune", "a bouncy melody"),
    "slow_melody": ("a slow melody", "a gentle tune", "a calm melody"),
    "chords": ("chords", "a chord progression", "rhythmic chords"),
    "sustained": ("long sustained chords", "held chords", "slowly changing chords"),
    "power_chords": ("power chords", "heavy chords"),
    "strum": ("strummed chords", "a strumming pattern"),
    "arpeggio": ("an arpeggio", "broken chords", "a rippling pattern of notes"),
    "scale": ("a fast scale", "quick runs up and down a scale"),
    "bass_line": ("a bass line", "a groovy bass line"),
    "oompah": ("an oompah bass line", "a bouncing two-note bass"),
    "low_hits": ("booming hits", "a heavy rhythm", "loud strikes"),
}
_INSTRUMENT_TEMPLATES = (
    "{A} {name} plays {phrase}",
    "{Phrase} played on {a} {name}",
    "Someone plays {phrase} on {a} {name}",
    "{A} {name} is playing {phrase}",
)
# The sound-effect programs and drum patterns are not played, they sound: a caption each.
_SOUND_CAPTIONS: dict[str, tuple[str, ...]] = {
    "agogo bell": ("Agogo bells clank in a rhythm", "A pair of metal bells is struck in a pattern"),
    "woodblock": ("A woodblock is knocked in a rhythm", "Hollow wooden knocks"),
    "reverse cymbal": ("A reversed cymbal swells up", "A cymbal sound rises and cuts off"),
    "guitar fret noise": ("Fingers squeak along guitar strings", "Guitar strings squeak and scrape"),
    "breath noise": ("Someone breathes in and out", "Heavy breathing"),
    "seashore": ("Waves wash onto a beach", "The sea surges against the shore"),
    "bird tweet": ("A bird chirps", "Birds twitter"),
    "telephone": ("An old telephone rings twice", "A phone keeps ringing"),
    "helicopter": ("A helicopter's rotor whirs", "The steady chop of helicopter blades"),
    "applause": ("A crowd claps", "People applaud"),
    "gunshot": ("Shots are fired", "Several gunshots go off"),
    "drums_rock": ("A drum kit plays a rock beat", "A drummer keeps a steady rock groove"),
    "drums_fast": ("A drummer plays a fast beat", "Quick drums with busy hi-hats"),
    "drums_ride": ("A drummer plays a relaxed beat on the ride cymbal", "Slow drums with a ride cymbal"),
    "drums_toms": ("A drummer rolls around the toms", "A tom fill ending on a crash cymbal"),
    "drums_latin": ("Bongos and congas play a latin groove", "Hand drums play a latin rhythm"),
    "drums_cowbell": ("A cowbell and claves keep time", "Clicking claves over a cowbell"),
    "drums_tambourine": ("A tambourine jingles in time", "A steady tambourine rhythm"),
    "drums_claps": ("Hands clap along with a kick drum", "Claps and a kick drum keep a beat"),
}
_SLOW_PATTERNS = ("slow_melody", "sustained", "sfx_hold", "sfx_breaths", "sfx_rings")


@dataclass(frozen=True)
class GeneratedClip:
    """One clip of the corpus as drawn, before rendering."""

    index: int
    clip_id: str
    caption: str
    voice: Voice
    gm_clip: gm.GmClip


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _instrument_caption(voice: Voice, pattern: str, clip: gm.GmClip, choice: int) -> str:
    phrase = _PHRASES[pattern][choice % len(_PHRASES[pattern])]
    template = _INSTRUMENT_TEMPLATES[(choice // len(_PHRASES[pattern])) % len(_INSTRUMENT_TEMPLATES)]
    text = template.format(A=_article(voice.name).capitalize(), a=_article(voice.name), name=voice.name,
                           phrase=phrase, Phrase=phrase[0].upper() + phrase[1:])
    shift = clip.octave - voice.octave
    if shift:
        text += " in a low register" if shift < 0 else " in a high register"
    if pattern not in _SLOW_PATTERNS and clip.bpm >= 140:
        text += " at a fast tempo"
    return text


def _caption(voice: Voice, pattern: str, clip: gm.GmClip, choice: int) -> str:
    key = pattern if voice.program is None else voice.name
    if key in _SOUND_CAPTIONS:
        options = _SOUND_CAPTIONS[key]
        return options[choice % len(options)]
    return _instrument_caption(voice, pattern, clip, choice)


def held_out() -> tuple[frozenset[int], frozenset[str], frozenset[str]]:
    """What minicaps' val and test splits hold: (GM programs, drum patterns, lower-cased captions)."""
    by_name = {clip.name: clip for clip in gm.GM_CLIPS}
    programs, drum_patterns, captions = set(), set(), set()
    for split in ("val", "test"):
        with (embedded_root() / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                captions.add(row["caption"].strip().lower())
                source = by_name.get(row["original_name"]) if row["source"] == "gm" else None
                if source is None:
                    continue
                if source.pattern.startswith("drums_"):
                    drum_patterns.add(source.pattern)
                else:
                    programs.add(source.program)
    return frozenset(programs), frozenset(drum_patterns), frozenset(captions)


def training_voices(programs: frozenset[int], drum_patterns: frozenset[str]) -> list[tuple[Voice, str]]:
    """Every (voice, pattern) that may be rendered: all but the held-out ones."""
    pairs = []
    for voice in VOICES:
        if voice.program is not None and voice.program in programs:
            continue
        pairs += [(voice, p) for p in voice.patterns if not (voice.program is None and p in drum_patterns)]
    return pairs


def draw_clip(seed: int, index: int, pairs: list[tuple[Voice, str]], banned_captions: frozenset[str]) -> GeneratedClip:
    """Clip ``index`` of the corpus of ``seed``: a pure function of both."""
    rng = np.random.default_rng([seed, index])
    voice, pattern = pairs[int(rng.integers(len(pairs)))]
    low, high = (50, 90) if pattern in _SLOW_PATTERNS else (80, 160)
    bpm = float(rng.integers(low, high + 1))
    shift = int(rng.choice([-1, 0, 0, 1])) if voice.program is not None and pattern in _PHRASES else 0
    # Above octave 1 some of the SoundFont's high samples end and a melody renders as silence.
    octave = min(voice.octave + shift, 1)
    clip_id = f"gmcaps-{index:06d}"
    clip = gm.GmClip(clip_id, voice.program or 0, pattern, bpm, octave)
    first = int(rng.integers(1 << 16))
    # Each caption choice is another phrasing of the same facts; the first one no val/test clip uses wins.
    for choice in range(first, first + 64):
        caption = _caption(voice, pattern, clip, choice)
        if caption.lower() not in banned_captions:
            return GeneratedClip(index, clip_id, caption, voice, clip)
    raise LusebenchError(f"no caption for {voice.name} {pattern} avoids the held-out captions")


def render_clip(generated: GeneratedClip, seed: int, soundfont: bytes) -> np.ndarray:
    """The clip's audio: (n,) float64 at 16 kHz, conditioned as minicaps' clips are."""
    rng = np.random.default_rng([seed, generated.index, 1])
    notes = gm.gm_notes(generated.gm_clip, rng)
    return gm.condition(gm.render_gm(generated.gm_clip, notes, soundfont), gm.GM_RENDER_RATE)


_worker_soundfont: bytes | None = None


def _init_worker(soundfont: bytes | None = None) -> None:
    global _worker_soundfont
    _worker_soundfont = soundfont if soundfont is not None else gm.load_soundfont()


def _render_item(task: tuple[GeneratedClip, int]) -> tuple[bytes, int]:
    """(FLAC bytes, samples) of one clip."""
    generated, seed = task
    assert _worker_soundfont is not None
    audio = render_clip(generated, seed, _worker_soundfont)
    if len(audio) < gm.MIN_DURATION_S * gm.SAMPLE_RATE:
        raise LusebenchError(f"{generated.clip_id} ({generated.caption!r}) renders {len(audio)} samples; the voice table is wrong")
    return gm.flac_bytes(audio), len(audio)


def _rendered(tasks: list[tuple[GeneratedClip, int]], workers: int, soundfont: bytes) -> Iterator[tuple[bytes, int]]:
    if workers == 1:
        _init_worker(soundfont)
        yield from map(_render_item, tasks)
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(_render_item, tasks, chunksize=8)


def build_gmcaps(out: Path, clips: int, seed: int = 0, workers: int = 1, progress: bool = True) -> Path:
    """Render a gmcaps corpus of ``clips`` clips into ``out`` (replaced whole, or not at all).

    Raises:
        LusebenchError: bad counts, a folder that is not a gmcaps folder, or no synthesizer.
    """
    if not 1 <= clips <= MAX_CLIPS:
        raise LusebenchError(f"--clips must be between 1 and {MAX_CLIPS}, got {clips}")
    if workers < 1:
        raise LusebenchError(f"--workers must be at least 1, got {workers}")
    soundfont = gm.load_soundfont()  # a missing synthesizer fails before the folder is touched
    programs, drum_patterns, banned = held_out()
    pairs = training_voices(programs, drum_patterns)
    drawn = [draw_clip(seed, i, pairs, banned) for i in range(clips)]
    rows = []
    with replace_folder(Path(out), FOLDER_ENTRIES) as staging:
        (staging / "audio").mkdir()
        tasks = [(clip, seed) for clip in drawn]
        bar = tqdm(total=clips, desc=f"gmcaps {Path(out).name}", unit="clip", disable=not progress)
        for clip, (payload, num_samples) in zip(drawn, _rendered(tasks, workers, soundfont)):
            write_bytes(staging / "audio" / f"{clip.clip_id}.flac", payload)
            rows.append([clip.index + 1, clip.clip_id, 0, clip.caption, "gmcaps", gm.GM_LICENCE, gm.GM_CREDIT,
                         f"{num_samples / gm.SAMPLE_RATE:.4f}", f"{clip.voice.name}/{clip.gm_clip.pattern}"])
            bar.update()
        bar.close()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(AUDIOCAPS_COLUMNS + PROVENANCE_COLUMNS)
        writer.writerows(rows)
        write_bytes(staging / "train.csv", buffer.getvalue().encode("utf-8"))
        config = {"generator_version": GENERATOR_VERSION, "lusebench": __version__, "seed": seed, "clips": clips,
                  "soundfont_sha256": gm.SOUNDFONT_SHA256, "held_out_programs": sorted(programs),
                  "held_out_drum_patterns": sorted(drum_patterns)}
        write_bytes(staging / "gmcaps.json", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        write_bytes(staging / "README.md", _readme(config, len({r[3] for r in rows})).encode("utf-8"))
    return Path(out)


def _readme(config: dict, distinct_captions: int) -> str:
    return (
        "# gmcaps: generated General-MIDI training clips\n\n"
        f"{config['clips']} clips ({distinct_captions} distinct captions) rendered by lusebench "
        f"{config['lusebench']} (`lusebench gm-corpus`, seed {config['seed']}, generator version "
        f"{config['generator_version']}) with tinysoundfont from the TimGM6mb SoundFont of pretty_midi "
        f"(sha256 `{config['soundfont_sha256']}`).\n\n"
        "Train split only. Held out because minicaps' val or test clips use them: GM programs "
        f"{config['held_out_programs']}, drum patterns {config['held_out_drum_patterns']}, and every "
        "val/test caption.\n\n"
        "Licence: TimGM6mb is Copyright 2004 Tim Brechbill, 2010 David Bolton, GPL-2; the rendered "
        "clips are distributed under GPL-2.0-only. Audio: mono, 16 kHz, 16-bit FLAC, silence trimmed, "
        "peak -1 dBFS.\n"
    )
