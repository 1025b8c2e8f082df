"""model.metrics on signals whose answers are known by hand."""

import numpy as np
import pytest

from model import metrics


def test_snr_known_ratio():
    ref = np.ones(1000)
    assert metrics.snr(ref, ref * 1.1) == pytest.approx(20.0)  # error 0.1 -> 100x power
    assert metrics.snr(ref, ref * 0.9) == pytest.approx(20.0)


def test_lsd_is_zero_for_identical_and_scales_with_gain():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000)
    assert metrics.lsd(x, x) == pytest.approx(0.0, abs=1e-9)
    # A gain g multiplies power by g^2: every bin differs by log10(g^2), so LSD = |log10 g^2|.
    assert metrics.lsd(x, 10 * x) == pytest.approx(2.0, abs=1e-9)
    assert metrics.lsd_hf(x, 10 * x, 4) == pytest.approx(2.0, abs=1e-9)


def test_lsd_of_silence_against_clamp():
    # Reference power 1e-8 clamp vs an estimate of exactly zero: both clamp, LSD 0.
    assert metrics.lsd(np.zeros(4096), np.zeros(4096)) == 0.0


def test_lsd_frame_count_and_centering():
    # n samples, centred frames with hop 512: 1 + n // 512 frames, 1025 bins.
    spec = metrics.log_power_spectrogram(np.ones(5000))
    assert spec.shape == (1 + 5000 // 512, 1025)


def test_lsd_hf_counts_only_the_missing_band():
    rate, n = 16000, 16000
    t = np.arange(n) / rate
    low = np.sin(2 * np.pi * 500 * t)
    high = 0.5 * np.sin(2 * np.pi * 5000 * t)
    ref = low + high
    # Removing the 5 kHz tone changes only bins above 2 kHz (the x4 low-res Nyquist)...
    assert metrics.lsd_hf(ref, low, 4) > 0.5
    # ...while the band below is untouched, so full-band LSD is smaller than LSD-HF.
    assert metrics.lsd(ref, low) < metrics.lsd_hf(ref, low, 4)
    assert metrics.hf_first_bin(4) == 257 and metrics.hf_first_bin(2) == 513


def test_mean_scores_of_a_score_some_files_lack():
    rows = [{"snr": 1.0, "visqol_audio": 3.0}, {"snr": 3.0}]
    assert metrics.mean_scores(rows) == {"snr": 2.0, "visqol_audio": 3.0}
    assert metrics.mean_scores([]) == {}


def test_periodic_hann_matches_definition():
    # A sinusoid at an exact bin centre: the periodic Hann puts power in 3 bins only.
    n_fft = metrics.N_FFT
    k = 100
    x = np.cos(2 * np.pi * k * np.arange(4 * n_fft) / n_fft)
    spec = metrics.log_power_spectrogram(x)[2]
    assert np.sum(spec > -4) == 3
    assert np.argmax(spec) == k


# ---------------------------------------------------------------- 48 kHz: the written band
FULL_BAND = 48000


def fullband_speech(seconds: float, seed: int = 0, rate: int = FULL_BAND) -> np.ndarray:
    """Speech-like audio up to the Nyquist: a gliding 140 Hz voice with every harmonic below it, a
    syllable-rate envelope and noise bursts above 4 kHz for fricatives. float32 [T]"""
    from scipy import signal

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(140 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, int(rate / 2 / 154)))
    hiss = signal.butter(4, 4000, "highpass", fs=rate, output="sos")
    bursts = signal.sosfilt(hiss, rng.standard_normal(len(t))) * (np.sin(2 * np.pi * 1.5 * t) > 0.6)
    return (0.1 * voice * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * bursts).astype(
        np.float32
    )


def lowpass(x: np.ndarray, cutoff_hz: float, rate: int = FULL_BAND) -> np.ndarray:
    from scipy import signal

    return signal.sosfiltfilt(signal.butter(8, cutoff_hz, fs=rate, output="sos"), x)


def test_visqol_audio_mode_hears_up_to_24_khz():
    x = fullband_speech(2.0)
    same = metrics.visqol_audio(x, x)
    assert same > 4.5  # audio mode's ceiling, for identical audio, is about 4.73
    # Losing only 16-24 kHz costs a point: speech mode, which stops at 8 kHz, could not hear it.
    above_16k_lost = metrics.visqol_audio(x, lowpass(x, 16000))
    assert above_16k_lost < same - 0.5
    assert metrics.visqol_audio(x, lowpass(x, 8000)) < above_16k_lost


def test_band_levels_of_a_copy_10_db_quieter_above_8_khz():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2 * FULL_BAND)
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(len(x), 1 / FULL_BAND) >= 8000] *= 10 ** (-10 / 20)
    quieter = np.fft.irfft(spectrum, len(x))
    levels = metrics.band_levels_db(x, quieter, FULL_BAND, 8000)
    assert len(levels) == 16  # 8-9, 9-10, ..., 23-24 kHz
    assert levels == pytest.approx(np.full(16, -10.0), abs=0.3)
    assert metrics.band_levels_db(x, x, FULL_BAND, 8000) == pytest.approx(np.zeros(16), abs=1e-9)
    # Only the band it is asked about: the copy is the original below 8 kHz.
    assert metrics.band_levels_db(x, quieter, FULL_BAND, 4000)[:4] == pytest.approx(
        np.zeros(4), abs=0.3
    )


def test_band_power_keeps_a_top_band_cut_short_by_the_nyquist():
    x = np.random.default_rng(0).standard_normal(44100)
    assert len(metrics.band_power(x, 44100, 8000)) == 15  # the last is 22-22.05 kHz
