"""Random recording chains for training: a clean 16 kHz clip as a room, the noise in it and a
microphone would have recorded it, so the net meets more recording set-ups than the corpus holds."""

from __future__ import annotations

import functools

import numpy as np

RATE = 16000

# How often each stage is in a chain (a chain with none of them, 1 in 16, passes the clip as is).
ROOM, NOISE, MICROPHONE = 0.5, 0.5, 0.75

RT60 = (0.1, 0.8)  # seconds, drawn uniformly
ROOM_SIZE = ((3.0, 3.0, 2.4), (10.0, 8.0, 4.0))  # metres, the smallest and largest shoebox
WALL_MARGIN = 0.5  # metres between the source or microphone and any wall
# An image-source room costs up to about a second (a small room with a long RT60 needs high
# orders), so a process builds ROOMS of them, each the first time it is drawn, and reuses them.
ROOMS = 64
ROOM_SEED = 24  # the pool is the same in every process: a chain depends on its rng alone
RIR_SECONDS = 0.5  # kept after the direct path: an RT60 of 0.8 s has decayed 37 dB by then
# pyroomacoustics spreads each arrival over an 81-tap windowed-sinc fractional delay: the kept
# response starts this many samples before the direct path.
DIRECT = 40

SNR_DB = (10.0, 40.0)
NOISE_EXPONENTS = (0, 1, 2)  # power falling as 1 / f**k: white, pink, brown

EQ_DB = 6.0  # the smooth response stays within +-EQ_DB
RESONANCE_HZ, RESONANCE_DB, RESONANCE_Q = (1000.0, 8000.0), (3.0, 10.0), (1.0, 6.0)
HIGH_PASS_HZ = (50.0, 300.0)
FILTER_PAD = 2048  # samples of room for the microphone's impulse response in the FFT


