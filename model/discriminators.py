"""Light multi-resolution spectrogram discriminators and the adversarial (least squares) and
feature-matching losses that train a generator against them.

After UnivNet's multi-resolution spectrogram discriminator (Jang et al. 2021), cut down for a CPU:
few channels, and only the band from `low` x the input's Nyquist up, where the generator writes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RESOLUTIONS = ((256, 64), (512, 128), (1024, 256))


class SpectrogramDiscriminator(nn.Module):
    """2-D convs over one resolution's log magnitudes: Tensor[B x 1 x T] -> (scores, features).

    Only bins from `first_fraction` x the Nyquist up are seen; strides shrink frequency, not time.
    """

    def __init__(self, n_fft: int, hop: int, channels: int = 8, layers: int = 4):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [nn.Conv2d(1, channels, (7, 5), padding=(3, 2))]
        convs += [
            nn.Conv2d(channels, channels, (5, 3), stride=(2, 1), padding=(2, 1))
            for _ in range(layers - 1)
        ]
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, y: torch.Tensor, first_fraction: float) -> tuple[torch.Tensor, list]:
        spec = torch.stft(y[:, 0], self.n_fft, self.hop, window=self.window, return_complex=True)
        first = int(first_fraction * (spec.shape[1] - 1))
        h = spec[:, first:].abs().clamp_min(1e-5).log()[:, None]
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)
        return self.out(h), features


class MultiResolutionDiscriminator(nn.Module):
    """One SpectrogramDiscriminator per (n_fft, hop) in RESOLUTIONS."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.discriminators = nn.ModuleList(
            SpectrogramDiscriminator(n_fft, hop, channels) for n_fft, hop in RESOLUTIONS
        )

    def forward(self, y: torch.Tensor, first_fraction: float):
        return [d(y, first_fraction) for d in self.discriminators]


class Adversary:
    """The discriminator, its optimizer and both sides' losses (LSGAN + feature matching).

    `first_fraction(scale)` is where, as a fraction of the output Nyquist, the judged band starts.
    """

    def __init__(self, device, lr: float = 2e-4, channels: int = 8, feature_weight: float = 2.0):
        self.discriminator = MultiResolutionDiscriminator(channels).to(device)
        self.optimizer = torch.optim.AdamW(
            self.discriminator.parameters(), lr=lr, betas=(0.8, 0.99)
        )
        self.feature_weight = feature_weight

    @staticmethod
    def first_fraction(scale: int, crossover: float = 0.75) -> float:
        return crossover / scale

    def step(self, y: torch.Tensor, target: torch.Tensor, scale: int) -> float:
        """One discriminator update on generated `y` (detached) and real `target`."""
        first = self.first_fraction(scale)
        loss = y.new_zeros(())
        for (real, _), (fake, _) in zip(
            self.discriminator(target, first), self.discriminator(y.detach(), first), strict=True
        ):
            loss = loss + (real - 1).pow(2).mean() + fake.pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def generator_loss(self, y: torch.Tensor, target: torch.Tensor, scale: int) -> torch.Tensor:
        """Least-squares adversarial loss plus feature matching for the generator's output `y`."""
        first = self.first_fraction(scale)
        with torch.no_grad():
            real_features = [features for _, features in self.discriminator(target, first)]
        loss = y.new_zeros(())
        for (fake, features), reals in zip(
            self.discriminator(y, first), real_features, strict=True
        ):
            loss = loss + (fake - 1).pow(2).mean()
            matching = sum(F.l1_loss(f, r) for f, r in zip(features, reals, strict=True))
            loss = loss + self.feature_weight * matching / len(features)
        return loss

    def state_dict(self) -> dict:
        return {"net": self.discriminator.state_dict(), "opt": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["opt"])
