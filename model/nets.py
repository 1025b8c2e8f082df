"""The networks: AudioUNet (Kuleshov et al. 2017), its TFiLM variant (Birnbaum et al. 2019), DNN and Spline.

Every net maps the spline-interpolated low-res signal to the high-res estimate, Tensor[B x 1 x T]
-> Tensor[B x 1 x T], for any T (padded inside to what the strides need, cropped back).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SubPixel1d(nn.Module):
    """1-D pixel shuffle: Tensor[B x C*r x T] -> Tensor[B x C x T*r] (channel c*r+i -> time t*r+i)."""

    def __init__(self, r: int = 2):
        super().__init__()
        self.r = r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, cr, t = x.shape
        c = cr // self.r
        return x.view(b, c, self.r, t).permute(0, 1, 3, 2).reshape(b, c, t * self.r)


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int]:
    t = x.shape[-1]
    extra = (-t) % multiple
    if extra:
        # Reflection keeps the edge statistics; a constant pad would put a step into the convs.
        mode = "reflect" if t > extra else "replicate"
        x = F.pad(x, (0, extra), mode=mode)
    return x, t


def decimation_inverse_kernel(scale: int, taps_per_phase: int = 256, cap_db: float = 60.0):
    """FIR that upsamples zero-stuffed low-res by `scale` and divides out `scipy.signal.decimate`'s
    low-pass: numpy float32 [taps_per_phase * scale + 1], symmetric (zero phase).

    `decimate` (the paper's low-res prep) runs an order-8 Chebyshev I at 0.8 of the new Nyquist
    forward and back, so the band from there to the Nyquist is attenuated by |H|^2 (19 dB at 0.9,
    46 dB at 1.0) but still present. The response is 1 / |H|^2 (capped at `cap_db`) times `scale`,
    tapered to zero over the top 5 % below the low-res Nyquist, where aliasing outweighs the signal.
    """
    import numpy as np
    from scipy import signal  # only nets that use the inverse pay for the import

    n_fft = 1 << 16
    freqs = np.fft.rfftfreq(n_fft)  # cycles per high-res sample; the low-res Nyquist is 0.5/scale
    _, h = signal.freqz(*signal.cheby1(8, 0.05, 0.8 / scale), worN=2 * np.pi * freqs)
    gain = np.minimum(1 / np.abs(h) ** 2, 10 ** (cap_db / 20))
    nyquist = 0.5 / scale
    taper = np.sin(0.5 * np.pi * np.clip((nyquist - freqs) / (0.05 * nyquist), 0, 1)) ** 2
    taps = taps_per_phase * scale + 1
    impulse = np.roll(np.fft.irfft(scale * gain * taper, n_fft), taps // 2)[:taps]
    # 256 taps per phase and a Kaiser window with beta 5 keep the response within 2 % of the target
    # up to 0.95 of the low-res Nyquist (128 taps and beta 8 overshoot by 13 % at 0.85-0.9).
    return (impulse * signal.get_window(("kaiser", 5.0), taps)).astype(np.float32)


class DecimationInverse(nn.Module):
    """The low-res samples under a spline input, upsampled with `decimate`'s low-pass divided out.

    Tensor[B x 1 x T] -> Tensor[B x 1 x T]. Input sample 0 must be a low-res sample (as every
    spline interpolation here starts with one), so x[..., ::scale] is the low-res signal itself.
    On audio that came through `decimate` this restores the attenuated top of the band almost
    exactly (+0.92 dB SNR over spline on the x4 validation files, model card); on audio low-passed
    any other way it boosts unattenuated content by up to 46 dB, so a net adds it only where
    `PlausibleBoost` judges it plausible.
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale
        self.alignment = scale  # a chunk must start on a low-res sample
        kernel = torch.from_numpy(decimation_inverse_kernel(scale))
        # Not persistent: rebuilt from `scale`, so checkpoints keep only trained weights.
        self.register_buffer("kernel", kernel.view(1, 1, -1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lowres = x[..., :: self.scale]
        y = F.conv_transpose1d(
            lowres,
            self.kernel.to(x.dtype),
            stride=self.scale,
            padding=self.kernel.shape[-1] // 2,
            output_padding=self.scale - 1,
        )
        return y[..., : x.shape[-1]]


class PlausibleBoost(nn.Module):
    """What undoing `decimate`'s low-pass adds to a spline input, kept only where it is plausible.

    Tensor[B x 1 x T] -> Tensor[B x 1 x T]. The boost is `DecimationInverse(x) - x`. On audio that
    came through `decimate` it is the attenuated top of the band, about as loud as the band below
    it (0.6-0.8 of the low-res Nyquist): median -0.3 dB over 32 ms blocks of validation speech. On
    audio low-passed any other way it is that band's unattenuated content times up to 46 dB:
    median +10 dB (elliptic) to +26 dB (sinc); `scripts/boost_gate.py` prints these. So every
    ~32 ms the boost passes with weight sigmoid((threshold - ratio) / width), ratio the boost's
    level over the lower band's in dB. `block=None` judges each input (a chunk) as a whole: the
    low-pass is the same throughout a file, and one judgement over seconds is far less noisy.
    """

    def __init__(
        self, scale: int, threshold_db: float = 4.0, width_db: float = 2.0, block: int | None = 512
    ):
        super().__init__()
        from scipy import signal  # only nets that use the inverse pay for the import

        self.inverse = DecimationInverse(scale)
        self.block = block
        # Levels are taken every block / 4 samples: chunks must start on that grid too.
        self.alignment = math.lcm(scale, block // 4) if block else scale
        nyquist = 0.5 / scale  # in cycles per high-res sample
        band = signal.firwin(257, [0.6 * nyquist, 0.8 * nyquist], pass_zero=False, fs=1.0)
        self.register_buffer(
            "reference_band", torch.from_numpy(band.astype("float32")).view(1, 1, -1), False
        )
        self.threshold, self.width = threshold_db, width_db

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """Mean power over `block` samples every block / 4: Tensor[B x 1 x T / (block / 4) + 1]
        (with no block, over the whole input: Tensor[B x 1 x 1])."""
        if self.block is None:
            return x.pow(2).mean(dim=-1, keepdim=True)
        return F.avg_pool1d(
            x.pow(2), self.block, self.block // 4, self.block // 2, count_include_pad=False
        )

    def ratio_db(self, x: torch.Tensor, boost: torch.Tensor) -> torch.Tensor:
        """The boost's level over the 0.6-0.8 x Nyquist band's, dB, on the `level` grid."""
        band = self.reference_band.to(x.dtype)
        reference = F.conv1d(x, band, padding=band.shape[-1] // 2)
        return 10 * torch.log10((self.level(boost) + 1e-10) / (self.level(reference) + 1e-10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        boost = self.inverse(x) - x
        ratio_db = self.ratio_db(x, boost)
        gate = torch.sigmoid((self.threshold - ratio_db) / self.width)
        gate = F.interpolate(gate, size=x.shape[-1], mode="linear", align_corners=False)
        return gate * boost


class TFiLM(nn.Module):
    """Temporal feature-wise linear modulation: an LSTM over max-pooled blocks sets per-block scale
    and shift of the activations. Tensor[B x C x T] -> Tensor[B x C x T], T a multiple of `block`.
    """

    def __init__(self, channels: int, block: int):
        super().__init__()
        self.block = block
        self.lstm = nn.LSTM(channels, channels, batch_first=True)
        self.affine = nn.Linear(channels, 2 * channels)
        # Start as the identity (scale 1, shift 0) so TFiLM can only help the plain U-Net.
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        n_blocks = t // self.block
        pooled = F.max_pool1d(x, self.block)  # [B x C x n_blocks]
        hidden, _ = self.lstm(pooled.transpose(1, 2))  # [B x n_blocks x C]
        scale, shift = self.affine(hidden).transpose(1, 2).chunk(2, dim=1)  # [B x C x n_blocks]
        x = x.view(b, c, n_blocks, self.block)
        x = x * (1 + scale.unsqueeze(-1)) + shift.unsqueeze(-1)
        return x.view(b, c, t)


class DownBlock(nn.Module):
    """Stride-2 conv + LeakyReLU(0.2) (+ optional TFiLM): Tensor[B x Cin x T] -> [B x Cout x T/2]."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, tfilm_block: int = 0, dropout: float = 0
    ):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=2, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.tfilm = TFiLM(c_out, tfilm_block) if tfilm_block else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tfilm(F.leaky_relu(self.dropout(self.conv(x)), 0.2))


class UpBlock(nn.Module):
    """Conv to 2*Cout + dropout + ReLU + subpixel x2 (+ TFiLM), then concat the skip.

    Tensor[B x Cin x T] and skip Tensor[B x Cs x 2T] -> Tensor[B x Cout+Cs x 2T].
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, dropout: float, tfilm_block: int = 0):
        super().__init__()
        self.conv = nn.Conv1d(c_in, 2 * c_out, kernel, padding=kernel // 2)
        self.dropout = nn.Dropout(dropout)
        self.shuffle = SubPixel1d(2)
        self.tfilm = TFiLM(c_out, tfilm_block) if tfilm_block else nn.Identity()

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.tfilm(self.shuffle(F.relu(self.dropout(self.conv(x)))))
        return torch.cat([x, skip], dim=1)


class AudioUNet(nn.Module):
    """Kuleshov et al. 2017: `depth` down blocks, a bottleneck, `depth` up blocks with skips, a final
    conv + subpixel, added to the input. Block b (1-based) has min(base_filters * 2^(b-1),
    max_filters) filters and kernel max(max_kernel // 2^(b-1) | 1, min_kernel); the defaults are
    the paper's (128..512 filters, kernels 65, 33, 17, 9). Tensor[B x 1 x T] -> Tensor[B x 1 x T].

    `tfilm_block` > 0 adds TFiLM after every block, with blocks of that many input-rate samples.

    `decimation_inverse` = the scale adds `PlausibleBoost(x)` (what undoing `decimate`'s low-pass
    adds, where plausible) to the output and gives it to the net as a second input channel, whose
    weights start at zero: y = x + boost + residual(x, boost). `boost_threshold_db` sets where the
    boost is judged implausible (`PlausibleBoost`): lower is safer on audio not from `decimate`.
    """

    def __init__(
        self,
        depth: int = 4,
        base_filters: int = 128,
        max_filters: int = 512,
        max_kernel: int = 65,
        min_kernel: int = 9,
        dropout: float = 0.5,
        tfilm_block: int = 0,
        decimation_inverse: int = 0,
        boost_threshold_db: float = 4.0,
    ):
        super().__init__()
        self.depth = depth
        self.tfilm_block = tfilm_block
        self.inverse = (
            PlausibleBoost(decimation_inverse, boost_threshold_db) if decimation_inverse else None
        )
        filters = [min(base_filters * 2**b, max_filters) for b in range(depth)]
        kernels = [max((max_kernel - 1) // 2**b + 1, min_kernel) for b in range(depth)]
        # The innermost TFiLM works on T / 2^(depth+1) samples; blocks shrink with the resolution.
        blocks = [max(tfilm_block // 2 ** (b + 1), 1) if tfilm_block else 0 for b in range(depth)]
        self.down = nn.ModuleList()
        c_in = 2 if self.inverse else 1
        for nf, k, blk in zip(filters, kernels, blocks, strict=True):
            self.down.append(DownBlock(c_in, nf, k, blk))
            c_in = nf
        bottleneck_block = max(tfilm_block // 2 ** (depth + 1), 1) if tfilm_block else 0
        self.bottleneck = DownBlock(c_in, filters[-1], kernels[-1], bottleneck_block, dropout)
        self.up = nn.ModuleList()
        c_in = filters[-1]
        for nf, k, blk in reversed(list(zip(filters, kernels, blocks, strict=True))):
            self.up.append(UpBlock(c_in, nf, k, dropout, blk))
            c_in = 2 * nf
        self.final = nn.Conv1d(c_in, 2, 9, padding=4)
        # Zero the residual branch: training starts exactly at the spline baseline and can only
        # move away from it where that lowers the loss (a random start costs epochs of SNR).
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)
        self.shuffle = SubPixel1d(2)
        self.multiple = 2 ** (depth + 1) * max(tfilm_block // 2 ** (depth + 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, t = _pad_to_multiple(x, self.multiple)
        skips = []
        h = x
        base = x
        if self.inverse is not None:
            boost = self.inverse(x)
            base = x + boost
            h = torch.cat([x, boost], dim=1)
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.bottleneck(h)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = block(h, skip)
        return (base + self.shuffle(self.final(h)))[..., :t]


class AudioTFiLMNet(AudioUNet):
    """AudioUNet with TFiLM after every block (Birnbaum et al. 2019)."""

    def __init__(self, tfilm_block: int = 256, **kwargs):
        super().__init__(tfilm_block=tfilm_block, **kwargs)


class DNN(nn.Module):
    """Fully connected baseline: an MLP maps each frame of `frame` samples to a residual.

    Tensor[B x 1 x T] -> Tensor[B x 1 x T].
    """

    def __init__(self, frame: int = 256, hidden: int = 1024, layers: int = 2, dropout: float = 0.1):
        super().__init__()
        self.frame = frame
        dims = [frame] + [hidden] * layers
        mlp: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            mlp += [nn.Linear(a, b), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
        mlp.append(nn.Linear(dims[-1], frame))
        nn.init.zeros_(mlp[-1].weight)  # start at the spline baseline, as AudioUNet does
        nn.init.zeros_(mlp[-1].bias)
        self.mlp = nn.Sequential(*mlp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, t = _pad_to_multiple(x, self.frame)
        b, _, tp = x.shape
        frames = x.reshape(b, tp // self.frame, self.frame)
        return (x + self.mlp(frames).reshape(b, 1, tp))[..., :t]


class Spline(nn.Module):
    """The cubic-spline baseline as a net: the input already is the spline interpolation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


ARCHITECTURES: dict[str, type[nn.Module]] = {
    "AudioUNet": AudioUNet,
    "AudioTFiLMNet": AudioTFiLMNet,
    "DNN": DNN,
    "Spline": Spline,
}


def load_widened(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `state` from a narrower net of the same layout: each tensor goes into the leading corner
    of the wider one, the rest is zero (a new input channel starts switched off). Parameters the
    narrower net lacks keep their initial values.
    """
    own = net.state_dict()
    if not set(state) <= set(own):
        raise ValueError(f"layers the wider net lacks: {sorted(set(state) - set(own))}")
    for name, source in state.items():
        target = own[name]
        if source.dim() != target.dim() or any(
            a > b for a, b in zip(source.shape, target.shape, strict=True)
        ):
            raise ValueError(f"{name}: {tuple(source.shape)} does not fit {tuple(target.shape)}")
        if source.shape != target.shape:
            target.zero_()
        target[tuple(slice(0, n) for n in source.shape)] = source
    net.load_state_dict(own)


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def receptive_field(net: nn.Module, length: int = 16384) -> int:
    """Samples of the output that one input impulse reaches (measured by autograd)."""
    x = torch.zeros(1, 1, length, requires_grad=True)
    net.eval()
    y = net(x)
    y[0, 0, length // 2].backward()
    touched = torch.nonzero(x.grad[0, 0]).flatten()
    return int(touched.max() - touched.min() + 1) if len(touched) else 0


if __name__ == "__main__":
    for name, cls in ARCHITECTURES.items():
        net = cls()
        print(
            f"{name}: {parameter_count(net):,} parameters, receptive field {receptive_field(net)}"
        )
