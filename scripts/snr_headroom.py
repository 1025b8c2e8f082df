"""Where SNR over spline can come from at a scale: per-band ideal gains, the best linear filter, and
(with --checkpoint) which bands a trained model actually wins.

Usage: .venv/bin/python scripts/snr_headroom.py [--data data] [--scale 4] [--checkpoint NAME ...]
       [--split val|train]

Everything is the mean per-patch SNR over validation patches (what the model card's table
averages per file), with the paper's order-8 Chebyshev low-pass making the input. Patches are
low-passed on their own, so nothing here that needs context beyond a patch edge is fair: undoing
the low-pass, for one, is measured on whole files by
`python -m model evaluate --checkpoint decimation-inverse --files data/val_wavs --scale 4`.
"""

import argparse

import numpy as np
from scipy.linalg import solve_toeplitz
from scipy.signal import fftconvolve

from model import audio, metrics

RATE = 16000


def _mean_snr(refs: np.ndarray, ests: np.ndarray) -> float:
    return float(np.mean([metrics.snr(r, e) for r, e in zip(refs, ests, strict=True)]))


def _patches(path: str, count: int, rng: np.random.Generator | None) -> np.ndarray:
    """`count` non-silent patches, spread evenly (or drawn at random when rng is given)."""
    pool = np.load(path, mmap_mode="r")
    if rng is None:
        idx = np.linspace(0, len(pool) - 1, count).astype(int)
    else:
        idx = np.sort(rng.choice(len(pool), count, replace=False))
    x = pool[idx].astype(np.float64)
    return x[np.abs(x).max(axis=1) > 1e-3]


def _least_squares_fir(inputs: np.ndarray, refs: np.ndarray, taps: int) -> np.ndarray:
    """The two-sided FIR that best maps inputs to refs, every patch weighted equally.

    Fitted in the time domain (Toeplitz normal equations): a per-bin FFT gain leaks the loud low
    band into the attenuated one and badly underestimates what a linear filter can do.
    """
    weight = 1 / np.sqrt((refs**2).sum(axis=1, keepdims=True))
    n = 2 * refs.shape[1]
    xs, ys = np.fft.rfft(inputs * weight, n, axis=1), np.fft.rfft(refs * weight, n, axis=1)
    autocorr = np.fft.irfft((np.abs(xs) ** 2).sum(0), n)
    crosscorr = np.fft.irfft((ys * xs.conj()).sum(0), n)
    half = taps // 2
    return solve_toeplitz(
        autocorr[:taps], np.concatenate([crosscorr[-half:], crosscorr[: half + 1]])
    )


def _filtered(x: np.ndarray, fir: np.ndarray) -> np.ndarray:
    half = len(fir) // 2
    return np.stack([fftconvolve(row, fir)[half : half + x.shape[1]] for row in x])


def _swap_band(base: np.ndarray, other: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """`base` with its [lo, hi) Hz band replaced by `other`'s (None: by silence)."""
    freqs = np.fft.rfftfreq(base.shape[1], 1 / RATE)
    band = (freqs >= lo) & (freqs < hi)
    spectrum = np.fft.rfft(base, axis=1)
    spectrum[:, band] = 0 if other is None else np.fft.rfft(other, axis=1)[:, band]
    return np.fft.irfft(spectrum, n=base.shape[1], axis=1)


def _pooled_snr(refs: np.ndarray, ests: np.ndarray) -> float:
    """SNR of all patches summed: what a pooled MSE loss optimises, unlike the table's mean."""
    return float(10 * np.log10((refs**2).sum() / ((refs - ests) ** 2).sum()))


def _model_output(name: str, interpolated: np.ndarray, scale: int) -> np.ndarray:
    from model import checkpoint, registry
    from model.train import predict

    net, _ = checkpoint.load(registry.checkpoint_path(name, None, scale))
    return predict(net, interpolated).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--checkpoint", nargs="*", default=[], help="models to attribute by band")
    parser.add_argument(
        "--split",
        default="val",
        choices=["val", "train"],
        help="score 400 patches of this split (train: how much of the gain fails to generalise)",
    )
    args = parser.parse_args()
    scale = args.scale
    train = _patches(f"{args.data}/train_hr.npy", 1500, np.random.default_rng(0))
    val = _patches(f"{args.data}/{args.split}_hr.npy", 400, None)

    def interpolated(x):
        return audio.spline(audio.lowres(x, scale, "cheby8"), scale).astype(np.float64)

    lowres = audio.lowres(val, scale, "cheby8").astype(np.float64)
    spline_val = audio.spline(lowres, scale).astype(np.float64)
    base = _mean_snr(val, spline_val)
    nyquist = RATE / 2 / scale
    print(f"{len(val)} {args.split} patches, scale {scale}, cheby8 low-pass")
    print(
        f"spline: mean SNR per patch {base:.2f} dB (pooled {_pooled_snr(val, spline_val):.2f} dB);"
        " gains below are against the mean\n"
    )

    fir = _least_squares_fir(interpolated(train), train, taps=257)
    rows = {
        "sinc interpolation": audio.sinc(lowres, scale),
        "best linear filter on spline (257 taps, fitted on train)": _filtered(spline_val, fir),
    }
    for cut in (0.8, 1.0, 1.25, 1.5):
        rows[f"ideal: reference below {cut * nyquist:g} Hz"] = _swap_band(
            spline_val, val, 0, cut * nyquist
        )
    for name, est in rows.items():
        print(f"{name:<58}{_mean_snr(val, est) - base:+6.2f} dB")

    edges = np.array([0, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, RATE / 2 / nyquist]) * nyquist
    outputs = {name: _model_output(name, spline_val, scale) for name in args.checkpoint}
    print("\nper band: reference there (ideal), silence there, and each model's output there")
    print(f"{'band Hz':<14}{'ideal':>8}{'silence':>9}" + "".join(f"{n:>16}" for n in outputs))
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        cells = [_swap_band(spline_val, val, lo, hi), _swap_band(spline_val, None, lo, hi)]
        cells += [_swap_band(spline_val, out, lo, hi) for out in outputs.values()]
        gains = [_mean_snr(val, c) - base for c in cells]
        print(
            f"{f'{lo:.0f}-{hi:.0f}':<14}{gains[0]:+8.2f}{gains[1]:+9.2f}"
            + "".join(f"{g:+16.3f}" for g in gains[2:])
        )
    for name, out in outputs.items():
        print(
            f"{name}: whole output {_mean_snr(val, out) - base:+.3f} dB"
            f" (mean per patch {_mean_snr(val, out):.2f} dB, pooled {_pooled_snr(val, out):.2f} dB)"
        )


if __name__ == "__main__":
    main()
