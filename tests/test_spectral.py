"""model.spectral, the generator's losses and discriminators, and the degradations it trains on."""

import math

import numpy as np
import pytest
import torch

from model import audio, checkpoint, losses
from model.discriminators import Adversary
from model.inference import Upsampler
from model.spectral import SpectralBWE

SMALL = dict(n_fft=256, hop=64, channels=16, blocks=2, kernel=3)


def _speech(seconds: float = 2.0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * 130 * k * t) / k for k in range(1, 50) if 130 * k < rate / 2)
    return (
        0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) + 0.003 * rng.standard_normal(len(t))
    ).astype(np.float32)


def _trained_looking(net: SpectralBWE) -> SpectralBWE:
    """Random heads, so the test sees the net write and rescale, not its quiet starting point."""
    torch.manual_seed(1)
    torch.nn.init.normal_(net.magnitude.weight, std=0.5)
    torch.nn.init.normal_(net.phase.weight, std=0.5)
    return net.eval()


@pytest.mark.parametrize("scale", [2, 4])
def test_below_the_crossover_the_output_is_the_input(scale):
    net = _trained_looking(SpectralBWE(scale=scale, **SMALL))
    x = torch.from_numpy(_speech(0.5))[None, None]
    with torch.no_grad():
        given, made = net.stft(x[:, 0]), net.spectrum(x)
    kept = int(net.crossover * net.nyquist_bin(scale))
    # The input's STFT, less the cubic spline's known droop: nothing the net learned.
    droop = net.spline_response(scale)[:kept, None]
    assert torch.allclose(made[:, :kept], given[:, :kept] / droop)
    # Above it the net acts: rescaled input up to the Nyquist, its own content above.
    assert not torch.allclose(made[:, kept:].abs(), given[:, kept:].abs())