def room_impulse_response(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """The image-source impulse response (16 kHz) of a random shoebox room with this RT60, from a
    random source to a random microphone: float32 [DIRECT + RIR_SECONDS * RATE], unit energy,
    the direct path at sample DIRECT."""
    import pyroomacoustics as pra  # 1-2 s to import; only training with chains pays for it

    for _ in range(100):
        size = rng.uniform(*ROOM_SIZE)
        try:
            absorption, max_order = pra.inverse_sabine(rt60, size)
            break
        except ValueError:  # walls cannot absorb enough for so short an RT60 in so big a room
            continue
    else:
        raise ValueError(f"no room between {ROOM_SIZE} m has an RT60 of {rt60} s")
    room = pra.ShoeBox(size, fs=RATE, materials=pra.Material(absorption), max_order=max_order)
    source, mic = rng.uniform(WALL_MARGIN, size - WALL_MARGIN, (2, 3))
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    direct = int(round(np.linalg.norm(source - mic) / room.c * RATE)) + DIRECT
    rir = np.asarray(room.rir[0][0][direct - DIRECT : direct + int(RIR_SECONDS * RATE)])
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


@functools.cache
def pooled_room(k: int) -> np.ndarray:
    """Room k (0 <= k < ROOMS) of the process's pool: `room_impulse_response`, built once."""
    rng = np.random.default_rng((ROOM_SEED, k))
    return room_impulse_response(rng.uniform(*RT60), rng)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """x [T] played in the room of `rir` (direct path at sample DIRECT) and recorded: [T], each
    sample where x's was (the direct path's delay taken out).

    The clip's reverberant past is that of x mirrored, so its start is not drier than its end.
    """
    from scipy import signal

    past = min(len(rir), len(x) - 1)
    y = signal.oaconvolve(np.pad(x, (past, 0), mode="reflect"), rir)
    return y[past + DIRECT : past + DIRECT + len(x)]


def add_noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x [T] plus white, pink or brown noise at a random SNR_DB over the clip."""
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    exponent = rng.choice(NOISE_EXPONENTS)
    shape = np.maximum(freqs, 20.0) ** (-exponent / 2)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(len(x))) * shape, len(x))
    snr = rng.uniform(*SNR_DB)
    gain = np.sqrt(np.mean(x**2) / (np.mean(noise**2) + 1e-20) * 10 ** (-snr / 10))
    return x + gain * noise


def microphone_response(freqs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random microphone's complex response at `freqs` (Hz): a smooth EQ of up to +-EQ_DB over
    log frequency (zero phase), 0-2 resonant peaks and a 2nd-order Butterworth high-pass."""
    # A cosine series over log frequency, 50 Hz to 8 kHz: the first term is a tilt, the next
    # ones shelves and broad bumps; higher terms weaker, so the curve stays smooth.
    position = np.log(np.clip(freqs, 50.0, RATE / 2) / 50.0) / np.log(RATE / 2 / 50.0)
    terms = np.arange(1, 5)
    curve = np.cos(np.pi * terms * position[:, None]) @ (rng.standard_normal(4) / terms)
    eq_db = curve / (np.abs(curve).max() + 1e-9) * rng.uniform(1.0, EQ_DB)
    delay = np.exp(-2j * np.pi * freqs / RATE)  # z^-1 on the unit circle
    response = 10 ** (eq_db / 20) * biquad_response(high_pass(rng.uniform(*HIGH_PASS_HZ)), delay)
    for _ in range(rng.integers(0, 3)):
        f0 = np.exp(rng.uniform(*np.log(RESONANCE_HZ)))
        peak = peaking(f0, rng.uniform(*RESONANCE_DB), rng.uniform(*RESONANCE_Q))
        response *= biquad_response(peak, delay)
    return response


# Biquads from Bristow-Johnson's audio EQ cookbook, as ((b0, b1, b2), (a0, a1, a2)).


def peaking(f0: float, gain_db: float, q: float) -> tuple[tuple, tuple]:
    """A peak of `gain_db` at f0 Hz."""
    amplitude, w0 = 10 ** (gain_db / 40), 2 * np.pi * f0 / RATE
    alpha = np.sin(w0) / (2 * q)
    return (
        (1 + alpha * amplitude, -2 * np.cos(w0), 1 - alpha * amplitude),
        (1 + alpha / amplitude, -2 * np.cos(w0), 1 - alpha / amplitude),
    )


def high_pass(f0: float) -> tuple[tuple, tuple]:
    """A 2nd-order Butterworth high-pass (Q = 1 / sqrt 2) at f0 Hz."""
    w0 = 2 * np.pi * f0 / RATE
    alpha, cos = np.sin(w0) / np.sqrt(2), np.cos(w0)
    return ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2), (1 + alpha, -2 * cos, 1 - alpha)


def biquad_response(biquad: tuple[tuple, tuple], delay: np.ndarray) -> np.ndarray:
    """A biquad's complex response where z^-1 is `delay`."""
    (b0, b1, b2), (a0, a1, a2) = biquad
    return (b0 + delay * (b1 + delay * b2)) / (a0 + delay * (a1 + delay * a2))


def through_microphone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x [T] through a random `microphone_response`: [T]."""
    from scipy import fft

    n = fft.next_fast_len(len(x) + FILTER_PAD, real=True)
    response = microphone_response(np.fft.rfftfreq(n, 1 / RATE), rng)
    return np.fft.irfft(np.fft.rfft(x, n) * response, n)[: len(x)]


def recording_chain(
    x: np.ndarray,
    rng: np.random.Generator,
    room: float = ROOM,
    noise: float = NOISE,
    microphone: float = MICROPHONE,
) -> np.ndarray:
    """x (float32 [T] at 16 kHz) as a random recording chain would have recorded it: float32 [T],
    time-aligned with x and at x's peak level.

    Each stage is in the chain with its probability: a room from the pool (`pooled_room`), noise
    in it (`add_noise`), then a microphone (`through_microphone`), which colours the noise too.
    The same rng state gives the same chain.
    """
    y = np.asarray(x, dtype=np.float64)
    if rng.random() < room:
        y = reverberate(y, pooled_room(int(rng.integers(ROOMS))))
    if rng.random() < noise:
        y = add_noise(y, rng)
    if rng.random() < microphone:
        y = through_microphone(y, rng)
    # Level is `make_batch`'s to randomise; keeping the peak keeps the clip in range.
    peak = np.abs(y).max()
    return (y * (np.abs(x).max() / peak if peak > 0 else 0.0)).astype(np.float32)
