"""Whether the non-intrusive listener metrics hear a 16-bit WAV's quantization floor on quiet items.

    .venv/bin/python experiments/quantization_floor.py --scale 2 --items 69

`evaluate` scores float signals; the study scripts score the 16-bit wavs `evaluate --out` writes,
and the product delivers 16-bit WAVs. On the voice-balanced validation items of `data-wide`
(`evaluate`'s own grouping), DistillMOS and DNSMOS P.808 of the original, sinc and the shipped
model's output, each as float and rounded to 16 bits at the item's own level, overall and for
the items whose peak is under -20 dBFS (where the floor is nearest the speech).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio, cli, metrics  # noqa: E402
from model.inference import Upsampler  # noqa: E402


def pcm16(x: np.ndarray) -> np.ndarray:
    """`x` as `audio.save` writes it: clipped and rounded to 16 bits."""
    return np.round(np.clip(x, -1, 1) * 32767) / 32767


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data-wide/val_wavs"))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--checkpoint", default=None, help="default: the shipped default")
    parser.add_argument("--items", type=int, default=69)
    args = parser.parse_args()
    up = Upsampler.load(args.checkpoint or f"spectral-x{args.scale}", scale=args.scale)
    groups = cli.per_voice(cli.joined(cli.list_files(args.data), 4), 6)[: args.items]
    rows, quiet = [], []
    for group in groups:
        hr = cli._load_group(group, up.output_rate)
        hr = hr[: len(hr) - len(hr) % args.scale]
        lr = audio.lowres(hr, args.scale, "cheby8", rate=up.output_rate)
        made = {"original": hr, "sinc": audio.sinc(lr, args.scale), up.name: up(lr)[0]}
        row = []
        for x in made.values():
            x = np.asarray(x, dtype=np.float64)
            for y in (x, pcm16(x)):
                row += [metrics.distillmos(y), metrics.dnsmos(y)["dnsmos_p808"]]
        rows.append(row)
        quiet.append(20 * np.log10(np.abs(hr).max() + 1e-12) < -20)
    rows, quiet = np.array(rows), np.array(quiet)
    print(
        f"{len(rows)} items of {args.data}, x{args.scale}; {quiet.sum()} with a peak under -20 dBFS"
    )
    for label, mask in (("all items", np.ones(len(rows), bool)), ("quiet items", quiet)):
        if not mask.any():
            continue
        m = rows[mask].mean(0)
        print(f"  {label} ({mask.sum()}): DistillMOS / DNSMOS P.808, float -> 16-bit")
        for i, name in enumerate(["original", "sinc", up.name]):
            d, p, dq, pq = m[4 * i : 4 * i + 4]
            print(
                f"    {name:<14} DistillMOS {d:.3f} -> {dq:.3f}   DNSMOS P.808 {p:.3f} -> {pq:.3f}"
            )


if __name__ == "__main__":
    main()
