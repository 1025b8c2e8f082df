"""model.audio.bandwidth: where a recording's spectrum really ends, and the model (input rate,
scale) that choice gives."""

import re

import numpy as np
import pytest
from scipy import signal

from model import audio, registry


def _speechlike(rate: int, seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Bursts of noise falling 6 dB an octave (as voiced speech roughly does), with pauses."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    pink = signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * np.arange(n) / rate), 0, None) ** 2
    x = pink * envelope
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def _lowpassed(x: np.ndarray, rate: int, cutoff: float) -> np.ndarray:
    sos = signal.butter(12, cutoff, fs=rate, output="sos")
    return signal.sosfiltfilt(sos, x).astype(np.float32)


def _pcm16(x: np.ndarray) -> np.ndarray:
    """`x` as a 16-bit file holds it: every recording has a floor, at least its quantization."""
    return (np.round(x * 32767) / 32767).astype(np.float32)


def _within(found: float, true: float, tolerance: float = 0.1) -> bool:
    return abs(found - true) <= tolerance * true


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
@pytest.mark.parametrize("cutoff", [2000, 3400, 4000, 5500])
def test_a_low_pass_edge_is_found_at_any_file_rate(rate, cutoff):
    x = _pcm16(_lowpassed(_speechlike(rate), rate, cutoff))
    assert _within(audio.bandwidth(x, rate), cutoff)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_full_band_audio_reaches_the_nyquist(rate):
    assert _within(audio.bandwidth(_speechlike(rate), rate), rate / 2)


def test_noise_floor_dither_and_leading_silence_do_not_move_the_edge():
    rate, cutoff = 48000, 4000
    rng = np.random.default_rng(1)
    x = _lowpassed(_speechlike(rate), rate, cutoff)
    floor = x + 10 ** (-70 / 20) * 0.3 * rng.standard_normal(len(x))  # a hiss 70 dB down
    # 16-bit TPDF dither: two uniform LSB-wide noises
    dither = x + (rng.random(len(x)) - rng.random(len(x))) / 32768
    silence = np.concatenate([np.zeros(2 * rate, np.float32), x])
    hiss_then_speech = np.concatenate([1e-4 * rng.standard_normal(2 * rate), floor])
    for case in (floor, dither, silence, hiss_then_speech):
        assert _within(audio.bandwidth(case.astype(np.float32), rate), cutoff)


def test_stereo_is_judged_on_both_channels():
    rate = 44100
    x = _lowpassed(_speechlike(rate), rate, 4000)
    assert _within(audio.bandwidth(np.stack([x, 0.5 * x]), rate), 4000)


@pytest.mark.parametrize(
    ("scale", "kind", "file_rate", "true_hz"),
    # decimate's Chebyshev passes 0.8 of the new Nyquist; the MP3 path low-passes with it first
    [
        (4, "cheby8", 4000, 1600),  # the paper's low-pass, at the low rate itself
        (4, "cheby8", 48000, 1600),  # a 48 kHz file of narrowband content
        (2, "cheby8", 44100, 3200),
        (2, "sinc", 16000, 4000),
        (4, "sinc", 48000, 2000),
        (4, "butter", 16000, 1800),  # 0.9 of the new Nyquist
        (2, "ellip", 48000, 3600),
        (2, "telephone", 8000, 3400),  # the voice band: 300-3400 Hz
        (2, "mp3", 44100, 3200),  # an 8 kHz MP3 brought back to 44.1 kHz
    ],
)
def test_real_speech_through_codecs_and_low_passes(speech_wav, scale, kind, file_rate, true_hz):
    x, rate = audio.load(speech_wav)
    lowres = audio.lowres(audio.to_mono(x), scale, kind)
    recording = audio.resample(lowres, rate // scale, file_rate)
    assert _within(audio.bandwidth(recording, file_rate), true_hz)


def test_too_short_or_silent_audio_counts_as_full_band():
    assert audio.bandwidth(np.zeros(16000, np.float32), 16000) == 8000
    assert audio.bandwidth(np.ones(10, np.float32), 16000) == 8000


@pytest.mark.parametrize(
    ("bandwidth_hz", "pair"),
    [
        (1900, (4000, 4)),
        (2150, (4000, 4)),  # a low-pass's skirt a little past 2 kHz still counts
        (3400, (8000, 2)),  # telephone audio: wideband, not full band
        (3950, (8000, 2)),
        (4200, (8000, 2)),
        (5500, (16000, 3)),
        (7300, (16000, 3)),  # a 16 kHz file
        (8000, (16000, 3)),
        (8600, (16000, 3)),
    ],
)
def test_the_narrowest_model_input_band_that_holds_the_audio_is_chosen(bandwidth_hz, pair):
    assert registry.pair_for_bandwidth(bandwidth_hz) == pair


@pytest.mark.parametrize(
    ("bandwidth_hz", "reason"),
    [
        (9000, "above the widest model input band (8 kHz)"),
        (15000, "above the widest model input band (8 kHz)"),
        (21500, "above the widest model input band (8 kHz)"),
        (21600, "as wide as the 48 kHz output (24 kHz): there is no band to add"),
        (24000, "as wide as the 48 kHz output (24 kHz): there is no band to add"),
    ],
)
def test_input_no_model_adds_to_is_refused_with_the_reason(bandwidth_hz, reason):
    with pytest.raises(registry.AlreadyWide, match=re.escape(reason)):
        registry.pair_for_bandwidth(bandwidth_hz)


@pytest.mark.parametrize("file_rate", [16000, 44100, 48000])
def test_speech_whose_band_stops_near_8khz_goes_to_the_full_band_model(speech_wav, file_rate):
    """The 16 kHz clip as it is, and in 44.1 and 48 kHz files: its content stops near 8 kHz."""
    x, rate = audio.load(speech_wav)
    recording = audio.resample(audio.to_mono(x), rate, file_rate)
    assert registry.pair_for_bandwidth(audio.bandwidth(recording, file_rate)) == (16000, 3)


def test_full_band_audio_has_no_band_to_add():
    with pytest.raises(registry.AlreadyWide, match="no band to add"):
        registry.pair_for_bandwidth(audio.bandwidth(_speechlike(48000), 48000))
