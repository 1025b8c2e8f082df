"""Whole-file super-resolution: overlapping chunks batched through the net, crossfaded back together."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from model import audio, checkpoint, registry
from model.nets import Spline


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA GPU is available")
    return torch.device(device)


def crossfade_window(length: int, margin: int, fade: int) -> np.ndarray:
    """Chunk weight: `margin` zeros, a sin^2 rise over `fade`, ones, then the mirror image.

    The zeroed margins drop the samples a chunk edge spoils (the convs see padding there); the rise
    of one chunk and the fall of the previous one sum to exactly 1, so no seam is left.
    """
    w = np.ones(length, dtype=np.float32)
    rise = np.sin(0.5 * np.pi * (np.arange(fade) + 0.5) / fade) ** 2
    w[:margin] = 0
    w[margin : margin + fade] = rise
    w[length - margin - fade : length - margin] = rise[::-1]
    w[length - margin :] = 0
    return w


class Upsampler:
    """A loaded net plus the chunking that lets it take files of any length on CPU or CUDA.

    Call it on low-res audio float32 [C x T] at `input_rate`; get [C x T*scale] at `output_rate`.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        *,
        name: str,
        input_rate: int,
        scale: int,
        device: str = "auto",
        chunk: int | None = None,
        margin: int | None = None,
        fade: int = 1024,
        batch: int = 8,
    ):
        self.device = str(pick_device(device))
        if self.device == "cpu":
            # Quiet passages drive activations into denormal floats, which x86 CPUs handle in
            # microcode; flushing them to zero is about 10 % faster and inaudible.
            torch.set_flush_denormal(True)
        self.net = net.to(self.device).eval()
        self.name, self.input_rate, self.scale = name, int(input_rate), int(scale)
        self.output_rate = self.input_rate * self.scale
        # Chunk edges spoil what the net sees there: drop at least as much as it reaches.
        margin = margin if margin is not None else max(1024, getattr(net, "context", 0))
        if chunk is None:
            # At least four times what the margins and fade drop, a power of two: a net that
            # reaches far (the 48 kHz one, 10k samples a side) would otherwise spend two thirds
            # of each 32k chunk on samples that are thrown away.
            chunk = max(32768, 1 << math.ceil(math.log2(4 * (2 * margin + fade))))
        self.chunk, self.margin, self.fade, self.batch = chunk, margin, fade, batch

    @classmethod
    def load(
        cls,
        checkpoint_path: str | Path | None = None,
        *,
        input_rate: int | None = None,
        scale: int = 4,
        device: str = "auto",
        **chunking,
    ) -> Upsampler:
        """A shipped model by (input rate, scale), a shipped name, a checkpoint path, or "spline"
        (the untrained baseline, at any rate)."""
        if checkpoint_path == "spline":
            rate = input_rate or registry.spline_rate(scale)
            return cls(
                Spline(), name="spline", input_rate=rate, scale=scale, device=device, **chunking
            )
        path = registry.checkpoint_path(checkpoint_path, input_rate, scale)
        net, meta = checkpoint.load(path)
        if meta["scale"] != scale:
            # A multi-rate net serves every scale it learned; its default scale is its own.
            meta = registry.for_scale(meta, scale, path.name)
            net.scale = scale
        return cls(
            net,
            name=path.stem,
            input_rate=meta["input_rate"],
            scale=scale,
            device=device,
            **chunking,
        )

    def __call__(
        self, x_lowres: np.ndarray, progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x_lowres, dtype=np.float32))
        interpolated = audio.spline(x, self.scale)
        if isinstance(self.net, Spline):
            if progress:
                progress(1.0)
            return interpolated
        return np.stack(
            [self._chunked(ch, progress, i, len(x)) for i, ch in enumerate(interpolated)]
        )

    def _chunked(self, signal: np.ndarray, progress, channel: int, channels: int) -> np.ndarray:
        n = len(signal)
        length, lead = self.chunk, self.margin + self.fade
        hop = length - 2 * self.margin - self.fade
        # Reflect-pad the lead-in so the first real sample already has full weight.
        n_chunks = max(1, int(np.ceil((n + lead) / hop)))
        total = (n_chunks - 1) * hop + length
        padded = np.pad(
            signal, (lead, total - n - lead), mode="reflect" if n > lead else "constant"
        )
        window = crossfade_window(length, self.margin, self.fade)
        out = np.zeros(total, dtype=np.float32)
        weight = np.zeros(total, dtype=np.float32)
        with torch.inference_mode():
            for first in range(0, n_chunks, self.batch):
                starts = range(first * hop, min(first + self.batch, n_chunks) * hop, hop)
                batch = np.stack([padded[s : s + length] for s in starts])[:, None, :]
                y = self.net(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
                for s, chunk_out in zip(starts, y[:, 0], strict=True):
                    out[s : s + length] += window * chunk_out
                    weight[s : s + length] += window
                if progress:
                    done = min(first + self.batch, n_chunks) / n_chunks
                    progress((channel + done) / channels)
        # Edges of the whole signal have only one chunk's weight; dividing keeps them exact.
        return (out / np.maximum(weight, 1e-6))[lead : lead + n]


def full_band_stages(up, load: Callable[[dict], Upsampler]) -> list[Upsampler]:
    """The stage that takes `up`'s output on to 48 kHz (16 -> 48 kHz after a model that writes
    16 kHz; spline after spline, so a baseline stays one), loaded by `load(registry entry)`: []
    when `up` already writes 48 kHz or no model leads there."""
    if up.output_rate == registry.FULL_BAND_RATE:
        return []
    entry = registry.stage_to(up.output_rate, registry.FULL_BAND_RATE, up.name == "spline")
    return [] if entry is None else [load(entry)]


class Chain:
    """Upsamplers run one after another (x2 then x3: 8 -> 48 kHz), called like one Upsampler:
    [C x T] at the first's `input_rate` -> [C x T*scale] at the last's `output_rate`."""

    def __init__(self, stages: list[Upsampler]):
        self.stages = stages
        self.names = [stage.name for stage in stages]
        self.input_rate, self.output_rate = stages[0].input_rate, stages[-1].output_rate

    def __call__(
        self, x_lowres: np.ndarray, progress: Callable[[float], None] | None = None
    ) -> np.ndarray:
        y = x_lowres
        for i, stage in enumerate(self.stages):
            # Each stage fills an equal share of the progress: `i` of them are done.
            share = (
                (lambda done, i=i: progress((i + done) / len(self.stages))) if progress else None
            )
            y = stage(y, progress=share)
        return y
