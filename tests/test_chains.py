"""Recording chains: rooms that reverberate as long as their RT60 says and keep the clip aligned,
noise at the asked SNR, microphones, determinism, and chained training batches."""

from pathlib import Path

import numpy as np
import pytest

from model import audio, chains
from model.batches import crop, make_batch

SPEECH_WAV = Path(__file__).parent / "data" / "speech_16k.wav"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """A 10240-sample window of speech (patch plus context), float32."""
    x, rate = audio.load(SPEECH_WAV)
    assert rate == chains.RATE
    return np.asarray(x, np.float32).reshape(-1)[20000:30240]


def _decay_seconds(rir: np.ndarray, db: float = 20.0) -> float:
    """How long a click in the room takes to decay by `db` (Schroeder's backward integral)."""
    click = np.zeros(20000)
    click[9000] = 1.0  # past the response's length, so the mirrored past adds nothing
    tail = chains.reverberate(click, rir)[9000:]
    remaining = np.cumsum(tail[::-1] ** 2)[::-1]
    return np.argmax(remaining < remaining[0] * 10 ** (-db / 10)) / chains.RATE


@pytest.fixture(scope="module")
def long_room() -> np.ndarray:
    return chains.room_impulse_response(0.5, np.random.default_rng(1))


def test_a_longer_rt60_leaves_a_longer_tail(long_room):
    short = chains.room_impulse_response(0.15, np.random.default_rng(1))
    # An exponential decay falls 20 dB in a third of its RT60.
    assert 0.25 < 3 * _decay_seconds(long_room) < 1.0
    assert _decay_seconds(long_room) > 3 * _decay_seconds(short)


def test_a_clip_starts_as_reverberant_as_it_ends(long_room):
    # The room has been ringing with the speech before the window: without that past, a patch's
    # first samples would hold the direct path and early reflections alone.
    x = np.random.default_rng(0).standard_normal(10240)
    y = chains.reverberate(x, long_room)
    start, end = np.mean(y[:200] ** 2), np.mean(y[-2000:] ** 2)
    assert 0.8 < start / end < 1.25  # 0.59 without the past


@pytest.mark.parametrize("seed", range(6))
def test_the_room_keeps_the_click_where_it_was(seed):
    # The direct path must land on the click's own sample (the patch still holds its speech) and
    # be the first arrival; a strong reflection may peak higher, but never twice as high.
    rng = np.random.default_rng(seed)
    rir = chains.room_impulse_response(rng.uniform(0.2, 0.4), rng)
    click = np.zeros(20000)
    click[9000] = 1.0  # past the response's length, so the mirrored past adds nothing
    y = chains.reverberate(click, rir)
    assert len(y) == len(click)
    first = np.argmax(np.abs(y) >= 0.5 * np.abs(y).max())
    assert abs(first - 9000) <= 1
    assert np.abs(y[: 9000 - chains.DIRECT]).max() < 1e-6  # FFT rounding


def test_noise_is_added_at_10_to_40_db_snr(speech):
    rng = np.random.default_rng(0)
    x = speech.astype(np.float64)
    snrs = []
    for _ in range(60):
        noise = chains.add_noise(x, rng) - x
        snrs.append(10 * np.log10(np.sum(x**2) / np.sum(noise**2)))
    assert 10 - 1e-6 <= min(snrs) < 15 and 35 < max(snrs) <= 40 + 1e-6


def test_microphones_cut_the_rumble_and_stay_within_their_peaks():
    freqs = np.fft.rfftfreq(4096, 1 / chains.RATE)
    rng = np.random.default_rng(0)
    for _ in range(50):
        db = 20 * np.log10(np.abs(chains.microphone_response(freqs, rng)) + 1e-12)
        assert db[np.argmin(np.abs(freqs - 20))] < -9  # 50 Hz high-pass, EQ at most +6 dB
        assert db.max() < chains.EQ_DB + 2 * chains.RESONANCE_DB[1] + 0.1


def test_chain_keeps_length_level_and_is_deterministic(speech):
    # A new process builds its room pool as it goes: the chain must depend on its rng alone, not
    # on which rooms are built already.
    chains.pooled_room.cache_clear()
    out = chains.recording_chain(speech, np.random.default_rng(3), room=1, noise=1, microphone=1)
    assert out.shape == speech.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.isclose(np.abs(out).max(), np.abs(speech).max())
    assert not np.allclose(out, speech, atol=1e-3)
    again = chains.recording_chain(speech, np.random.default_rng(3), room=1, noise=1, microphone=1)
    assert np.array_equal(out, again)
    other = chains.recording_chain(speech, np.random.default_rng(4), room=1, noise=1, microphone=1)
    assert not np.allclose(out, other, atol=1e-3)


def test_chained_batches_make_input_and_target_from_the_same_recording(speech):
    stream = np.tile(speech, 6)
    patches = np.stack([stream[s : s + 4096] for s in range(0, len(stream) - 4096, 2048)])
    plain = make_batch(patches, 4, np.random.default_rng(0), 8, augment=False, stride=2048)
    x, hr = make_batch(patches, 4, np.random.default_rng(0), 8, False, stride=2048, chain=1.0)
    assert x.shape == plain[0].shape and hr.shape == plain[1].shape
    changed = [not np.allclose(a, b, atol=1e-4) for a, b in zip(hr, plain[1], strict=True)]
    assert sum(changed) >= 6
    # Even rows carry the paper's low-pass: away from the edges, the input is the interpolated
    # low band of the chained target, not of the clean patch.
    for row in range(0, 8, 2):
        target = hr[row, 0].numpy()
        made = audio.spline(audio.lowres(target, 4, "cheby8"), 4)
        middle = slice(512, -512)
        error = np.abs(crop(x[row, 0], 4096).numpy()[middle] - made[middle]).max()
        assert error < 1e-3 * np.abs(target).max()
