"""General-MIDI clips: seeded note patterns rendered with the TimGM6mb SoundFont.

One copy of the synthesis serves two callers: ``scripts/build_assets.py``, which renders the
embedded minicaps GM clips, and :mod:`lusebench.simulation.gmcaps`, which renders the larger
generated training corpus. Both need ``tinysoundfont`` and the SoundFont inside the
``pretty_midi`` package; they are optional because tinysoundfont declares a dependency on
PyAudio (for live playback, which lusebench never does) that does not build without PortAudio.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from lusebench.errors import LusebenchError

SOUNDFONT_SHA256 = "82475b91a76de15cb28a104707d3247ba932e228bada3f47bba63c6b31aaf7a1"
INSTALL_HINT = "pip install pretty_midi==0.2.11 && pip install --no-deps tinysoundfont==0.3.7"

# Conditioning every corpus clip goes through (minicaps and the generated corpus alike).
SAMPLE_RATE = 16000
MAX_DURATION_S = 10.0
MIN_DURATION_S = 0.5
PEAK_DBFS = -1.0
# Silence is whatever lies this far below the loudest 10 ms frame; a few ms are kept around
# the sound so onsets and decays are not clipped.
TRIM_THRESHOLD_DB = -50.0
TRIM_FRAME_S = 0.010
TRIM_MARGIN_S = 0.010
TRUNCATION_FADE_S = 0.020


@dataclass(frozen=True)
class GmClip:
    """A General-MIDI clip: a GM program (or the drum kit) playing a seeded pattern."""

    name: str
    program: int  # GM program 0-127; ignored for drum patterns
    pattern: str
    bpm: float
    octave: int = 0  # shift of the pattern's register in octaves


# Order is part of the output (ids and seeds follow it): append, never reorder.

GM_CLIPS: tuple[GmClip, ...] = (
    GmClip("piano-melody", 0, "melody", 112),
    GmClip("piano-slow-chords", 0, "chords", 60),
    GmClip("bright-piano-scale", 1, "scale", 150),
    GmClip("electric-piano-chords", 4, "chords", 84),
    GmClip("harpsichord-arpeggio", 6, "arpeggio", 110),
    GmClip("celesta-melody", 8, "melody", 96, 1),
    GmClip("glockenspiel-melody", 9, "melody", 120, 1),
    GmClip("music-box-melody", 10, "slow_melody", 72, 1),
    GmClip("vibraphone-arpeggio", 11, "arpeggio", 80),
    GmClip("marimba-arpeggio", 12, "arpeggio", 140),
    GmClip("tubular-bells", 14, "slow_melody", 50),
    GmClip("church-organ-chords", 19, "sustained", 50),
    GmClip("rock-organ-chords", 18, "chords", 126),
    GmClip("accordion-melody", 21, "melody", 110),
    GmClip("harmonica-melody", 22, "slow_melody", 80),
    GmClip("nylon-guitar-arpeggio", 24, "arpeggio", 90, -1),
    GmClip("steel-guitar-strum", 25, "strum", 100, -1),
    GmClip("clean-guitar-melody", 27, "melody", 100, -1),
    GmClip("distortion-guitar-power-chords", 30, "power_chords", 130, -1),
    GmClip("acoustic-bass-line", 32, "bass_line", 100, -2),
    GmClip("slap-bass-line", 36, "bass_line", 118, -2),
    GmClip("violin-melody", 40, "slow_melody", 70, 1),
    GmClip("cello-melody", 42, "slow_melody", 60, -1),
    GmClip("pizzicato-strings", 45, "melody", 120),
    GmClip("harp-arpeggio", 46, "arpeggio", 100),
    GmClip("timpani-hits", 47, "low_hits", 100, -2),
    GmClip("string-ensemble-chords", 48, "sustained", 60),
    GmClip("choir-chords", 52, "sustained", 60),
    GmClip("trumpet-melody", 56, "melody", 120),
    GmClip("trombone-melody", 57, "slow_melody", 80, -1),
    GmClip("tuba-bass-line", 58, "oompah", 100, -2),
    GmClip("french-horn-melody", 60, "slow_melody", 70, -1),
    GmClip("brass-section-chords", 61, "chords", 112),
    GmClip("soprano-sax-melody", 64, "melody", 110),
    GmClip("tenor-sax-melody", 66, "slow_melody", 80, -1),
    GmClip("oboe-melody", 68, "slow_melody", 75),
    GmClip("bassoon-melody", 70, "melody", 92, -2),
    GmClip("clarinet-melody", 71, "melody", 100),
    GmClip("flute-scale", 73, "scale", 150, 1),
    GmClip("flute-melody", 73, "slow_melody", 80, 1),
    GmClip("pan-flute-melody", 75, "slow_melody", 70),
    GmClip("ocarina-melody", 79, "melody", 100, 1),
    GmClip("square-lead-melody", 80, "melody", 136),
    GmClip("saw-lead-arpeggio", 81, "arpeggio", 150),
    GmClip("synth-pad-chords", 89, "sustained", 50),
    GmClip("sitar-melody", 104, "melody", 90),
    GmClip("banjo-arpeggio", 105, "arpeggio", 150),
    GmClip("kalimba-melody", 108, "melody", 100),
    GmClip("bagpipe-melody", 109, "slow_melody", 84),
    GmClip("fiddle-melody", 110, "melody", 140),
    GmClip("steel-drums-melody", 114, "melody", 112),
    GmClip("taiko-hits", 116, "low_hits", 90, -1),
    GmClip("drums-rock-beat", 0, "drums_rock", 110),
    GmClip("drums-fast-beat", 0, "drums_fast", 150),
    GmClip("drums-ride-beat", 0, "drums_ride", 76),
    GmClip("drums-tom-fill", 0, "drums_toms", 110),
    GmClip("congas-bongos", 0, "drums_latin", 104),
    GmClip("cowbell-claves", 0, "drums_cowbell", 112),
    GmClip("tambourine", 0, "drums_tambourine", 104),
    GmClip("hand-claps", 0, "drums_claps", 100),
    GmClip("sfx-guitar-fret-noise", 120, "sfx_hits", 90),
    GmClip("sfx-breath-noise", 121, "sfx_breaths", 60),
    GmClip("sfx-seashore", 122, "sfx_hold", 60),
    GmClip("sfx-bird-tweet", 123, "sfx_hits", 100, -1),
    GmClip("sfx-telephone-ring", 124, "sfx_rings", 60, -1),
    GmClip("sfx-helicopter", 125, "sfx_hold", 60),
    GmClip("sfx-applause", 126, "sfx_hold", 60),
    GmClip("sfx-gunshot", 127, "sfx_hits", 120),
)
GM_SEED = 20240601
GM_RENDER_RATE = 44100
GM_DRUM_CHANNEL = 9
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
# I-V-vi-IV, the most common pop progression, as scale degrees of the chord roots.
PROGRESSION = (0, 4, 5, 3)
GM_LICENCE = "GPL-2.0-only"
GM_CREDIT = (
    "Rendered by lusebench from seeded note sequences with the TimGM6mb SoundFont "
    "(Tim Brechbill 2004, David Bolton 2010) as shipped in the pretty_midi wheel"
)


Note = tuple[float, float, int, int, int]  # onset_s, duration_s, key, velocity, channel


def _scale_key(root: int, degree: int) -> int:
    """MIDI key of a (possibly negative or > 7) major-scale degree above ``root``."""
    octave, step = divmod(degree, len(MAJOR_SCALE))
    return root + 12 * octave + MAJOR_SCALE[step]


def _triad(root: int, degree: int) -> list[int]:
    return [_scale_key(root, degree + third) for third in (0, 2, 4)]


def gm_notes(clip: GmClip, rng: np.random.Generator) -> list[Note]:
    """The note sequence of a GM clip: 3.5-5 s of a seeded pattern.

    Args:
        clip: the clip definition.
        rng: the clip's own generator (the sequence depends on nothing else).

    Returns:
        Notes as ``(onset_s, duration_s, key, velocity, channel)``.
    """
    beat = 60.0 / clip.bpm
    length_s = float(rng.uniform(3.5, 5.0))
    root = 60 + 12 * clip.octave + int(rng.integers(-5, 6))
    n_beats = int(length_s / beat)
    notes: list[Note] = []

    def vel(base: int) -> int:
        return int(np.clip(base + rng.integers(-8, 9), 1, 127))

    if clip.pattern in ("melody", "slow_melody"):
        step = beat / 2 if clip.pattern == "melody" else beat
        degree, t = 0, 0.0
        while t < length_s:
            dur = step * float(rng.choice([1, 1, 1, 2]))
            notes.append((t, dur * 0.95, _scale_key(root, degree), vel(96), 0))
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2, 3]), -3, 9))
            t += dur
    elif clip.pattern in ("chords", "sustained", "power_chords", "strum"):
        beats_per_chord = {"chords": 1, "sustained": 4, "power_chords": 1, "strum": 1}[clip.pattern]
        for i in range(max(n_beats // beats_per_chord, 2)):
            t = i * beats_per_chord * beat
            chord_root = PROGRESSION[(i * beats_per_chord // 4) % len(PROGRESSION)]  # one chord a bar
            keys = _triad(root, chord_root)
            if clip.pattern == "power_chords":
                keys = [keys[0], keys[0] + 7, keys[0] + 12]
            for j, key in enumerate(keys):
                # Strummed strings sound one after another, a few ms apart.
                delay = 0.015 * j if clip.pattern == "strum" else 0.0
                notes.append((t + delay, beats_per_chord * beat * 0.9, key, vel(88), 0))
    elif clip.pattern == "arpeggio":
        step = beat / 4
        for i in range(int(length_s / step)):
            chord_root = PROGRESSION[(i // 8) % len(PROGRESSION)]
            keys = _triad(root, chord_root)
            pattern = keys + [keys[0] + 12, keys[2], keys[1]]
            notes.append((i * step, step * 1.5, pattern[i % 6], vel(90), 0))
    elif clip.pattern == "scale":
        step = beat / 4
        span = 8 + int(rng.integers(0, 4))
        up_down = list(range(span)) + list(range(span - 2, 0, -1))
        for i in range(int(length_s / step)):
            notes.append((i * step, step * 0.9, _scale_key(root, up_down[i % len(up_down)]), vel(92), 0))
    elif clip.pattern in ("bass_line", "oompah"):
        for i in range(n_beats):
            chord = _triad(root, PROGRESSION[(i // 4) % len(PROGRESSION)])
            if clip.pattern == "oompah":
                key = chord[0] if i % 2 == 0 else chord[2] - 12
            else:
                key = chord[i % 3] if rng.random() < 0.7 else chord[0] + 12
            notes.append((i * beat, beat * 0.85, key, vel(100), 0))
    elif clip.pattern == "low_hits":
        rhythm = [1.0, 0.5, 0.5, 1.0, 1.0]
        t, i = 0.0, 0
        while t < length_s:
            key = root if i % 3 else root + 7
            notes.append((t, 0.4, key, vel(110 if i % 4 == 0 else 90), 0))
            t += beat * rhythm[i % len(rhythm)]
            i += 1
    elif clip.pattern.startswith("drums_"):
        notes = _drum_notes(clip.pattern, beat, length_s, vel)
    elif clip.pattern in ("sfx_hold", "sfx_breaths"):
        hold = length_s if clip.pattern == "sfx_hold" else 1.2
        t = 0.0
        while t < length_s:
            notes.append((t, min(hold, length_s - t), root, vel(100), 0))
            t += hold + (0.3 if clip.pattern == "sfx_breaths" else 0.0)
    elif clip.pattern == "sfx_hits":
        t = 0.0
        while t < length_s:
            notes.append((t, 0.3, root + int(rng.integers(-3, 4)), vel(100), 0))
            t += beat * float(rng.choice([0.25, 0.5, 0.5, 1.0]))
    elif clip.pattern == "sfx_rings":
        # A bell telephone: two rings, a pause, two rings (the GM sample is one short ring).
        for t in np.arange(0.0, length_s, 2.5):
            for burst in (0.0, 0.5):
                notes.append((float(t) + burst, 0.45, root, vel(100), 0))
    else:
        raise ValueError(f"unknown GM pattern {clip.pattern!r} of clip {clip.name!r}")
    return notes


# GM percussion keys (channel 10).
KICK, SNARE, CLAP, HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 39, 42, 46, 49, 51
TOM_LOW, TOM_MID, TOM_HIGH = 45, 47, 50
TAMBOURINE, COWBELL, HI_BONGO, LO_BONGO, MUTE_CONGA, OPEN_CONGA, LO_CONGA, CLAVES = (
    54, 56, 60, 61, 62, 63, 64, 75,
)


def _drum_notes(pattern: str, beat: float, length_s: float, vel: Callable[[int], int]) -> list[Note]:
    """Drum-kit patterns as 16th-note grids: ``{key: steps of a one-bar (16-step) loop}``."""
    grids: dict[str, dict[int, tuple[int, ...]]] = {
        "drums_rock": {KICK: (0, 8, 10), SNARE: (4, 12), HAT: (0, 2, 4, 6, 8, 10, 12, 14)},
        "drums_fast": {KICK: (0, 3, 8, 11), SNARE: (4, 12), HAT: tuple(range(16)), OPEN_HAT: (14,)},
        "drums_ride": {KICK: (0, 10), SNARE: (8,), RIDE: (0, 4, 6, 8, 12, 14)},
        "drums_toms": {
            TOM_HIGH: (0, 1, 2, 3), TOM_MID: (4, 5, 6, 7), TOM_LOW: (8, 9, 10, 11), KICK: (12,), CRASH: (12,),
        },
        "drums_latin": {
            HI_BONGO: (0, 3, 6, 10), LO_BONGO: (2, 8, 14), MUTE_CONGA: (4, 12), OPEN_CONGA: (7, 15), LO_CONGA: (11,),
        },
        "drums_cowbell": {COWBELL: (0, 4, 8, 12), CLAVES: (0, 3, 6, 10, 12)},
        "drums_tambourine": {TAMBOURINE: (0, 2, 4, 6, 8, 10, 12, 14)},
        "drums_claps": {CLAP: (0, 4, 8, 12, 14), KICK: (0, 8)},
    }
    if pattern not in grids:
        raise ValueError(f"unknown drum pattern {pattern!r}")
    step = beat / 4
    notes: list[Note] = []
    for i in range(int(length_s / step)):
        for key, steps in grids[pattern].items():
            if i % 16 in steps:
                accent = 110 if i % 4 == 0 else 85
                notes.append((i * step, 0.2, key, vel(accent), GM_DRUM_CHANNEL))
    return notes


def render_gm(clip: GmClip, notes: list[Note], soundfont: bytes) -> np.ndarray:
    """Render notes with tinysoundfont; returns (n_samples,) float64 mono at GM_RENDER_RATE.

    A fresh synth per clip keeps clips independent of each other's release tails.
    """
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=GM_RENDER_RATE)
    sfid = synth.sfload(soundfont)
    synth.program_select(0, sfid, 0, clip.program)
    synth.program_select(GM_DRUM_CHANNEL, sfid, 128, 0, is_drums=True)
    events = []  # (sample, order, kind, channel, key, velocity); note-offs sort first
    for onset, duration, key, velocity, channel in notes:
        events.append((round(onset * GM_RENDER_RATE), 1, "on", channel, key, velocity))
        events.append((round((onset + duration) * GM_RENDER_RATE), 0, "off", channel, key, 0))
    events.sort()
    # A second of tail lets releases and reverb ring out; trimming removes what is silent.
    total = events[-1][0] + GM_RENDER_RATE
    out = np.zeros((total, 2), dtype=np.float32)
    position = 0
    for sample, _, kind, channel, key, velocity in events + [(total, 0, "end", 0, 0, 0)]:
        if sample > position:
            block = synth.generate_simple(sample - position)
            out[position:sample] = np.frombuffer(block, dtype=np.float32).reshape(-1, 2)
            position = sample
        if kind == "on":
            synth.noteon(channel, key, velocity)
        elif kind == "off":
            synth.noteoff(channel, key)
    return out.astype(np.float64).mean(axis=1)


def load_soundfont() -> bytes:
    """The TimGM6mb SoundFont from the installed pretty_midi, checked against its pinned sha256.

    Raises:
        LusebenchError: pretty_midi or tinysoundfont is missing, or the SoundFont is another file.
    """
    try:
        import tinysoundfont  # noqa: F401  (imported here so that a missing synth fails before any work)

        sf2 = resources.files("pretty_midi").joinpath("TimGM6mb.sf2").read_bytes()
    except (ImportError, FileNotFoundError) as error:
        raise LusebenchError(f"General-MIDI rendering needs pretty_midi and tinysoundfont ({error}); install: {INSTALL_HINT}") from None
    digest = hashlib.sha256(sf2).hexdigest()
    if digest != SOUNDFONT_SHA256:
        raise LusebenchError(f"pretty_midi's TimGM6mb.sf2 has sha256 {digest}, expected {SOUNDFONT_SHA256} (pretty_midi 0.2.11)")
    return sf2


def flac_bytes(audio: np.ndarray) -> bytes:
    """A conditioned clip as the bytes of a 16-bit FLAC file at SAMPLE_RATE, as corpus clips are stored."""
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def condition(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resample to 16 kHz, trim silence, cap at 10 s and peak-normalise to -1 dBFS.

    Args:
        audio: (n_samples,) mono float64.
        sample_rate: its rate in Hz.

    Returns:
        (n,) float64 at SAMPLE_RATE; empty when nothing rises above the silence threshold.
    """
    ratio = Fraction(SAMPLE_RATE, sample_rate)
    audio = resample_poly(audio, ratio.numerator, ratio.denominator)
    frame = round(TRIM_FRAME_S * SAMPLE_RATE)
    n_frames = len(audio) // frame + (len(audio) % frame > 0)
    if n_frames == 0:
        return audio[:0]
    padded = np.zeros(n_frames * frame)
    padded[: len(audio)] = audio
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))  # (n_frames,)
    if rms.max() == 0:
        return audio[:0]
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (TRIM_THRESHOLD_DB / 20))
    margin = round(TRIM_MARGIN_S * SAMPLE_RATE)
    start = max(loud[0] * frame - margin, 0)
    stop = min((loud[-1] + 1) * frame + margin, len(audio))
    audio = audio[start:stop]
    max_len = round(MAX_DURATION_S * SAMPLE_RATE)
    if len(audio) > max_len:
        audio = audio[:max_len].copy()
        fade = round(TRUNCATION_FADE_S * SAMPLE_RATE)
        audio[-fade:] *= np.linspace(1.0, 0.0, fade)
    return audio * (10 ** (PEAK_DBFS / 20) / np.abs(audio).max())

