"""How much SNR over spline is there to win at a scale: ideal band-limited and linear-equaliser bounds.

Usage: .venv/bin/python scripts/snr_headroom.py [--data data] [--scale 4]
"""

import argparse

import numpy as np

from model import audio, metrics


def _mean_snr(refs: np.ndarray, ests: np.ndarray) -> float:
    return float(
        np.mean(
            [metrics.snr(r, e) for r, e in zip(refs, ests, strict=True) if np.abs(r).max() > 1e-3]
        )
    )


def _band_limit(x: np.ndarray, hz: float, rate: int) -> np.ndarray:
    spectrum = np.fft.rfft(x, axis=-1)
    spectrum[..., np.fft.rfftfreq(x.shape[-1], 1 / rate) > hz] = 0
    return np.fft.irfft(spectrum, n=x.shape[-1], axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data")
    parser.add_argument("--scale", type=int, default=4)
    args = parser.parse_args()
    rate, scale = 16000, args.scale
    rng = np.random.default_rng(0)
    train = np.load(f"{args.data}/train_hr.npy", mmap_mode="r")
    val = np.load(f"{args.data}/val_hr.npy", mmap_mode="r")
    train = train[np.sort(rng.choice(len(train), 600, replace=False))].astype(np.float64)
    val = val[np.linspace(0, len(val) - 1, 300).astype(int)].astype(np.float64)

    def interpolated(x):
        return audio.spline(audio.lowres(x, scale, "cheby8"), scale)

    # Per-frequency least-squares (Wiener) gain from spline output to reference, fitted on train.
    xs, ys = np.fft.rfft(interpolated(train), axis=-1), np.fft.rfft(train, axis=-1)
    gain = (ys * xs.conj()).sum(0) / ((np.abs(xs) ** 2).sum(0) + 1e-9)
    spline_val = interpolated(val)
    equalised = np.fft.irfft(np.fft.rfft(spline_val, axis=-1) * gain, n=val.shape[-1], axis=-1)
    nyquist = rate / 2 / scale
    rows = {
        "spline": spline_val,
        "sinc": audio.sinc(audio.lowres(val, scale, "cheby8"), scale),
        "linear equaliser on spline (Wiener, fitted on train)": equalised,
        f"ideal: reference below {nyquist:g} Hz": _band_limit(val, nyquist, rate),
        f"ideal: reference below {1.5 * nyquist:g} Hz": _band_limit(val, 1.5 * nyquist, rate),
    }
    base = _mean_snr(val, spline_val)
    print(f"{len(val)} validation patches, scale {scale}, cheby8 low-pass; mean SNR per patch")
    for name, est in rows.items():
        snr = _mean_snr(val, est)
        print(f"{name:<52}{snr:7.2f} dB  ({snr - base:+.2f} vs spline)")


if __name__ == "__main__":
    main()
