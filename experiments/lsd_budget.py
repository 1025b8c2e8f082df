"""Where a 48 kHz model's LSD comes from: which bands, which frames, which items.

    .venv/bin/python -m model evaluate --checkpoint spectral-x3 --files data-fb/val_wavs \
        --scale 3 --join 4 --voice-items 6 --out eval/x3
    .venv/bin/python experiments/lsd_budget.py eval/x3

Reads the `f.hr.wav` / `f.lr.wav` / `f.sr.wav` triples that `evaluate --out` wrote (x3), remakes
sinc from the low-res file, and splits the metric (AP-BWE's LSD: `model.metrics`, n_fft 2048, hop
512, log10 power floored at 1e-8) by:
- frame: pauses (the original's frame more than 50 dB under the item's loudest, digital silence
  included) against speech;
- band: 0-8, 8-12, 12-16, 16-20, 20-24 kHz, as the mean squared log10-power difference per bin
  (the quantity under LSD's root);
- item: each item's LSD for the model and sinc, and where the original's band really ends
  (`model.audio.bandwidth`).
Then LSD with one error removed at a time: the model's output with the original's energy per
1 kHz band and frame (its fine structure kept: the envelope's share), that and the original's
6-8 kHz (the benchmark low-pass's transition band, which the shipped net keeps as the input has
it), and with the output above
the original's own band end set to nothing (what writing a band the original lacks costs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio, metrics  # noqa: E402

RATE, SCALE = 48000, 3
BANDS_HZ = (0, 8000, 12000, 16000, 20000, 24001)
PAUSE_DB = 50.0
FREQS = np.arange(metrics.N_FFT // 2 + 1) * RATE / metrics.N_FFT


def log_power(z: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(np.abs(z) ** 2, 1e-8))


def with_true_envelope(made: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """`made` above 8 kHz scaled to `truth`'s energy per 1 kHz band and frame."""
    out = made.copy()
    for low in range(8000, 24000, 1000):
        band = (FREQS >= low) & (FREQS < low + 1000) if low < 23000 else FREQS >= low
        gain = (np.abs(truth[:, band]) ** 2).sum(1) / ((np.abs(made[:, band]) ** 2).sum(1) + 1e-20)
        out[:, band] = made[:, band] * np.sqrt(gain)[:, None]
    return out


def lsd_of(truth: np.ndarray, made: np.ndarray) -> float:
    d = log_power(truth) - log_power(made)
    return float(np.mean(np.sqrt(np.mean(d**2, axis=1))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--min-band-khz", type=float, default=0.0, help="only items whose original reaches this"
    )
    args = parser.parse_args()

    rows, sums = [], {}
    for hr_path in sorted(args.folder.glob("*.hr.wav")):
        stem = hr_path.name[: -len(".hr.wav")]
        hr, _ = audio.load(hr_path)
        lr, _ = audio.load(args.folder / f"{stem}.lr.wav")
        sr, _ = audio.load(args.folder / f"{stem}.sr.wav")
        hr, sr = audio.to_mono(hr), audio.to_mono(sr)
        outputs = {"model": sr, "sinc": audio.sinc(audio.to_mono(lr), SCALE)}
        n = min(len(hr), *(len(x) for x in outputs.values()))
        truth = metrics.stft(hr[:n])
        level = 10 * np.log10((np.abs(truth) ** 2).sum(1) + 1e-20)
        pause = level < level.max() - PAUSE_DB
        band_end = audio.bandwidth(hr, RATE)
        if band_end < args.min_band_khz * 1000:
            continue
        row = {"item": stem, "band_end_khz": band_end / 1000, "pause_share": pause.mean()}
        for name, x in outputs.items():
            made = metrics.stft(x[:n])
            d2 = (log_power(truth) - log_power(made)) ** 2
            frame_lsd = np.sqrt(d2.mean(1))
            row[name] = frame_lsd.mean()
            row[f"{name}_pause_part"] = frame_lsd[pause].sum() / len(frame_lsd)
            for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:], strict=True):
                band = (FREQS >= lo) & (FREQS < hi)
                for kind, frames in (("speech", ~pause), ("pause", pause)):
                    key = (name, kind, lo)
                    total, count = sums.get(key, (0.0, 0))
                    sums[key] = (
                        total + d2[frames][:, band].sum(),
                        count + d2[frames][:, band].size,
                    )
            if name == "model":
                row["model_true_envelope"] = lsd_of(truth, with_true_envelope(made, truth))
                # ... and the original's 6-8 kHz, where the benchmark's low-pass cuts the input.
                gap = made.copy()
                gap[:, (FREQS >= 6000) & (FREQS < 8000)] = truth[
                    :, (FREQS >= 6000) & (FREQS < 8000)
                ]
                row["model_true_envelope_and_gap"] = lsd_of(truth, with_true_envelope(gap, truth))
                cut = made.copy()
                cut[:, FREQS > band_end] = 0
                row["model_cut_at_band_end"] = lsd_of(truth, cut)
        rows.append(row)

    print(f"{len(rows)} items from {args.folder}")
    print("\nmean squared log10-power difference per bin (the quantity under LSD's root)")
    print(
        f"{'':16}"
        + "".join(
            f"{f'{lo // 1000}-{hi // 1000}k':>9}"
            for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:], strict=True)
        )
    )
    for name in ("model", "sinc"):
        for kind in ("speech", "pause"):
            cells = [
                sums[(name, kind, lo)][0] / max(sums[(name, kind, lo)][1], 1)
                for lo in BANDS_HZ[:-1]
            ]
            print(f"{name + ' ' + kind:16}" + "".join(f"{c:9.3f}" for c in cells))
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    print(f"\npause frames: {mean('pause_share'):.1%} of frames")
    for name in ("model", "sinc"):
        print(
            f"{name}: LSD {mean(name):.3f}, of which pause frames {mean(name + '_pause_part'):.3f}"
        )
    print(
        f"model with the true energy per 1 kHz band and frame: LSD {mean('model_true_envelope'):.3f}"
    )
    print(
        "... and with the original's 6-8 kHz (the low-pass's transition band): LSD "
        f"{mean('model_true_envelope_and_gap'):.3f}"
    )
    print(
        f"model with nothing above the original's band end: LSD {mean('model_cut_at_band_end'):.3f}"
    )
    print(
        "ratio sinc/model: as is {:.2f}, true envelope {:.2f}, and 6-8 kHz {:.2f}, cut at band end {:.2f}".format(
            mean("sinc") / mean("model"),
            mean("sinc") / mean("model_true_envelope"),
            mean("sinc") / mean("model_true_envelope_and_gap"),
            mean("sinc") / mean("model_cut_at_band_end"),
        )
    )
    print("\nper item: band end (kHz), pause share, LSD model / sinc / ratio")
    for r in sorted(rows, key=lambda r: r["band_end_khz"]):
        print(
            f"{r['item'][:40]:40} {r['band_end_khz']:5.1f} {r['pause_share']:5.1%} "
            f"{r['model']:6.3f} {r['sinc']:6.3f} {r['sinc'] / r['model']:5.2f}"
        )
    for lo, hi in ((0, 20), (20, 25)):
        sel = [r for r in rows if lo <= r["band_end_khz"] < hi]
        if sel:
            m = np.mean([r["model"] for r in sel])
            s = np.mean([r["sinc"] for r in sel])
            print(
                f"items whose band ends at {lo}-{hi} kHz: {len(sel)}, model {m:.3f}, "
                f"sinc {s:.3f}, ratio {s / m:.2f}"
            )


if __name__ == "__main__":
    main()
