"""Where a generator's high band goes wrong for listeners: envelope, fine structure or phase.

    .venv/bin/python -m model evaluate --checkpoint CKPT --files data/val_wavs --scale 4 \
        --join 4 --limit 48 --out eval/NAME
    .venv/bin/python experiments/spectral_diagnosis.py eval/NAME --items 12

Reads the `f.hr.wav` / `f.sr.wav` pairs that `evaluate --out` wrote and prints, on the first
`--items` of them (STFT 512 / 128 at 16 kHz, the band from 2 kHz up):
- the energy error per 1 kHz band and frame (active frames: within 30 dB of the loudest);
- the output's energy above 2 kHz less the truth's, per frame, by the frame's 150-1900 Hz level
  re the file's loudest frame (is the high band wrong in speech, or hiss in the pauses?);
- WB-PESQ, ViSQOL, DNSMOS P.808 and DistillMOS of the output as it is, with its magnitude and the true phase, with the true
  magnitude and its phase;
- the same when the true energy of each 500 Hz band and frame is imposed on fine
  structure from the output, from the input's 1-2 kHz band copied up, or from noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio, metrics  # noqa: E402

N_FFT, HOP, FIRST = 512, 128, 64  # bin 64 = 2 kHz
WINDOW = torch.hann_window(N_FFT, dtype=torch.float64)


def stft(x: np.ndarray) -> torch.Tensor:
    return torch.stft(torch.from_numpy(x), N_FFT, HOP, window=WINDOW, return_complex=True)


def istft(z: torch.Tensor, n: int) -> np.ndarray:
    return torch.istft(z, N_FFT, HOP, window=WINDOW, length=n).numpy()


def items(folder: Path, count: int):
    """The first `count` items of an `evaluate --out` folder, by name: (original, output, input),
    each as float64, the original and output cut to the shorter of the two."""
    for hr_path in sorted(folder.glob("*.hr.wav"))[:count]:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        lr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".lr.")))[0][0]
        n = min(len(hr), len(sr))
        yield hr[:n], sr[:n].astype(np.float64), lr.astype(np.float64)


def interpolated(lr: np.ndarray, scale: int, n: int) -> np.ndarray:
    """The low-res input `lr` sinc-interpolated by `scale` to exactly `n` samples (zero-padded
    or cut), to stand beside an output of that length."""
    out = np.zeros(n)
    out[: min(n, scale * len(lr))] = audio.sinc(lr, scale)[:n]
    return out


def with_envelope(source: torch.Tensor, truth: torch.Tensor, width: int = 16) -> torch.Tensor:
    """`source`'s fine structure scaled to `truth`'s energy per `width`-bin band and frame."""
    out = source.clone()
    for b in range(FIRST, source.shape[0], width):
        scale = (truth[b : b + width].abs() ** 2).sum(0) / (
            (source[b : b + width].abs() ** 2).sum(0) + 1e-12
        )
        out[b : b + width] = source[b : b + width] * scale.sqrt()
    return out


def scores(hr: np.ndarray, sr: np.ndarray, rng) -> dict[str, tuple[float, float]]:
    n = min(len(hr), len(sr))
    hr, sr = hr[:n], sr[:n]
    truth, made = stft(hr), stft(sr)

    def mixed(magnitude, phase):
        z = made.clone()
        z[FIRST:] = torch.polar(magnitude[FIRST:].abs(), torch.angle(phase[FIRST:]))
        return istft(z, n)

    copied = made.clone()
    for start in range(FIRST, made.shape[0], 32):
        width = min(32, made.shape[0] - start)
        copied[start : start + width] = made[32 : 32 + width]
    noise = made.clone()
    noise[FIRST:] = torch.polar(
        torch.ones_like(made[FIRST:].abs()),
        torch.from_numpy(rng.uniform(0, 2 * np.pi, made[FIRST:].shape)),
    )
    quieter = made.clone()
    quieter[FIRST:] = made[FIRST:] * 10 ** (-10 / 20)
    versions = {
        "as it is": sr,
        "its high band 10 dB quieter": istft(quieter, n),
        "its magnitude, true phase": mixed(made, truth),
        "true magnitude, its phase": mixed(truth, made),
        "true envelope, its fine structure": istft(with_envelope(made, truth), n),
        "true envelope, 1-2 kHz copied up": istft(with_envelope(copied, truth), n),
        "true envelope, noise": istft(with_envelope(noise, truth), n),
    }
    versions["the true fine structure, its envelope"] = istft(with_envelope(truth, made), n)
    return {
        k: (
            metrics.wb_pesq(hr, v),
            metrics.visqol(hr, v),
            metrics.dnsmos(v)["dnsmos_p808"],
            metrics.distillmos(v),
        )
        for k, v in versions.items()
    }


LEVELS = ((-10, 1), (-30, -10), (-45, -30), (-60, -45), (-80, -60), (-400, -80))


def by_level(hr: np.ndarray, sr: np.ndarray) -> np.ndarray:
    """[3 x F]: each frame's 150-1900 Hz level re the loudest frame, and its energy above 2 kHz
    in the truth and in the output, in dB re the loudest frame."""
    n = min(len(hr), len(sr))
    truth, made = stft(hr[:n]).abs().numpy() ** 2, stft(sr[:n]).abs().numpy() ** 2
    loudest = 10 * np.log10(truth.sum(0).max() + 1e-20)
    db = lambda p: 10 * np.log10(p.sum(0) + 1e-30) - loudest  # noqa: E731
    return np.stack([db(truth[5:60]), db(truth[FIRST:]), db(made[FIRST:])])


def band_errors(hr: np.ndarray, sr: np.ndarray) -> list[tuple[float, float]]:
    """(bias, mean |error|) in dB of the energy per 1 kHz band and active frame, 2-8 kHz, then
    (truth, output) peak-to-mean above 2 kHz in dB, the mean over active frames."""
    n = min(len(hr), len(sr))
    truth, made = stft(hr[:n]).abs().numpy(), stft(sr[:n]).abs().numpy()
    low = 10 * np.log10((truth[5:60] ** 2).sum(0) + 1e-12)
    active = low > low.max() - 30

    def band(m, b):
        return 10 * np.log10((m[b : b + 32] ** 2).sum(0) + 1e-12)[active]

    def peakiness(m):
        level = 20 * np.log10(m[FIRST + 2 :, active] + 1e-6)
        return (level.max(0) - level.mean(0)).mean()

    rows = [
        ((d := band(made, b) - band(truth, b)).mean(), np.abs(d).mean())
        for b in range(FIRST, 256, 32)
    ]
    return rows + [(peakiness(truth), peakiness(made))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--items", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pairs = sorted(args.folder.glob("*.hr.wav"))[: args.items]
    errors, table, levels = [], [], []
    for hr_path in pairs:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        errors.append(band_errors(hr, sr.astype(np.float64)))
        levels.append(by_level(hr, sr.astype(np.float64)))
        table.append(scores(hr, sr.astype(np.float64), rng))
    errors = np.mean(errors, axis=0)
    print(f"{len(pairs)} items from {args.folder}")
    for i, (bias, error) in enumerate(errors[:-1]):
        print(
            f"  {2 + i}-{3 + i} kHz band energy per frame: bias {bias:+.1f} dB, |error| {error:.1f} dB"
        )
    truth, made = errors[-1]
    print(f"  peak-to-mean above 2 kHz per frame: truth {truth:.1f} dB, output {made:.1f} dB")
    levels = np.concatenate(levels, axis=1)
    for low, high in LEVELS:
        frames = (levels[0] >= low) & (levels[0] < high)
        if frames.any():
            p10, p50, p90 = np.percentile(levels[2, frames] - levels[1, frames], [10, 50, 90])
            print(
                f"  frames at {low:4d}..{high:3d} dB below 2 kHz ({frames.sum():5d}): above 2 kHz"
                f" truth {np.median(levels[1, frames]):6.1f} dB, output"
                f" {np.median(levels[2, frames]):6.1f} dB; output - truth p10/50/90"
                f" {p10:+.1f} / {p50:+.1f} / {p90:+.1f} dB"
            )
    for name in table[0]:
        pesq, visqol, p808, distill = np.mean([row[name] for row in table], axis=0)
        print(
            f"  {name:<38} WB-PESQ {pesq:.2f}  ViSQOL {visqol:.2f}  DNSMOS P.808 {p808:.2f}"
            f"  DistillMOS {distill:.2f}"
        )


if __name__ == "__main__":
    main()
