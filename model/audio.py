"""Audio I/O and the signal processing around the net: load, save, resample, low-res, spline, sinc."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import interpolate

from model.registry import OUTPUT_RATE

LOWRES_FILTERS = (
    "cheby8",
    "butter",
    "bessel",
    "ellip",
    "sinc",
    "random",
    "telephone",
    "mp3",
    "g722",
)
# Rates MPEG audio can be written at (libsndfile refuses others).
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)


class AudioError(ValueError):
    """Input a person gave us that is not usable audio; the message is meant for them."""


class NonFiniteAudio(AudioError):
    """The audio decodes but holds NaN or infinite samples."""


NON_FINITE = "the audio contains NaN or infinite samples"


def _source(src: str | Path | bytes) -> str | io.BytesIO:
    if isinstance(src, bytes | bytearray | memoryview):
        if len(src) == 0:
            raise AudioError("the file is empty")
        return io.BytesIO(bytes(src))
    return str(src)


def info(src: str | Path | bytes) -> tuple[int, int, int]:
    """(frames, rate, channels) from the header alone, without decoding the samples."""
    try:
        meta = sf.info(_source(src))
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(_decode_message(err)) from None
    if meta.frames <= 0:
        raise AudioError("the file holds no audio samples")
    return int(meta.frames), int(meta.samplerate), int(meta.channels)


def load(src: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Decode wav/flac/ogg/mp3 at any rate: (samples float32 [C x T] in [-1, 1], rate)."""
    try:
        data, rate = sf.read(_source(src), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(_decode_message(err)) from None
    if data.shape[0] == 0:
        raise AudioError("the file holds no audio samples")
    if not np.all(np.isfinite(data)):
        raise NonFiniteAudio(NON_FINITE)
    return np.ascontiguousarray(data.T), int(rate)


def verify(
    src: str | Path | bytes, block: int = 65536, keep_seconds: float = 0.0
) -> tuple[np.ndarray, int]:
    """Decode the whole input in blocks, holding only its first `keep_seconds`, and raise
    AudioError if it breaks off or NonFiniteAudio if it holds NaN or infinity (the header alone
    passes both): (the first `keep_seconds` as float32 [C x T], rate)."""
    try:
        with sf.SoundFile(_source(src)) as f:
            keep, kept = int(keep_seconds * f.samplerate), []
            for frames in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                if not np.isfinite(frames).all():
                    raise NonFiniteAudio(NON_FINITE)
                if keep > 0:
                    kept.append(frames[:keep])
                    keep -= len(kept[-1])
            head = np.concatenate(kept) if kept else np.zeros((0, f.channels), np.float32)
            return np.ascontiguousarray(head.T), f.samplerate
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(_decode_message(err)) from None


def _decode_message(err: Exception) -> str:
    text = str(err)
    if (
        "unimplemented format" in text
        or "Format not recognised" in text
        or "unknown format" in text
    ):
        return "not an audio file we can decode (use wav, flac, ogg or mp3)"
    if "System error" in text or "No such file" in text:
        return "the audio file could not be opened"
    return "the audio could not be decoded: it may be truncated or not audio at all"


def to_wav_bytes(x: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV of `x` ([T] or [C x T], float in [-1, 1])."""
    buf = io.BytesIO()
    save(buf, x, rate)
    return buf.getvalue()


def save(dest: str | Path | io.BytesIO, x: np.ndarray, rate: int) -> None:
    """Write `x` ([T] or [C x T]) as 16-bit PCM WAV, clipping to [-1, 1] rather than wrapping."""
    x = np.asarray(x, dtype=np.float32)
    frames = x if x.ndim == 1 else x.T
    sf.write(
        dest if isinstance(dest, io.BytesIO) else str(dest),
        np.clip(frames, -1.0, 1.0),
        int(rate),
        subtype="PCM_16",
        format="WAV",
    )


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels of [C x T] into [T]."""
    return x if x.ndim == 1 else x.mean(axis=0)


def resample(x: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling along the last axis (soxr, high quality)."""
    if orig_rate == new_rate:
        return np.asarray(x, dtype=np.float32)
    import librosa  # slow to import; only the paths that resample pay for it

    y = librosa.resample(
        np.asarray(x, dtype=np.float32), orig_sr=orig_rate, target_sr=new_rate, res_type="soxr_hq"
    )
    return y.astype(np.float32)


def lowres(
    x: np.ndarray,
    scale: int,
    filter: str = "cheby8",
    rng: np.random.Generator | None = None,
    rate: int = OUTPUT_RATE,
) -> np.ndarray:
    """Anti-alias and keep every `scale`-th sample along the last axis of audio at `rate`.

    "cheby8" is the paper's prep (`scipy.signal.decimate`: order-8 Chebyshev I, cutoff 0.8 of the
    new Nyquist, zero phase). The others exist so training sees many low-pass shapes: a model
    trained on one filter learns that filter's fingerprint and fails on real narrowband audio.
    "telephone" is the 300-3400 Hz voice band (at most 0.85 of the new Nyquist) with 8-bit mu-law;
    "mp3" is the paper's prep through a 24 kbit/s MP3 (at 8 kHz when the new rate is lower);
    "g722" is the paper's prep of a G.722 call (the wideband telephone codec, 64 kbit/s): at
    16 kHz the codec's own band-split takes the place of a low-pass; from a higher rate the input
    is decimated to 16 kHz first (G.722 codes 16 kHz audio only).
    """
    from scipy import signal  # heavy import; only paths that filter pay for it

    x = np.asarray(x, dtype=np.float64)
    if filter == "random":
        rng = rng or np.random.default_rng()
        return _random_lowpass(x, scale, rng)
    if filter == "telephone":
        return _telephone(x, scale, rate)
    if filter == "g722":
        if rate != OUTPUT_RATE:
            if rate // scale != OUTPUT_RATE:
                raise ValueError(f"g722 codes 16 kHz audio, not {rate // scale} Hz")
            decimated = signal.decimate(x, scale, n=8, ftype="iir", zero_phase=True, axis=-1)
            return _g722(decimated).astype(np.float32)
        x = _g722(x)
        filter = "cheby8"
    if filter == "mp3":
        decimated = signal.decimate(x, scale, n=8, ftype="iir", zero_phase=True, axis=-1)
        return _mp3(decimated, scale, rate)
    if filter == "cheby8":
        y = signal.decimate(x, scale, n=8, ftype="iir", zero_phase=True, axis=-1)
    elif filter == "sinc":
        y = signal.resample_poly(x, 1, scale, axis=-1)
    elif filter in ("butter", "bessel", "ellip"):
        y = _iir_lowpass(x, scale, filter, order=8, cutoff=0.9)
    else:
        raise ValueError(f"unknown low-pass filter {filter!r}; choose from {LOWRES_FILTERS}")
    return y.astype(np.float32)


def _iir_lowpass(x: np.ndarray, scale: int, kind: str, order: int, cutoff: float) -> np.ndarray:
    """Zero-phase IIR low-pass at `cutoff` x the new Nyquist, then keep every `scale`-th sample."""
    from scipy import signal  # heavy import; only paths that filter pay for it

    wn = cutoff / scale
    if kind == "butter":
        sos = signal.butter(order, wn, output="sos")
    elif kind == "bessel":
        sos = signal.bessel(order, wn, output="sos", norm="mag")
    elif kind == "ellip":
        sos = signal.ellip(order, 0.5, 60, wn, output="sos")
    else:
        sos = signal.cheby1(order, 0.05, wn, output="sos")
    y = signal.sosfiltfilt(sos, x, axis=-1)
    return y[..., ::scale]


def _telephone(x: np.ndarray, scale: int, rate: int = OUTPUT_RATE) -> np.ndarray:
    """The telephone voice band and G.711 mu-law (8 bits), at rate / scale."""
    from scipy import signal

    top = min(3400.0, 0.85 * rate / 2 / scale)
    sos = signal.ellip(8, 0.5, 60, [300.0, top], btype="bandpass", fs=rate, output="sos")
    y = signal.sosfiltfilt(sos, x, axis=-1)[..., ::scale]
    mu = 255.0
    compressed = np.sign(y) * np.log1p(mu * np.minimum(np.abs(y), 1.0)) / np.log1p(mu)
    quantized = np.round(compressed * 127.5) / 127.5
    return (np.sign(quantized) * np.expm1(np.abs(quantized) * np.log1p(mu)) / mu).astype(np.float32)


def _mp3(y: np.ndarray, scale: int, rate: int = OUTPUT_RATE, bitrate: float = 0.2) -> np.ndarray:
    """`y` at rate / scale through a low-bitrate MP3 and back, realigned to the input.

    `bitrate` is libsndfile's compression level (0 best .. 1 smallest); MPEG cannot code rates
    below 8 kHz, so those pass through 8 kHz.
    """
    from scipy import signal

    low = rate // scale
    coded_rate = low if low in MP3_RATES else 8000
    z = signal.resample_poly(y, coded_rate, low, axis=-1) if coded_rate != low else y
    buffer = io.BytesIO()
    peak = max(float(np.max(np.abs(z))), 1e-6)
    sf.write(
        buffer,
        (z / max(peak, 1.0)).T,
        coded_rate,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=1.0 - bitrate,
        bitrate_mode="CONSTANT",
    )
    buffer.seek(0)
    decoded, _ = sf.read(buffer, dtype="float32", always_2d=True)
    decoded = decoded.T.reshape(z.shape[:-1] + (-1,)) * max(peak, 1.0)
    aligned = _realigned(decoded, z)
    if coded_rate != low:
        aligned = signal.resample_poly(aligned, low, coded_rate, axis=-1)[..., : y.shape[-1]]
    return aligned.astype(np.float32)


def g722_decode(coded: bytes) -> np.ndarray:
    """Headerless 64 kbit/s G.722 -> float32 [N] in [-1, 1] at 16 kHz."""
    import G722  # the g722 package

    pcm = G722.G722(OUTPUT_RATE, 64000).decode(coded)
    return np.asarray(pcm, dtype=np.float32) / 32768.0


def _g722(x: np.ndarray) -> np.ndarray:
    """16 kHz audio [... x T] through G.722 at 64 kbit/s and back, realigned to the input."""
    import G722  # the g722 package

    rows = x.reshape(-1, x.shape[-1])
    peak = max(float(np.max(np.abs(rows))), 1.0)  # the codec takes 16-bit PCM
    decoded = []
    for row in rows:
        pcm = np.round(row / peak * 32767).astype(np.int16)
        coded = G722.G722(OUTPUT_RATE, 64000).encode(pcm)
        decoded.append(g722_decode(bytes(coded)).astype(np.float64) * peak)
    width = max(len(d) for d in decoded)
    decoded = np.stack([np.pad(d, (0, width - len(d))) for d in decoded])
    return _realigned(decoded, rows).reshape(x.shape[:-1] + (-1,))


def _realigned(decoded: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """A codec's output [... x T'] with its delay (found by cross-correlation against the first
    row of `reference` [... x T]) cut out, padded or cut to T."""
    from scipy import signal

    length = reference.shape[-1]
    a, b = reference.reshape(-1, length)[0], decoded.reshape(-1, decoded.shape[-1])[0]
    # Lags 0..2048: the output may be no longer than the input (G.722 keeps its length).
    b = np.pad(b[: len(a) + 2048], (0, max(0, len(a) + 2048 - len(b))))
    lags = signal.correlate(b, a, mode="valid")
    delay = int(np.argmax(lags)) if len(lags) else 0
    aligned = decoded[..., delay : delay + length]
    return np.pad(aligned, [(0, 0)] * (aligned.ndim - 1) + [(0, length - aligned.shape[-1])])


def _random_lowpass(x: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import signal  # heavy import; only paths that filter pay for it

    kind = rng.choice(["cheby1", "butter", "bessel", "ellip", "sinc"])
    if kind == "sinc":
        return signal.resample_poly(x, 1, scale, axis=-1).astype(np.float32)
    order = int(rng.integers(4, 11))
    cutoff = float(rng.uniform(0.75, 0.99))
    return _iir_lowpass(x, scale, kind, order, cutoff).astype(np.float32)


def spline(x_lowres: np.ndarray, scale: int) -> np.ndarray:
    """Cubic-spline interpolation by `scale` along the last axis: the paper's input and baseline.

    Sample i of the low-res signal sits at high-res position i * scale (what `decimate` keeps), and
    the output has exactly len * scale samples.
    """
    x = np.asarray(x_lowres, dtype=np.float64)
    n = x.shape[-1]
    if n < 2:
        return np.repeat(x, scale, axis=-1).astype(np.float32)
    knots = np.arange(n) * scale
    curve = interpolate.CubicSpline(knots, x, axis=-1, bc_type="not-a-knot", extrapolate=True)
    return curve(np.arange(n * scale)).astype(np.float32)


def sinc(x_lowres: np.ndarray, scale: int) -> np.ndarray:
    """Band-limited (polyphase windowed-sinc) upsampling by `scale`: the sinc baseline."""
    from scipy import signal  # heavy import; only paths that filter pay for it

    y = signal.resample_poly(np.asarray(x_lowres, dtype=np.float64), scale, 1, axis=-1)
    return y.astype(np.float32)


# bandwidth(): frames quieter than this below the loudest are pauses, not speech.
ACTIVE_DB = 45.0
# A cut-off is where the level falls by at least this much and nothing above comes back ...
CUTOFF_DROP_DB = 20.0
# ... and its edge is where the fall gets steeper than this; speech alone falls about 12 dB an
# octave, a codec's or resampler's low-pass hundreds.
STEEP_DB_PER_OCTAVE = 60.0


def bandwidth(x: np.ndarray, rate: int) -> float:
    """Where a recording's spectrum really ends, in Hz, whatever the file's rate.

    Codecs, telephone lines and the anti-alias filter of a lower rate leave a steep edge in the
    long-term spectrum, above which nothing comes back out of the floor (noise, dither or
    silence). The answer is the foot of the last such edge: the highest frequency f whose
    neighbourhood stands CUTOFF_DROP_DB over everything from 1.1 f up, walked down the slope to
    where the fall is gentler than STEEP_DB_PER_OCTAVE. With no such edge, the Nyquist. Only
    active frames count, so silence at the start or in pauses (digital zero or a noise floor)
    does not hide the band. `x` is [T] or [C x T] (channels averaged).
    """
    level, freqs = _active_spectrum(x, rate)
    if level is None:
        return rate / 2
    # The loudest level at or above each bin: does anything above come back?
    above = np.maximum.accumulate(level[::-1])[::-1]
    for k in range(len(level) - 1, 0, -1):
        if freqs[k] < 100.0:
            return rate / 2
        # The band just below f, 10 % of the frequency wide; f must still be near its level,
        # not deep on a filter's slope or down in the floor already.
        band = np.median(level[(freqs >= 0.9 * freqs[k]) & (freqs <= freqs[k])])
        if level[k] < band - 10.0:
            continue
        guard = int(np.ceil(1.1 * k))  # room for the filter's slope
        if guard < len(level) and band - above[guard] >= CUTOFF_DROP_DB:
            break
    else:
        return rate / 2

    def fall(k: int) -> float:
        """dB per octave the level falls over +-3 % around bin k."""
        top = min(len(level) - 1, int(np.ceil(1.03 * k)))
        return (level[int(0.97 * k)] - level[top]) / np.log2(1.03 / 0.97)

    while k > 4 and fall(k) >= STEEP_DB_PER_OCTAVE:
        k -= 1
    return float(freqs[k])


def _active_spectrum(x: np.ndarray, rate: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The smoothed long-term level in dB of the frames within ACTIVE_DB of the loudest, and
    its frequencies; (None, None) for audio too short or silent to tell."""
    from scipy import signal

    x = np.asarray(to_mono(np.asarray(x, dtype=np.float64)))
    # About 16 Hz bins at any rate, so a 4 kHz edge is found as sharply in 48 kHz files.
    n_fft = int(2 ** np.ceil(np.log2(max(256, rate / 16))))
    if len(x) < n_fft:
        return None, None
    _, _, z = signal.stft(x, fs=rate, nperseg=n_fft, noverlap=n_fft // 2, boundary=None)
    power = np.abs(z) ** 2  # [bins x frames]
    energy = power.sum(axis=0)
    if not np.any(energy > 0):
        return None, None
    loudest = np.percentile(energy[energy > 0], 95)
    spectrum = power[:, energy >= loudest * 10 ** (-ACTIVE_DB / 10)].mean(axis=1)
    # A ~100 Hz median smooths harmonics and single tonal bins (hum, a codec's stray line).
    level = signal.medfilt(10 * np.log10(spectrum + 1e-20), 2 * int(50 * n_fft / rate) + 1)
    return level, np.arange(len(level)) * rate / n_fft


def trim_silence(x: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Cut leading and trailing silence from a 1-D signal (training data prep)."""
    import librosa

    y, _ = librosa.effects.trim(x, top_db=top_db)
    return y
