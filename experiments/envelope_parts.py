"""Which part of a generator's envelope error the listener models hear: its long-term shape, its
frame-to-frame level, or the rest.

    .venv/bin/python -m model evaluate --checkpoint CKPT --files data-wide/val_wavs --scale 4 \
        --join 4 --voice-items 6 --no-perceptual --out eval/NAME
    .venv/bin/python experiments/envelope_parts.py eval/NAME --items 24   # x2: --from-hz 4000

On the `f.hr.wav` / `f.sr.wav` pairs of an `evaluate --out` folder, the output's energy per
500 Hz band and STFT frame above `--from-hz` (512 / 128 at 16 kHz) less the truth's, in dB, is
split into three parts that add up to it:
- the band bias: its mean per band over the file's speech frames (the long-term spectrum's error:
  what the voice and recording chain decide, and the written level);
- the frame error: what is left, averaged over the bands of each frame (the whole written band
  too loud or too quiet in that frame: the level's dynamics over time);
- the residual: the rest (the shape across bands within a frame).
Each part is removed from, or kept alone on, the truth's envelope, and the result imposed on the
output's own fine structure (`envelope_budget.impose`); also the output's own envelope with its
frame-to-frame swing about each band's mean widened 1.5 x (the truth's swings more: LOG, issue
24), and the output with its band gated in the input's quiet frames. Prints the parts' sizes
(standard deviations in speech frames), then WB-PESQ, DNSMOS P.808 and DistillMOS of every
version (`--only`: of those named), beside sinc's from the `f.lr.wav` input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envelope_budget import band_db, impose  # noqa: E402
from spectral_diagnosis import N_FFT, interpolated, istft, items, stft  # noqa: E402

from model import metrics  # noqa: E402


def parts(t: np.ndarray, m: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, ...]:
    """The error `m - t` ([bands x F], dB) as band bias [bands x 1] + frame error [1 x F] +
    residual [bands x F]. Errors are clipped to +-40 dB first, so a digital-silence frame of
    the original does not swamp the means."""
    e = np.clip(m - t, -40, 40)
    bias = e[:, active].mean(1, keepdims=True)
    frame = (e - bias).mean(0, keepdims=True)
    return bias, frame, e - bias - frame


def versions(hr: np.ndarray, sr: np.ndarray, first: int, stats: list) -> dict[str, np.ndarray]:
    n = min(len(hr), len(sr))
    hr, sr = hr[:n], sr[:n]
    truth, made = stft(hr), stft(sr)
    t, m = band_db(truth, first), band_db(made, first)
    low = 10 * np.log10((truth[5 : first - 4].abs().numpy() ** 2).sum(0) + 1e-12)
    active = low > low.max() - 30
    bias, frame, residual = parts(t, m, active)
    stats.append(
        [bias.std(), bias.mean(), frame[0, active].std(), residual[:, active].std(),
         (t - t[:, active].mean(1, keepdims=True))[:, active].std(),
         (m - m[:, active].mean(1, keepdims=True))[:, active].std()]
    )  # fmt: skip
    mean = m[:, active].mean(1, keepdims=True)
    levels = {
        "its envelope (as it is)": None,
        "less its band bias": t + frame + residual,
        "less its frame error": t + bias + residual,
        "less its frame error, speech frames only": t + bias + residual + frame * ~active,
        "less its frame error, other frames only": t + bias + residual + frame * active,
        "less its residual": t + bias + frame,
        "only its band bias": t + bias,
        "only its frame error": t + frame,
        "only its residual": t + residual,
        "its envelope, swing about the mean x1.5": mean + 1.5 * (m - mean),
        "true envelope": t,
    }
    return {
        name: sr if level is None else istft(impose(made, level, first), n)
        for name, level in levels.items()
    }


def gated(sr: np.ndarray, sinc: np.ndarray, first: int) -> dict[str, np.ndarray]:
    """The output with its band removed in the frames where the input (the sinc-interpolated
    band below, to 0.8 of its Nyquist) is more than 60 or 45 dB under its loudest frame: a gate
    any product could apply, against the frame error's share outside speech."""
    low = 10 * np.log10((stft(sinc)[5 : int(0.8 * first) + 1].abs().numpy() ** 2).sum(0) + 1e-12)
    made, out = stft(sr), {}
    for depth in (60, 45):
        z = made.clone()
        z[first:, torch.from_numpy(low < low.max() - depth)] = 0
        out[f"its band gated {depth} dB under the loudest frame"] = istft(z, len(sr))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--from-hz", type=float, default=2000, help="the written band's start")
    parser.add_argument("--only", default="", help="version names to score, separated by ;")
    args = parser.parse_args()
    first = round(args.from_hz / 16000 * N_FFT)
    scale = round(8000 / args.from_hz)
    table: dict[str, list[tuple[float, float, float]]] = {}
    stats: list = []
    for hr, sr, lr in items(args.folder, args.items):
        made = versions(hr, sr, first, stats)
        n = len(hr)
        sinc = interpolated(lr, scale, n)
        made["sinc"] = sinc
        made |= gated(sr, sinc, first)
        keep = set(args.only.split(";")) if args.only else set(made)
        for name, y in made.items():
            if name not in keep:
                continue
            y = y[:n]
            row = (
                metrics.wb_pesq(hr[:n], y),
                metrics.dnsmos(y)["dnsmos_p808"],
                metrics.distillmos(y),
            )
            table.setdefault(name, []).append(row)
    s = np.mean(stats, axis=0)
    print(
        f"{len(stats)} items from {args.folder}; energy per 500 Hz band and frame from "
        f"{args.from_hz:.0f} Hz, speech frames (dB): band bias mean {s[1]:+.1f}, spread across "
        f"bands {s[0]:.1f}; frame error std {s[2]:.1f}; residual std {s[3]:.1f}; each band's "
        f"swing about its mean: truth {s[4]:.1f}, output {s[5]:.1f}"
    )
    for name, rows in table.items():
        pesq, p808, distill = np.mean(rows, axis=0)
        print(f"  {name:<42} WB-PESQ {pesq:.3f}  DNSMOS P.808 {p808:.3f}  DistillMOS {distill:.3f}")


if __name__ == "__main__":
    main()
