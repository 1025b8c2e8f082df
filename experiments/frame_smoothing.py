"""Whether the written band's frame error is jitter a product could smooth away without the truth.

    .venv/bin/python experiments/frame_smoothing.py eval/NAME --items 69 [--score]

`envelope_parts.py` found the frame error (the whole written band too loud or too quiet in a frame)
to be what DistillMOS hears most at x4. If much of it changes from frame to frame faster than
speech does, the output's band level relative to the input's top band (0.5-0.9 of its Nyquist),
smoothed over k frames (8 ms each) and imposed back, would be closer to the truth. For each k,
prints the frame error std in speech frames (as `envelope_parts.parts` defines it) of the output
as it is and smoothed by a running median and a running mean, and the share of the output's
frame error variance that is faster than k frames (its running mean's residual); `--score` adds
WB-PESQ, DNSMOS P.808 and DistillMOS of each version, beside the output's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envelope_budget import band_db, impose  # noqa: E402
from envelope_parts import parts  # noqa: E402
from spectral_diagnosis import N_FFT, interpolated, istft, items, stft  # noqa: E402

from model import metrics  # noqa: E402

SPANS = (3, 5, 9, 17, 33)


def smoothed_levels(m: np.ndarray, top: np.ndarray) -> dict[str, np.ndarray]:
    """The output's band levels `m` [bands x F] with their offset from the input's top band
    `top` [F] smoothed along time, each k."""
    offset = m - top[None]
    out = {}
    for k in SPANS:
        out[f"median over {k} frames"] = top[None] + median_filter(
            offset, size=(1, k), mode="nearest"
        )
        out[f"mean over {k} frames"] = top[None] + uniform_filter1d(
            offset, k, axis=1, mode="nearest"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--from-hz", type=float, default=2000, help="the written band's start")
    parser.add_argument("--score", default="", help="version names to score, separated by ;")
    args = parser.parse_args()
    first = round(args.from_hz / 16000 * N_FFT)
    scale = round(8000 / args.from_hz)
    errors: dict[str, list[float]] = {}
    fast: dict[int, list[float]] = {}
    table: dict[str, list[tuple[float, float, float]]] = {}
    chosen = [name for name in args.score.split(";") if name]
    names = {*smoothed_levels(np.zeros((1, 1)), np.zeros(1))}
    if unknown := [name for name in chosen if name not in names]:
        parser.error(f"no such version: {unknown}; choose from {sorted(names)}")
    for hr, sr, lr in items(args.folder, args.items):
        n = len(hr)
        truth, made = stft(hr), stft(sr)
        t, m = band_db(truth, first), band_db(made, first)
        low = 10 * np.log10((truth[5 : first - 4].abs().numpy() ** 2).sum(0) + 1e-12)
        active = low > low.max() - 30
        below = stft(interpolated(lr, scale, n)).abs().numpy() ** 2
        top = 10 * np.log10(below[first // 2 : int(0.9 * first)].sum(0) + 1e-12)
        frame = parts(t, m, active)[1][0]
        errors.setdefault("as it is", []).append(frame[active].std())
        for k in SPANS:
            slow = uniform_filter1d(frame, k, mode="nearest")
            fast.setdefault(k, []).append(((frame - slow)[active].var()) / frame[active].var())
        levels = smoothed_levels(m, top)
        for name, level in levels.items():
            errors.setdefault(name, []).append(parts(t, level, active)[1][0, active].std())
        for name in ["as it is", *chosen] if chosen else ():
            y = sr if name == "as it is" else istft(impose(made, levels[name], first), n)[:n]
            row = (metrics.wb_pesq(hr, y), metrics.dnsmos(y)["dnsmos_p808"], metrics.distillmos(y))
            table.setdefault(name, []).append(row)
    print(
        f"{len(errors['as it is'])} items from {args.folder}; frame error std in speech frames (dB):"
    )
    for name, values in errors.items():
        print(f"  {name:<24} {np.mean(values):.2f}")
    print("share of the frame error's variance faster than k frames:")
    print("  " + "  ".join(f"k={k}: {np.mean(v):.0%}" for k, v in fast.items()))
    for name, rows in table.items():
        pesq, p808, distill = np.mean(rows, axis=0)
        print(f"  {name:<24} WB-PESQ {pesq:.3f}  DNSMOS P.808 {p808:.3f}  DistillMOS {distill:.3f}")


if __name__ == "__main__":
    main()
