"""The networks: AudioUNet (Kuleshov et al. 2017), its TFiLM variant (Birnbaum et al. 2019), DNN and Spline.

Every net maps the spline-interpolated low-res signal to the high-res estimate, Tensor[B x 1 x T]
-> Tensor[B x 1 x T], for any T (padded inside to what the strides need, cropped back).
"""

from __future__ import annotations

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
    ):
        super().__init__()
        self.depth = depth
        self.tfilm_block = tfilm_block
        filters = [min(base_filters * 2**b, max_filters) for b in range(depth)]
        kernels = [max((max_kernel - 1) // 2**b + 1, min_kernel) for b in range(depth)]
        # The innermost TFiLM works on T / 2^(depth+1) samples; blocks shrink with the resolution.
        blocks = [max(tfilm_block // 2 ** (b + 1), 1) if tfilm_block else 0 for b in range(depth)]
        self.down = nn.ModuleList()
        c_in = 1
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
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.bottleneck(h)
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = block(h, skip)
        return (x + self.shuffle(self.final(h)))[..., :t]


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
