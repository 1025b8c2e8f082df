"""Training objectives: pooled normalized MSE, per-patch SNR, a multi-resolution STFT loss, and for
the spectral generator log-magnitude and anti-wrapping phase losses (AP-BWE, Lu et al. 2024)."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def stft_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss of Tensor[B x 1 x T] pairs: spectral convergence + L1 of log
    magnitudes.

    The log term is what LSD measures, and it rewards energy in the band the low-res input lacks,
    which MSE alone hardly does (that band holds little of the waveform's energy).
    """
    total = y.new_zeros(())
    y, target = y.squeeze(1), target.squeeze(1)
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft, device=y.device)
        sy = torch.stft(y, n_fft, hop, window=window, return_complex=True).abs().clamp_min(1e-5)
        st = (
            torch.stft(target, n_fft, hop, window=window, return_complex=True).abs().clamp_min(1e-5)
        )
        convergence = torch.linalg.norm(st - sy) / torch.linalg.norm(st).clamp_min(1e-5)
        total = total + convergence + F.l1_loss(sy.log10(), st.log10())
    return total / len(STFT_RESOLUTIONS)


def snr_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative SNR in dB per example, averaged: exactly what the validation table reports.

    The pooled MSE lets loud patches buy gains with quiet ones (pooled SNR rose 0.7 dB while the
    mean per-patch SNR fell 0.3 dB); on a log scale every patch counts the same, so the net learns
    to add high band only where it can predict its waveform.
    """
    dims = tuple(range(1, y.dim()))
    err = (y - target).pow(2).sum(dims)
    power = target.pow(2).sum(dims)
    return (10 * torch.log10((err + 1e-7) / (power + 1e-7))).mean()


def normalized_mse(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error over target power, pooled over the batch: the quantity SNR measures.

    Pooled rather than per example, so a near-silent patch cannot dominate the gradient.
    """
    return (y - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-6)


