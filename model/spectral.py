"""SpectralBWE: a time-frequency generator that keeps the input's band and writes the band above it.

After AP-BWE (Lu et al. 2024: magnitude and phase streams of ConvNeXt blocks on the STFT) and
Vocos (Siuzdak 2023: ConvNeXt blocks on frames, an iSTFT head), sized for a 2-core CPU: one stream
of `blocks` ConvNeXt blocks over the frames of the interpolated input, a magnitude head and a
phase head (a complex pair whose angle is the phase, so no wrapped target is ever regressed).

Below `crossover` x the input's Nyquist the output is the input's STFT, with only the cubic
spline's known droop undone (a band-limited interpolation of the input); from there to
the Nyquist (where the anti-alias filter attenuates) the net rescales the input's magnitudes and
keeps their phase; above the Nyquist it writes magnitude and phase. The iSTFT makes the waveform.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# The magnitude head's starting log magnitude above the Nyquist: e^-7, about -60 dB re a bin of a
# full-scale tone, so an untrained net adds near silence.
QUIET = -7.0


class ConvNeXtBlock(nn.Module):
    """Depthwise conv over frames, LayerNorm, pointwise MLP (x `expand`), layer scale, residual.

    Tensor[B x C x F] -> Tensor[B x C x F].
    """

    def __init__(self, channels: int, kernel: int = 7, expand: int = 3):
        super().__init__()
        self.depthwise = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.up = nn.Linear(channels, expand * channels)
        self.down = nn.Linear(expand * channels, channels)
        # Small layer scale: each block starts near the identity, so deep stacks train stably.
        self.gamma = nn.Parameter(torch.full((channels,), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.depthwise(x).transpose(1, 2))
        h = self.gamma * self.down(F.gelu(self.up(h)))
        return x + h.transpose(1, 2)


class SpectralBWE(nn.Module):
    """Interpolated low-res Tensor[B x 1 x T] -> high-res Tensor[B x 1 x T] through the STFT.

    `scale` is the default upsampling factor (the input's Nyquist is rate / 2 / scale); `forward`
    takes another one, so one set of weights serves several input rates (`scales` lists those it
    was trained for; the input features cover the widest input band among them).
    """

    multi_rate = True

    def __init__(
        self,
        scale: int = 4,
        scales: tuple[int, ...] = (2, 4),
        n_fft: int = 512,
        hop: int = 128,
        channels: int = 128,
        blocks: int = 6,
        kernel: int = 7,
        crossover: float = 0.75,
        written_gain_db: float = 0.0,
    ):
        super().__init__()
        self.scale, self.n_fft, self.hop, self.crossover = scale, n_fft, hop, crossover
        # One level for the written band, set when a net is shipped for one scale (`ship
        # --written-gain-db`) and chosen there by the listener metrics on the validation voices:
        # the envelope up there is uncertain by 6-11 dB a frame on unseen voices, and a band
        # that is too loud costs WB-PESQ more than one that is too quiet (experiments/LOG.md).
        self.written_gain = 10 ** (written_gain_db / 20)
        self.bins = n_fft // 2 + 1
        # Input features: log magnitude, cos and sin of the phase of the bins up to the widest
        # input's Nyquist, plus a one-hot of the scale so the net knows which bins are real.
        self.scales = tuple(sorted(scales))
        self.in_bins = self.nyquist_bin(min(self.scales)) + 1
        self.embed = nn.Conv1d(3 * self.in_bins + len(self.scales), channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(channels, kernel) for _ in range(blocks)])
        self.norm = nn.LayerNorm(channels)
        self.magnitude = nn.Linear(channels, self.bins)  # log gain (transition) or log magnitude
        self.phase = nn.Linear(channels, 2 * self.bins)  # a complex pair per bin; its angle
        nn.init.zeros_(self.magnitude.weight)
        nn.init.constant_(self.magnitude.bias, QUIET)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def context(self) -> int:
        """Samples on each side that one output sample depends on: the embedding's and each
        block's reach in frames, plus half a window."""
        frames = 1 + len(self.blocks) * (self.blocks[0].depthwise.kernel_size[0] // 2)
        return frames * self.hop + self.n_fft // 2

    def nyquist_bin(self, scale: int) -> int:
        """The STFT bin of the input's Nyquist, rate / 2 / scale."""
        return (self.bins - 1) // scale

    def spline_response(self, scale: int) -> torch.Tensor:
        """|H| per STFT bin of cubic-spline interpolation by `scale` (the cardinal cubic spline:
        sinc^4(f / f_lr) x 3 / (2 + cos(2 pi f / f_lr)), f_lr the low-res rate), floored at 0.1."""
        ratio = torch.arange(self.bins, device=self.window.device) * scale / self.n_fft
        response = torch.sinc(ratio) ** 4 * 3 / (2 + torch.cos(2 * torch.pi * ratio))
        return response.clamp_min(0.1)

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """Tensor[B x T] -> complex Tensor[B x bins x T / hop + 1] (centred, reflect padding)."""
        return torch.stft(
            x, self.n_fft, self.hop, window=self.window, center=True, return_complex=True
        )

    def spectrum(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        """The output's complex STFT for an interpolated input Tensor[B x 1 x T]."""
        scale = scale or self.scale
        spec = self.stft(x[:, 0])
        low = spec[:, : self.in_bins]
        magnitude = low.abs().clamp_min(1e-5)
        one_hot = torch.zeros(len(self.scales), device=x.device, dtype=x.real.dtype)
        one_hot[self.scales.index(scale)] = 1.0
        features = torch.cat(
            [
                magnitude.log(),
                low.real / magnitude,
                low.imag / magnitude,
                one_hot[None, :, None].expand(x.shape[0], -1, spec.shape[-1]),
            ],
            dim=1,
        )
        h = self.norm(self.blocks(self.embed(features)).transpose(1, 2))
        log_magnitude = self.magnitude(h).transpose(1, 2)  # [B x bins x F]
        pair = self.phase(h).transpose(1, 2)
        real, imag = pair[:, : self.bins], pair[:, self.bins :]
        written = (
            self.written_gain
            * torch.exp(log_magnitude.clamp(max=5.0))
            * torch.polar(torch.ones_like(real), torch.atan2(imag, real + 1e-9))
        )
        nyquist = self.nyquist_bin(scale)
        kept = int(self.crossover * nyquist)
        bins = torch.arange(self.bins, device=x.device)[None, :, None]
        # The kept band is the input as a band-limited interpolation would give it: undo the
        # cubic spline's droop there (-1.1 dB at the crossover), a fixed gain per bin.
        spec = torch.where(bins < kept, spec / self.spline_response(scale)[:, None], spec)
        # In the transition band the head's output, less its starting bias, is a log gain (0 at
        # first: the input as it is), limited to +-3 (x 20) so a bad step cannot blow it up.
        rescaled = spec * torch.exp((log_magnitude - QUIET).clamp(-3.0, 3.0))
        return torch.where(bins < kept, spec, torch.where(bins <= nyquist, rescaled, written))

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Complex Tensor[B x bins x F] -> Tensor[B x 1 x length]."""
        y = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=length)
        return y[:, None]

    def forward(self, x: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        return self.istft(self.spectrum(x, scale), x.shape[-1])
