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


def test_periodic_hann_matches_definition():
    # A sinusoid at an exact bin centre: the periodic Hann puts power in 3 bins only.
    n_fft = metrics.N_FFT
    k = 100
    x = np.cos(2 * np.pi * k * np.arange(4 * n_fft) / n_fft)
    spec = metrics.log_power_spectrogram(x)[2]
    assert np.sum(spec > -4) == 3
    assert np.argmax(spec) == k
