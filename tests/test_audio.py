"""model.audio: decoding every format, refusing bad input clearly, low-res and interpolation."""

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model import audio


def _encoded(x: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x.T if x.ndim == 2 else x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _tone(rate: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([x] * channels) if channels > 1 else x


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", None), ("OGG", "VORBIS"), ("MP3", None)]
)
def test_load_formats(fmt, subtype):
    data = _encoded(_tone(22050), 22050, fmt, subtype)
    x, rate = audio.load(data)
    assert rate == 22050
    assert x.shape[0] == 1 and x.dtype == np.float32
    assert abs(x.shape[1] - 11025) < 2000  # mp3 adds encoder delay/padding


@pytest.mark.parametrize("rate", [8000, 11025, 44100, 48000])
def test_load_any_rate_and_channels(rate):
    x, got = audio.load(_encoded(_tone(rate, channels=2), rate, "WAV", "FLOAT"))
    assert got == rate and x.shape == (2, rate // 2)


def test_load_path(tmp_path):
    path = tmp_path / "a.wav"
    audio.save(path, _tone(16000), 16000)
    x, rate = audio.load(path)
    assert rate == 16000 and x.shape == (1, 8000)
    assert audio.info(path) == (8000, 16000, 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is not audio at all, just some text" * 20, "decode"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "decode"),
    ],
)
def test_load_rejects_non_audio(data, message):
    with pytest.raises(audio.AudioError, match=message):
        audio.load(data)


def test_load_rejects_truncated_wav():
    data = _encoded(_tone(16000), 16000, "WAV", "PCM_16")
    with pytest.raises(audio.AudioError):
        audio.load(data[:30])


def test_load_rejects_header_only_wav():
    data = _encoded(np.zeros(0, dtype=np.float32), 16000, "WAV", "PCM_16")
    with pytest.raises(audio.AudioError, match="no audio"):
        audio.load(data)


def test_load_rejects_nan():
    x = _tone(16000)
    x[100] = np.nan
    with pytest.raises(audio.AudioError, match="NaN"):
        audio.load(_encoded(x, 16000, "WAV", "FLOAT"))


def test_save_clips_instead_of_wrapping():
    x, _ = audio.load(audio.to_wav_bytes(np.array([2.0, -2.0, 0.5], dtype=np.float32), 8000))
    assert x[0, 0] > 0.99 and x[0, 1] < -0.99


@pytest.mark.parametrize(
    "filter", ["cheby8", "butter", "bessel", "ellip", "sinc", "random", "g722"]
)
@pytest.mark.parametrize("scale", [2, 4])
def test_lowres_length_and_band(filter, scale):
    rate = 16000
    t = np.arange(rate) / rate
    low = np.sin(2 * np.pi * 300 * t)
    high = np.sin(2 * np.pi * 0.45 * rate * t)  # above every low-res Nyquist
    y = audio.lowres(low + high, scale, filter, np.random.default_rng(0))
    assert len(y) == rate // scale
    spectrum = np.abs(np.fft.rfft(y[200:-200] * np.hanning(len(y) - 400)))
    freqs = np.fft.rfftfreq(len(y) - 400, d=scale / rate)
    # The 300 Hz tone survives; the 7.2 kHz tone would alias to 800 Hz if the low-pass let it by.
    assert abs(freqs[np.argmax(spectrum)] - 300) < 5
    alias = spectrum[np.abs(freqs - 800) < 20].max()
    assert alias < 0.05 * spectrum.max()


@pytest.mark.parametrize("scale", [2, 4])
def test_g722_is_a_wideband_call_realigned_to_its_input(scale):
    x, rate = audio.load(Path(__file__).parent / "data" / "speech_16k.wav")
    clean = audio.lowres(x[0], scale, "cheby8")
    coded = audio.lowres(x[0], scale, "g722")
    snr = 10 * np.log10(np.sum(clean**2) / np.sum((clean - coded) ** 2))
    # The codec's error, not a lag: a sample off would leave far less than 20 dB at 4-8 kHz.
    assert coded.shape == clean.shape and 20 < snr < 60


def test_spline_and_sinc_interpolate_a_slow_tone():
    scale, rate = 4, 16000
    t = np.arange(rate) / rate
    x = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    lr = x[::scale]
    for up in (audio.spline(lr, scale), audio.sinc(lr, scale)):
        assert len(up) == len(x)
        assert np.max(np.abs(up[100:-100] - x[100:-100])) < 1e-2


def test_resample_changes_length():
    y = audio.resample(_tone(44100), 44100, 16000)
    assert abs(len(y) - 8000) <= 1


def test_verify_streams_the_whole_body():
    audio.verify(_encoded(_tone(16000, seconds=2.0), 16000, "FLAC"), block=4096)
    cut = _encoded(np.random.default_rng(0).uniform(-0.5, 0.5, 64000), 16000, "FLAC")
    with pytest.raises(audio.AudioError):
        audio.verify(cut[: len(cut) // 2], block=4096)
    x = _tone(16000, seconds=2.0)
    x[-10] = np.inf  # past the first block: only decoding to the end finds it
    with pytest.raises(audio.NonFiniteAudio):
        audio.verify(_encoded(x, 16000, "WAV", "FLOAT"), block=4096)


def test_verify_keeps_only_the_head_it_is_asked_for():
    x = _tone(16000, seconds=2.0, channels=2)
    data = _encoded(x, 16000, "FLAC")
    head, rate = audio.verify(data, block=4096, keep_seconds=0.5)
    assert rate == 16000 and head.shape == (2, 8000)
    np.testing.assert_allclose(head, x[:, :8000], atol=1e-4)
    nothing, _ = audio.verify(data, block=4096)
    assert nothing.shape == (2, 0)