def log_magnitude_loss(spec: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of natural-log magnitudes of two complex STFTs."""
    return F.l1_loss(spec.abs().clamp_min(1e-5).log(), target.abs().clamp_min(1e-5).log())


def anti_wrap(x: torch.Tensor) -> torch.Tensor:
    """|x - 2 pi round(x / 2 pi)|: the distance of a phase difference from the nearest 2 pi k."""
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


def phase_loss(spec: torch.Tensor, target: torch.Tensor, first_bin: int) -> torch.Tensor:
    """Anti-wrapping instantaneous phase, group delay and instantaneous angular frequency losses
    over bins >= `first_bin` of complex STFTs [B x bins x F], each weighted by the target's
    magnitude (the phase of a near-silent bin is noise, and nobody hears it)."""
    spec, target = spec[:, first_bin:], target[:, first_bin:]
    weight = target.abs()
    weight = weight / weight.mean(dim=(1, 2), keepdim=True).clamp_min(1e-5)
    error = torch.angle(spec) - torch.angle(target)
    instantaneous = (weight * anti_wrap(error)).mean()
    group_delay = (weight[:, 1:] * anti_wrap(torch.diff(error, dim=1))).mean()
    angular_frequency = (weight[..., 1:] * anti_wrap(torch.diff(error, dim=2))).mean()
    return instantaneous + group_delay + angular_frequency


@functools.cache
def _mel_filters(n_fft: int, rate: int, bands: int, device: str) -> torch.Tensor:
    """Triangular mel filters [bands x n_fft / 2 + 1] (Slaney), as librosa makes them, less any
    that no STFT bin falls in: a short STFT at 48 kHz cannot resolve the lowest mel bands, and an
    empty band would only add a band that is always right to the mean."""
    import warnings

    import librosa

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Empty filters detected")
        filters = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=bands, fmin=0.0, fmax=rate / 2)
    filters = filters[filters.sum(axis=1) > 0]
    return torch.from_numpy(filters).float().to(device)


def mel_loss(
    spec: torch.Tensor,
    target: torch.Tensor,
    rate: int = 16000,
    bands: int = 64,
    over: float = 1.0,
) -> torch.Tensor:
    """L1 of log mel-band energies of two complex STFTs [B x bins x F]; a band and frame with
    more energy than the target's costs `over` times as much as one with as much too little.

    Per-bin log magnitudes let a smooth spectrum stand in for a peaky one, bin by bin; what
    listeners (and PESQ, ViSQOL) weigh is the energy in each band, frame by frame: the spectral
    envelope. On the first spectral generator the band energies above 2 kHz were off by about
    10 dB a frame while its LSD was already 2.8 x better than sinc's (experiments/LOG.md).

    How much energy a frame has up there is largely a matter of the voice and the recording
    chain, which the band below does not tell (a linear predictor's error on unseen voices is
    6-11 dB, with per-voice biases up to 11 dB), and a band that is there but wrong costs the
    listener metrics more than one that is missing. With `over` > 1 the net learns a lower
    quantile, 1 / (1 + over), of the energy it cannot pin down instead of the median.
    """
    n_fft = 2 * (spec.shape[1] - 1)
    filters = _mel_filters(n_fft, rate, bands, str(spec.device))
    energy = lambda z: torch.einsum("mk,bkf->bmf", filters, z.abs().pow(2))  # noqa: E731
    error = energy(spec).clamp_min(1e-10).log() - energy(target).clamp_min(1e-10).log()
    return torch.where(error > 0, over * error, -error).mean()


def frame_level_loss(spec: torch.Tensor, target: torch.Tensor, first_bin: int) -> torch.Tensor:
    """L1 of the natural-log energy, per frame, of the whole band from `first_bin` up of two
    complex STFTs [B x bins x F]: the written band's level from frame to frame.

    Of a generator's envelope error at x4 this part (the whole band too loud or too quiet in a
    frame, about its own mean) is what DistillMOS hears most; the mel term, asymmetric and per
    band, leaves it loose (experiments/LOG.md, issue 24, fourth session).
    """
    energy = lambda z: z[:, first_bin:].abs().pow(2).sum(1).clamp_min(1e-10).log()  # noqa: E731
    return F.l1_loss(energy(spec), energy(target))


def band_limited(x: torch.Tensor, cutoff_hz: torch.Tensor, rate: int) -> torch.Tensor:
    """Tensor[B x 1 x T] with every DFT bin of the whole patch above its row's `cutoff_hz`
    (Tensor[B]) set to zero: an exact projection, so a loss on the band-limited output passes no
    gradient to what the net writes above the cutoff."""
    spectrum = torch.fft.rfft(x, dim=-1)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / rate).to(x.device)
    keep = freqs[None, None, :] <= cutoff_hz.to(x.device, x.dtype)[:, None, None]
    return torch.fft.irfft(spectrum * keep, n=x.shape[-1], dim=-1)


def spectral_objective(
    stft_weight: float,
    phase_weight: float = 0.3,
    mel_weight: float = 0.0,
    mel_over: float = 1.0,
    rate: int = 16000,
    frame_weight: float = 0.0,
):
    """The spectral generator's objective (y, target, net, scale) -> scalar: log magnitude and
    phase of the output's own STFT against the target's, plus `mel_weight` x the log mel-band
    energies (too much energy `mel_over` times dearer than too little; bands on the mel scale of
    audio at `rate`), `frame_weight` x the written band's log energy per frame and
    `stft_weight` x multi-resolution STFT.
    """

    def objective(y: torch.Tensor, target: torch.Tensor, net, scale: int) -> torch.Tensor:
        spec, truth = net.stft(y[:, 0]), net.stft(target[:, 0])
        first = int(net.crossover * net.nyquist_bin(scale))
        total = (
            log_magnitude_loss(spec, truth)
            + phase_weight * phase_loss(spec, truth, first)
            + stft_weight * stft_loss(y, target)
        )
        if mel_weight:
            total = total + mel_weight * mel_loss(spec, truth, rate, over=mel_over)
        if frame_weight:
            total = total + frame_weight * frame_level_loss(spec, truth, net.nyquist_bin(scale))
        return total

    return objective


# `train --loss`: the waveform term of the objective (None: the spectral generator's own), and
# how the checkpoint header names it.
LOSSES = {
    "mse": (normalized_mse, "normalized MSE"),
    "snr": (snr_loss, "negative per-patch SNR (dB)"),
    "spectral": (None, "log magnitude + 0.3 x anti-wrapping phase (IP, GD, IAF)"),
}


def objective(
    loss: str,
    stft_weight: float,
    mel_weight: float = 0.0,
    mel_over: float = 1.0,
    rate: int = 16000,
    frame_weight: float = 0.0,
):
    """The training objective (y, target, net, scale) -> scalar, `y` the net's output over the
    target's span at `rate`: the `loss` term plus `stft_weight` x multi-resolution STFT (and, for
    the spectral generator, `mel_weight` x log mel-band energies and `frame_weight` x the
    written band's log energy per frame)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    if loss == "spectral":
        return spectral_objective(
            stft_weight,
            mel_weight=mel_weight,
            mel_over=mel_over,
            rate=rate,
            frame_weight=frame_weight,
        )
    fit = LOSSES[loss][0]

    def waveform(y: torch.Tensor, target: torch.Tensor, net, scale: int) -> torch.Tensor:
        return fit(y, target) + stft_weight * stft_loss(y, target)

    return waveform


def describe(
    loss: str,
    stft_weight: float,
    mel_weight: float = 0.0,
    mel_over: float = 1.0,
    frame_weight: float = 0.0,
) -> str:
    """The objective in words, for the checkpoint's training record."""
    over = f" (too much {mel_over} x dearer)" if mel_over != 1.0 else ""
    mel = f" + {mel_weight} x log mel-band energies{over}" if mel_weight else ""
    frame = f" + {frame_weight} x written band's log energy per frame" if frame_weight else ""
    return f"{LOSSES[loss][1]}{mel}{frame} + {stft_weight} x multi-resolution STFT"