@pytest.mark.parametrize("frequency", [300.0, 800.0, 1200.0, 1350.0])
def test_a_tone_below_the_crossover_comes_out_at_its_true_level(frequency):
    """Spline interpolation loses up to 1 dB near the crossover; the output does not."""
    net = _trained_looking(SpectralBWE(scale=4, **SMALL))
    t = np.arange(8000) / 4000
    lowres = (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    interpolated = audio.spline(lowres, 4)
    with torch.no_grad():
        y = net(torch.from_numpy(interpolated)[None, None], 4)[0, 0].numpy()
    truth = 0.5 * np.sin(2 * np.pi * frequency * np.arange(len(y)) / 16000)
    middle = slice(2000, -2000)
    gain = np.dot(y[middle], truth[middle]) / np.dot(truth[middle], truth[middle])
    assert abs(20 * np.log10(gain)) < 0.05


@pytest.mark.parametrize("length", [1000, 4097, 8192])
def test_any_length_in_is_the_same_length_out(length):
    net = _trained_looking(SpectralBWE(**SMALL))
    with torch.no_grad():
        assert net(torch.zeros(2, 1, length), 2).shape == (2, 1, length)


def test_an_untrained_net_is_the_input_plus_near_silence():
    # Its band above the Nyquist starts at e^-7 per bin, about spline's own images there.
    net = SpectralBWE(**SMALL).eval()
    x = torch.from_numpy(audio.spline(audio.lowres(_speech(0.5), 4), 4))[None, None]
    with torch.no_grad():
        y = net(x)
    inner = slice(SMALL["n_fft"], -SMALL["n_fft"])
    error = torch.abs(y - x)[..., inner].max().item()
    assert error < 0.05 * torch.abs(x).max().item()


def test_chunked_inference_matches_the_whole_signal():
    net = _trained_looking(SpectralBWE(scale=4, **SMALL))
    up = Upsampler(net, name="t", input_rate=4000, scale=4, device="cpu", chunk=8192)
    lr = audio.lowres(_speech(3.0), 4)
    chunked = up(lr[None])[0]
    with torch.no_grad():
        whole = net(torch.from_numpy(audio.spline(lr, 4))[None, None])[0, 0].numpy()
    edge = 2048
    assert np.max(np.abs(chunked[edge:-edge] - whole[edge:-edge])) < 2e-3 * np.abs(whole).max()


def test_checkpoint_rebuilds_the_multi_rate_net(tmp_path):
    net = _trained_looking(SpectralBWE(scale=2, scales=(2, 4), **SMALL))
    args = dict(scale=2, scales=[2, 4], **SMALL)
    checkpoint.save(tmp_path / "s.safetensors", net, init_args=args, input_rate=8000, scale=2)
    loaded, meta = checkpoint.load(tmp_path / "s.safetensors")
    x = torch.from_numpy(_speech(0.5))[None, None]
    with torch.no_grad():
        assert torch.allclose(loaded(x), net(x), atol=1e-5)
        assert torch.allclose(loaded(x, 4), net(x, 4), atol=1e-5)
    assert meta["class"] == "SpectralBWE" and meta["args"]["scales"] == [2, 4]


def test_one_multi_rate_checkpoint_upsamples_at_each_scale_it_learned(tmp_path):
    net = _trained_looking(SpectralBWE(scale=4, scales=(2, 4), **SMALL))
    args = dict(scale=4, scales=[2, 4], **SMALL)
    path = tmp_path / "s.safetensors"
    checkpoint.save(path, net, init_args=args, input_rate=4000, scale=4)
    x8k = _speech(0.5, rate=8000)[None]
    x2 = Upsampler.load(path, scale=2, device="cpu")
    assert (x2.input_rate, x2.output_rate) == (8000, 16000)
    y = x2(x8k)
    with torch.no_grad():
        expected = net(torch.from_numpy(audio.spline(x8k, 2))[None], 2)[0].numpy()
    # The ends differ: chunks are reflect-padded there, the whole-file STFT is not.
    middle = slice(1024, -1024)
    assert y.shape == (1, 8000)
    assert np.max(np.abs(y[0, middle] - expected[0, middle])) < 2e-3 * np.abs(expected).max()
    with pytest.raises(LookupError, match="not by 3"):
        Upsampler.load(path, scale=3, device="cpu")


def test_a_full_band_checkpoint_keeps_its_own_output_rate_at_another_scale(tmp_path):
    """A 16 -> 48 kHz net that also learned x2 takes 24 kHz input there, still writing 48 kHz."""
    path = tmp_path / "fb.safetensors"
    args = dict(scale=3, scales=[2, 3], **SMALL)
    checkpoint.save(path, SpectralBWE(**args), init_args=args, input_rate=16000, scale=3)
    up = Upsampler.load(path, scale=2, device="cpu")
    assert (up.input_rate, up.output_rate) == (24000, 48000)
    assert up(np.zeros((1, 2400), np.float32)).shape == (1, 4800)


def test_anti_wrap_is_the_distance_to_the_nearest_whole_turn():
    x = torch.tensor([0.0, 2 * math.pi, -2 * math.pi + 0.1, math.pi - 0.1, 3 * math.pi])
    expected = torch.tensor([0.0, 0.0, 0.1, math.pi - 0.1, math.pi])
    assert torch.allclose(losses.anti_wrap(x), expected, atol=1e-5)


def test_phase_loss_is_zero_for_the_target_and_grows_with_phase_error():
    net = SpectralBWE(**SMALL)
    spec = net.stft(torch.from_numpy(_speech(0.5))[None])
    assert losses.phase_loss(spec, spec, 10).item() == pytest.approx(0.0, abs=1e-5)
    # A whole turn is no error at all; half a turn is the most there is.
    turned = spec * torch.polar(torch.ones(()), torch.tensor(2 * math.pi))
    assert losses.phase_loss(turned, spec, 10).item() == pytest.approx(0.0, abs=1e-4)
    shifted = spec * torch.polar(torch.ones(()), torch.tensor(math.pi))
    assert losses.phase_loss(shifted, spec, 10).item() > 1.0


def test_adversary_updates_its_discriminator_and_gives_the_generator_a_gradient():
    adversary = Adversary("cpu", channels=4)
    before = [p.detach().clone() for p in adversary.discriminator.parameters()]
    target = torch.from_numpy(_speech(0.5))[None, None]
    y = (0.5 * target).requires_grad_()
    adversary.step(y, target, 4)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before, adversary.discriminator.parameters(), strict=True)
    )
    adversary.generator_loss(y, target, 4).backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def _band_energy(x: np.ndarray, rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_telephone_keeps_the_voice_band_only():
    x = _speech(2.0)
    y = audio.lowres(x, 2, "telephone")
    assert len(y) == len(x) // 2
    assert _band_energy(y, 8000, 0, 200) < 1e-3 * _band_energy(y, 8000, 400, 3000)


def test_mp3_is_aligned_and_as_long_as_the_clean_low_res():
    x = _speech(2.0)
    for scale in (2, 4):
        clean, coded = audio.lowres(x, scale, "cheby8"), audio.lowres(x, scale, "mp3")
        assert coded.shape == clean.shape
        assert np.corrcoef(clean, coded)[0, 1] > 0.9  # a delay would decorrelate the harmonics


def test_the_mel_loss_weighs_band_energies():
    net = SpectralBWE(**SMALL)
    x = torch.from_numpy(_speech(0.5))[None]
    spec = net.stft(x)
    assert float(losses.mel_loss(spec, spec)) == 0.0
    # Twice the amplitude is four times the energy in every band: ln 4 per band and frame.
    assert float(losses.mel_loss(2 * spec, spec)) == pytest.approx(math.log(4), rel=1e-4)


def test_a_short_stft_at_48_khz_has_no_empty_mel_band(recwarn):
    # 129 bins of 187.5 Hz cannot resolve the lowest of 64 mel bands up to 24 kHz: those are
    # left out, not averaged in as bands that are always right.
    spec = torch.stft(
        torch.from_numpy(_speech(0.5))[None], 256, 64, window=torch.hann_window(256),
        return_complex=True,
    )  # fmt: skip
    loss = losses.mel_loss(2 * spec, spec, rate=48000)
    assert float(loss) == pytest.approx(math.log(4), rel=1e-4)
    assert not [w for w in recwarn if "Empty filters" in str(w.message)]


def test_the_frame_level_loss_weighs_only_the_written_band_per_frame():
    net = SpectralBWE(**SMALL)
    spec = net.stft(torch.from_numpy(_speech(0.5))[None])
    first = net.nyquist_bin(4)
    louder = spec.clone()
    louder[:, first:] *= 2
    # Twice the amplitude above `first` is ln 4 in every frame's energy there...
    assert float(losses.frame_level_loss(louder, spec, first)) == pytest.approx(
        math.log(4), rel=1e-4
    )
    # ... and what the net keeps below it, or how energy moves within the band, costs nothing.
    changed_below = spec.clone()
    changed_below[:, :first] *= 3
    assert float(losses.frame_level_loss(changed_below, spec, first)) == pytest.approx(
        0.0, abs=1e-6
    )
    swapped = spec.clone()
    swapped[:, first:] = spec[:, first:].flip(1)
    assert float(losses.frame_level_loss(swapped, spec, first)) == pytest.approx(0.0, abs=1e-5)
    # In the objective it adds its weight times that.
    x = torch.from_numpy(_speech(0.5))[None, None]
    y = net.istft(louder, x.shape[-1])
    base = losses.objective("spectral", 0.0)(y, x, net, 4)
    weighted = losses.objective("spectral", 0.0, frame_weight=0.5)(y, x, net, 4)
    assert float(weighted - base) > 0.5 * 0.5 * math.log(4)


def test_too_much_band_energy_costs_mel_over_times_too_little():
    net = SpectralBWE(**SMALL)
    spec = net.stft(torch.from_numpy(_speech(0.5))[None])
    loud = float(losses.mel_loss(2 * spec, spec, over=3.0))
    quiet = float(losses.mel_loss(spec / 2, spec, over=3.0))
    assert loud == pytest.approx(3 * math.log(4), rel=1e-4)
    assert quiet == pytest.approx(math.log(4), rel=1e-4)
