"""How accurate the high band's envelope must be for listeners, and which of its errors cost most.

    .venv/bin/python -m model evaluate --checkpoint CKPT --files data/val_wavs --scale 4 \
        --join 4 --limit 24 --no-perceptual --out eval/NAME
    .venv/bin/python experiments/envelope_budget.py eval/NAME --items 12   # x2: --from-hz 4000

On the `f.hr.wav` / `f.sr.wav` pairs of an `evaluate --out` folder, keeps the output's fine
structure above 2 kHz (`--from-hz`) and imposes on it, per 500 Hz band and STFT frame (512 / 128 at 16 kHz),
an energy that is the truth's or the output's with one kind of error added or taken away:
- the output's, less its mean error per band over the file (a per-voice calibration oracle:
  what the voice and recording chain decide, which the band below cannot tell);
- the output's with its errors above +3 dB clipped to +3 (it is never too loud), or those below
  -3 dB clipped to -3 (never too quiet);
- the truth's with random errors of 3 or 6 dB (normal, independent per band and frame), the
  truth's 6 dB lower, smoothed over 9 frames (about 70 ms), and the truth's frame energy with the
  file's mean shape across bands.
Prints WB-PESQ, ViSQOL and DNSMOS P.808 of each, with sinc's (the output with the band from
2 kHz up removed is not sinc: `evaluate` prints sinc's row).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spectral_diagnosis import N_FFT, istft, stft  # noqa: E402

from model import audio, metrics  # noqa: E402

WIDTH = 16  # bins per band: 500 Hz


def band_db(z: torch.Tensor, first: int) -> np.ndarray:
    """[bands x F] energy in dB of each `WIDTH`-bin band from bin `first` up."""
    power = z[first:].abs().numpy() ** 2
    bands = power.shape[0] // WIDTH
    power = power[: bands * WIDTH].reshape(bands, WIDTH, -1).sum(1)
    return 10 * np.log10(power + 1e-12)


def impose(source: torch.Tensor, level: np.ndarray, first: int) -> torch.Tensor:
    """`source` with each band and frame scaled to `level` dB (the top, partial band follows the
    band below it)."""
    out = source.clone()
    gain = 10 ** ((level - band_db(source, first)) / 20)
    for i in range(gain.shape[0]):
        top = first + (i + 1) * WIDTH if i < gain.shape[0] - 1 else source.shape[0]
        out[first + i * WIDTH : top] *= torch.from_numpy(gain[i])
    return out


def versions(hr: np.ndarray, sr: np.ndarray, first: int, rng) -> dict[str, np.ndarray]:
    n = min(len(hr), len(sr))
    hr, sr = hr[:n], sr[:n]
    truth, made = stft(hr), stft(sr)
    t, m = band_db(truth, first), band_db(made, first)
    low = 10 * np.log10((truth[5 : first - 4].abs().numpy() ** 2).sum(0) + 1e-12)
    active = low > low.max() - 30
    bias = (m - t)[:, active].mean(1, keepdims=True)
    kernel = np.ones(9) / 9
    smooth = np.stack([np.convolve(np.pad(b, 4, mode="edge"), kernel, "valid") for b in t])
    frame = 10 * np.log10((10 ** (t / 10)).sum(0) + 1e-12)
    shape = (t - frame)[:, active].mean(1, keepdims=True)
    levels = {
        "its envelope (as it is)": m,
        "its envelope less its per-file bias": m - bias,
        "its envelope, never > 3 dB too loud": np.minimum(m, t + 3),
        "its envelope, never > 3 dB too quiet": np.maximum(m, t - 3),
        "true envelope": t,
        "true envelope + 3 dB random error": t + rng.normal(0, 3, t.shape),
        "true envelope + 6 dB random error": t + rng.normal(0, 6, t.shape),
        "true envelope - 6 dB": t - 6,
        "true envelope smoothed over 9 frames": smooth,
        "true frame energy, the file's mean shape": frame + shape,
    }
    return {name: istft(impose(made, level, first), n) for name, level in levels.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--items", type=int, default=12)
    parser.add_argument("--from-hz", type=float, default=2000, help="the written band's start")
    args = parser.parse_args()
    first = round(args.from_hz / 16000 * N_FFT)
    rng = np.random.default_rng(0)
    pairs = sorted(args.folder.glob("*.hr.wav"))[: args.items]
    table: dict[str, list[tuple[float, float, float]]] = {}
    for hr_path in pairs:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        for name, y in versions(hr, sr.astype(np.float64), first, rng).items():
            n = len(y)
            row = (
                metrics.wb_pesq(hr[:n], y),
                metrics.visqol(hr[:n], y),
                metrics.dnsmos(y)["dnsmos_p808"],
            )
            table.setdefault(name, []).append(row)
    print(
        f"{len(pairs)} items from {args.folder}; energy per 500 Hz band and frame from {args.from_hz:.0f} Hz"
    )
    for name, rows in table.items():
        pesq, visqol, p808 = np.mean(rows, axis=0)
        print(f"  {name:<42} WB-PESQ {pesq:.2f}  ViSQOL {visqol:.2f}  DNSMOS P.808 {p808:.2f}")


if __name__ == "__main__":
    main()
