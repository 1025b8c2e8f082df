"""How far SNR and LSD can go together on whole validation files, band by band, at one scale.

Every row is scored as `python -m model evaluate` scores a model (mean per-file SNR gain over
spline, LSD ratio to sinc), on the same files through the same low-pass (the paper's, by default).
Rows that use the truth below the cutoff are ceilings, not models. The least-squares polyphase
filter is the best *linear* estimator: `scale` FIRs, one per output phase, fitted on training
patches (with their stream context) through that low-pass, so it knows the filter exactly. The
top band of a net is its output above the cutoff, scaled by g: it costs SNR in proportion to its
energy when its phase is wrong, and LSD needs the energy.

    .venv/bin/python scripts/x4_ceiling.py --checkpoint tfilm-x4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import audio, cli, metrics, train  # noqa: E402
from model.data import RATE  # noqa: E402
from model.inference import Upsampler  # noqa: E402


def fit_polyphase(
    hr: np.ndarray, scale: int, filter: str, taps: int, patches: int, stride: int | None, seed: int
) -> np.ndarray:
    """Least-squares FIRs [scale x 2 taps + 1]: output sample n * scale + p is row p dotted with
    low-res samples n - taps .. n + taps. Only rows whose taps stay inside each window's
    `CONTEXT` are fitted, so the low-pass's start-up at the window edges does not enter."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(hr), min(patches, len(hr)), replace=False))
    width = 2 * taps + 1
    gram = np.zeros((scale, width, width))
    cross = np.zeros((scale, width))
    for start in range(0, len(idx), 200):
        windows, lead = train.stream_windows(hr, idx[start : start + 200], stride, scale)
        for row in windows.astype(np.float64):
            lowres = audio.lowres(row, scale, filter).astype(np.float64)
            first, last = lead // scale, (len(row) - lead) // scale
            rows = np.lib.stride_tricks.sliding_window_view(np.pad(lowres, taps), width)
            rows = rows[first:last]
            for p in range(scale):
                target = row[first * scale + p : last * scale : scale]
                gram[p] += rows.T @ rows
                cross[p] += rows.T @ target
    ridge = 1e-6 * np.trace(gram, axis1=1, axis2=2)[:, None, None] / width * np.eye(width)
    return np.stack([np.linalg.solve(gram[p] + ridge[p], cross[p]) for p in range(scale)])


def apply_polyphase(firs: np.ndarray, lowres: np.ndarray) -> np.ndarray:
    scale, width = firs.shape
    taps = width // 2
    rows = np.lib.stride_tricks.sliding_window_view(np.pad(lowres.astype(np.float64), taps), width)
    out = np.empty(len(lowres) * scale)
    for p in range(scale):
        out[p::scale] = rows @ firs[p]
    return out


def below(x: np.ndarray, cutoff: float) -> np.ndarray:
    """x with everything at or above `cutoff` Hz removed (brick wall over the whole file)."""
    spectrum = np.fft.rfft(x)
    spectrum[np.fft.rfftfreq(len(x), 1 / RATE) >= cutoff] = 0
    return np.fft.irfft(spectrum, len(x))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="tfilm-x4", help="the net whose top band is scored")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--filter", default="cheby8")
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--files", default=None, help="default: DATA/val_wavs")
    p.add_argument("--taps", type=int, default=128, help="low-res taps each side of a FIR")
    p.add_argument("--patches", type=int, default=3000, help="training patches for the fit")
    p.add_argument("--gains", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    args = p.parse_args()

    cutoff = RATE / 2 / args.scale
    hr_train = np.load(args.data / "train_hr.npy", mmap_mode="r")
    firs = fit_polyphase(
        hr_train, args.scale, args.filter, args.taps, args.patches, train.patch_stride(args.data), 0
    )
    net = Upsampler.load(args.checkpoint, scale=args.scale, device="cpu")
    khz = f"{cutoff / 1000:g} kHz"
    scores: dict[str, list[dict]] = {}
    for path in cli.list_files(args.files or args.data / "val_wavs"):
        x, rate = audio.load(path)
        hr = audio.resample(audio.to_mono(x), rate, RATE).astype(np.float64)
        hr = hr[: len(hr) - len(hr) % args.scale]
        lowres = audio.lowres(hr, args.scale, args.filter)
        out = net(lowres)[0][: len(hr)].astype(np.float64)
        top = out - below(out, cutoff)
        linear = apply_polyphase(firs, lowres)
        rows = {
            "spline": audio.spline(lowres, args.scale),
            "sinc": audio.sinc(lowres, args.scale),
            args.checkpoint: out,
            f"{args.checkpoint} below {khz}, nothing above": below(out, cutoff),
            "least-squares polyphase": linear,
            f"least-squares below {khz}, nothing above": below(linear, cutoff),
            f"truth below {khz}, nothing above": below(hr, cutoff),
        }
        for g in args.gains:
            rows[f"least-squares below {khz} + {g:g} x net above"] = below(linear, cutoff) + g * top
            rows[f"truth below {khz} + {g:g} x net above"] = below(hr, cutoff) + g * top
        for name, est in rows.items():
            scores.setdefault(name, []).append(metrics.score(hr, est, args.scale))
    mean = {
        name: {k: np.mean([s[k] for s in v]) for k in ("snr", "lsd")} for name, v in scores.items()
    }
    print(
        f"{len(scores['spline'])} files, x{args.scale}, {args.filter} low-pass, net {args.checkpoint}"
    )
    print("| estimate | SNR gain over spline (dB) | LSD | LSD(sinc) / LSD |")
    print("| --- | --- | --- | --- |")
    for name, m in mean.items():
        gain = m["snr"] - mean["spline"]["snr"]
        print(f"| {name} | {gain:+.3f} | {m['lsd']:.3f} | {mean['sinc']['lsd'] / m['lsd']:.2f} |")


if __name__ == "__main__":
    main()
