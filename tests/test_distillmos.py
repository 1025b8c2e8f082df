"""DistillMOS as `make install` installs it (no torchaudio): it loads, and hears what is lost."""

import sys

import numpy as np
import pytest

from model import audio, metrics


@pytest.fixture(scope="module")
def speech(speech_wav):
    x, rate = audio.load(speech_wav)
    assert rate == metrics.PERCEPTUAL_RATE
    return x[0]


def test_speech_scores_above_a_4_khz_copy_and_a_noisy_copy(speech):
    original = metrics.distillmos(speech)
    narrow = audio.sinc(audio.lowres(speech, 4), 4)  # nothing above 2 kHz
    noise = np.random.default_rng(0).standard_normal(speech.size).astype(np.float32)
    noisy = speech + noise * np.sqrt(np.mean(speech**2) / np.mean(noise**2))  # 0 dB SNR
    assert 1 <= original <= 5
    assert metrics.distillmos(narrow) < original - 0.5
    assert metrics.distillmos(noisy) < original - 0.3


def test_model_is_loaded_once_in_eval_mode_and_torchaudio_is_not_left_behind(speech):
    metrics.distillmos(speech[: metrics.PERCEPTUAL_RATE])
    model = metrics._distillmos_model()
    assert model is metrics._distillmos_model() and not model.training
    # The empty stand-in that lets distillmos import is gone again: no one else gets it.
    assert "torchaudio" not in sys.modules


def test_other_rates_are_resampled_to_16_khz(speech):
    at_32k = audio.resample(speech, metrics.PERCEPTUAL_RATE, 32000)
    assert metrics.distillmos(at_32k, 32000) == pytest.approx(metrics.distillmos(speech), abs=0.15)
