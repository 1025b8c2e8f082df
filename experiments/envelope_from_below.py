"""Does a plain predictor of the high band's envelope from the band below beat the net's own?

    .venv/bin/python -m model evaluate --checkpoint CKPT --files data/val_wavs --scale 4 \
        --join 4 --limit 24 --no-perceptual --out eval/NAME
    .venv/bin/python experiments/envelope_from_below.py eval/NAME --data data-g722 --items 24 [--mlp]

The net's envelope error on unseen voices was no smaller than a least-squares map's from band
energies below the input's Nyquist (LOG.md), and larger at 2-4 kHz. Here that map (or
`envelope_predictability`'s MLP) is fitted on training patches as the product sees them (the
paper's low-pass, decimated, sinc-interpolated), predicts each 500 Hz band's energy per frame
(STFT 512 / 128 at 16 kHz) of every `evaluate --out` item from its `f.lr.wav`, and is imposed on
the net's fine structure (`envelope_budget.impose`) with a hedge of 0, -3, -6 dB, and as the mean
(in dB) of its and the net's. Frames more than 30 dB under the loudest below the Nyquist keep the
net's energy where it is lower. Prints WB-PESQ, LSD, ViSQOL and DNSMOS P.808 of each.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envelope_budget import band_db, impose  # noqa: E402
from envelope_predictability import bands, fit_mlp, with_context  # noqa: E402
from spectral_diagnosis import N_FFT, interpolated, istft, stft  # noqa: E402

from model import audio, metrics  # noqa: E402


def below(x: np.ndarray, first: int, fine: bool) -> tuple[np.ndarray, np.ndarray]:
    """(`envelope_predictability.bands`' features of the band below bin `first`, 11 frames;
    whether each frame is active)."""
    low, _, active = bands(x, fine, first)
    return with_context(low), active


def fit(data: Path, scale: int, patches: int, mlp: bool):
    """A predictor of `band_db` above the input's Nyquist from `below` of the sinc-interpolated
    low-res patch, fitted on the training voices' active frames."""
    first = N_FFT // 2 // scale
    hr = np.load(data / "train_hr.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    inputs, targets = [], []
    for i in rng.choice(len(hr), min(patches, len(hr)), replace=False):
        x = np.asarray(hr[i], dtype=np.float64)
        lr = audio.sinc(audio.lowres(x.astype(np.float32), scale, "cheby8"), scale)[: len(x)]
        features, active = below(lr.astype(np.float64), first, mlp)
        inputs.append(features[active])
        targets.append(band_db(stft(x), first).T[active])
    inputs, targets = np.concatenate(inputs), np.concatenate(targets)
    if mlp:
        return fit_mlp(inputs, targets)
    beta = np.linalg.lstsq(inputs, targets, rcond=None)[0]
    return lambda z: z @ beta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an `evaluate --out` folder")
    parser.add_argument("--data", type=Path, default=Path("data-g722"))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--patches", type=int, default=3000)
    parser.add_argument("--mlp", action="store_true")
    args = parser.parse_args()
    first = N_FFT // 2 // args.scale
    predict = fit(args.data, args.scale, args.patches, args.mlp)
    table: dict[str, list] = {}
    for hr_path in sorted(args.folder.glob("*.hr.wav"))[: args.items]:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        lr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".lr.")))[0][0]
        n = min(len(hr), len(sr))
        hr, sr = hr[:n], sr[:n].astype(np.float64)
        sinc = interpolated(lr, args.scale, n)
        made = stft(sr)
        net = band_db(made, first)
        features, active = below(sinc, first, args.mlp)
        predicted = predict(features).T[: net.shape[0]]
        # Where the input is near silence the predictor never trained; it must not add hiss.
        predicted = np.where(active, predicted, np.minimum(predicted, net))
        levels = {
            "the net's": net,
            "predicted": predicted,
            "predicted - 3 dB": predicted - 3,
            "predicted - 6 dB": predicted - 6,
            "mean of the net's and predicted": (net + predicted) / 2,
        }
        outs = {k: istft(impose(made, v, first), n) for k, v in levels.items()} | {"sinc": sinc}
        for name, y in outs.items():
            table.setdefault(name, []).append(
                (
                    metrics.lsd(hr, y),
                    metrics.wb_pesq(hr, y),
                    metrics.visqol(hr, y),
                    metrics.dnsmos(y)["dnsmos_p808"],
                )
            )
    print(f"{args.items} items from {args.folder}; {'MLP' if args.mlp else 'linear'} predictor")
    for name, rows in table.items():
        lsd, pesq, visqol, p808 = np.mean(rows, axis=0)
        print(
            f"  {name:<34} LSD {lsd:.3f}  WB-PESQ {pesq:.3f}  ViSQOL {visqol:.3f}"
            f"  DNSMOS P.808 {p808:.3f}"
        )


if __name__ == "__main__":
    main()
