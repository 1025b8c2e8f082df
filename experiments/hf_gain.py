"""What one fixed gain on a generator's written band (above the input's Nyquist) does to the
listener metrics: is a quieter high band heard as better?

    .venv/bin/python -m model evaluate --checkpoint CKPT --files data/val_wavs --scale 4 \
        --join 4 --limit 24 --no-perceptual --out eval/NAME
    .venv/bin/python experiments/hf_gain.py eval/NAME --gains=0,-5,-10,-20,-inf [--visqol]

Reads the `f.hr.wav` / `f.sr.wav` pairs and prints, per gain in dB on the bins from 2 kHz up
(STFT 512 / 128 at 16 kHz, x4; from 4 kHz with `--scale 2`), the mean WB-PESQ, LSD and, with --visqol, ViSQOL, DNSMOS
P.808 and DistillMOS (of the first --items pairs), beside the same for the original and for sinc from the
`f.lr.wav` input; with -inf, also sinc and the original with the same band removed; with
`--by-voice`, the same per validation voice too. With `--tilt T` the gain is the one given at the
input's Nyquist and T dB more at 8 kHz, linear in frequency between: a hedge that grows with the
distance from the band the net hears, as its envelope error does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments.spectral_diagnosis import N_FFT, interpolated, istft, stft  # noqa: E402
from model import audio, metrics  # noqa: E402
from model.cli import item_names  # noqa: E402


def with_gain(
    x: np.ndarray, gain_db: float, first: int = N_FFT // 8, tilt_db: float = 0.0
) -> np.ndarray:
    """`x` with its bins from `first` up (2 kHz) scaled by `gain_db` (-inf: removed), and by
    `tilt_db` more at the top bin, linearly in frequency."""
    z = stft(x)
    if not np.isfinite(gain_db):
        z[first:] = 0.0
        return istft(z, len(x))
    profile = gain_db + tilt_db * np.linspace(0, 1, len(z) - first)
    z[first:] *= torch.from_numpy(10 ** (profile[:, None] / 20))
    return istft(z, len(x))


def voices(folder: Path) -> dict[str, str]:
    """Each item's name in an `evaluate --out` folder -> its voice (the clip's folder), from
    `scores.csv`."""
    import csv

    with open(folder / "scores.csv") as f:
        paths = list(dict.fromkeys(Path(row["file"]) for row in csv.DictReader(f)))
    return {name: path.parent.name for name, path in zip(item_names(paths), paths, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--gains", default="0,-5,-10,-20,-inf", help="dB, comma-separated")
    parser.add_argument(
        "--visqol", action="store_true", help="also ViSQOL, DNSMOS and DistillMOS (slow)"
    )
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--scale", type=int, default=4, help="the folder's scale (2: from 4 kHz)")
    parser.add_argument("--by-voice", action="store_true", help="also the means per voice")
    parser.add_argument("--tilt", type=float, default=0.0, help="dB more gain at 8 kHz")
    args = parser.parse_args()
    first = N_FFT // 2 // args.scale
    gains = [float(g) for g in args.gains.split(",")]
    rows = {g: [] for g in gains} | {"sinc": [], "original": []}
    # With the band removed from the output, the same cut on sinc and on the original tells the
    # cut's own cost from the output's below 2 kHz.
    removed = -np.inf in gains
    if removed:
        rows |= {"sinc, removed": [], "original, removed": []}
    pairs = sorted(args.folder.glob("*.hr.wav"))[: args.items]
    for hr_path in pairs:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        n = min(len(hr), len(sr))
        hr, sr = hr[:n], sr[:n].astype(np.float64)
        lr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".lr.")))[0][0]
        sinc = interpolated(lr, args.scale, n)
        versions = {g: with_gain(sr, g, first, args.tilt) for g in gains} | {
            "sinc": sinc,
            "original": hr,
        }
        if removed:
            versions |= {
                "sinc, removed": with_gain(sinc, -np.inf, first),
                "original, removed": with_gain(hr, -np.inf, first),
            }
        for name, y in versions.items():
            row = [metrics.wb_pesq(hr, y), metrics.lsd(hr, y)]
            if args.visqol:
                row += [
                    metrics.visqol(hr, y),
                    metrics.dnsmos(y)["dnsmos_p808"],
                    metrics.distillmos(y),
                ]
            rows[name].append(row)
    print(f"{len(pairs)} items from {args.folder}")
    names = ["WB-PESQ", "LSD"] + (["ViSQOL", "DNSMOS P.808", "DistillMOS"] if args.visqol else [])
    voice_of = voices(args.folder) if args.by_voice else {}
    item_voices = [voice_of.get(p.name.removesuffix(".hr.wav"), "") for p in pairs]
    for voice in [None] + sorted(set(item_voices) - {""}):
        keep = [voice is None or v == voice for v in item_voices]
        if voice is not None:
            print(f" {voice} ({sum(keep)} items)")
        for g, values in rows.items():
            means = np.mean([v for v, k in zip(values, keep, strict=True) if k], axis=0)
            label = f"gain {g:+6.1f} dB" if isinstance(g, float) else g
            print(
                f"  {label:<18} "
                + "  ".join(f"{k} {v:.3f}" for k, v in zip(names, means, strict=True))
            )


if __name__ == "__main__":
    main()
