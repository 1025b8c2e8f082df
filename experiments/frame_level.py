"""Can the written band's level frame by frame be predicted from the band below, on voices never
heard, well enough that listeners hear it?

    .venv/bin/python -m model evaluate --checkpoint spectral-x4 --files data-wide/val_wavs \
        --scale 4 --join 4 --voice-items 6 --no-perceptual --out eval/wide6-spectral-x4
    .venv/bin/python experiments/frame_level.py eval/wide6-spectral-x4 --data data-wide --items 69

`envelope_parts.py` found that of the generator's envelope error at x4 the frame error (the
whole written band too loud or too quiet in a frame, about its own mean over the file) is what
DistillMOS hears most. Here a small MLP learns that swing alone: the high band's (2-8 kHz)
energy per frame less its mean over the speech frames of a 4 s segment, from the input's log
spectrum below 1.6 kHz (11 frames of context, each bin less the segment's mean frame level), on
4 s segments of every training voice of `--data` (rebuilt from its patches, which overlap by
half), cheby8 low-pass as in `evaluate`. Then, on each validation item of the folder, the
output's band is rescaled frame by frame (speech frames only) so its energy follows the
prediction about the output's own mean (its level over the file and its shape across bands stay
the net's). Prints the swing's error (std, dB, speech frames) of the net and of the predictor on
the training segments' held-out tenth and on the validation items, then WB-PESQ, LSD, DNSMOS
P.808 and DistillMOS of the output as it is, with the predicted swing (and that swing x0.75),
with the true swing (the `envelope_parts.py` row "less its frame error"), and sinc.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from envelope_budget import band_db, impose  # noqa: E402
from spectral_diagnosis import interpolated, istft, stft  # noqa: E402

from model import audio, metrics  # noqa: E402

FIRST = 64  # bin of 2 kHz (512-point STFT at 16 kHz): the written band at x4
LOW = slice(1, 52)  # 31 Hz .. 1.6 kHz: the input's band under cheby8's cutoff
CONTEXT = 5  # frames each side
SEGMENT = 4 * 16000


def frame_db(power: torch.Tensor) -> np.ndarray:
    return 10 * np.log10(power.sum(0).numpy() + 1e-12)


def features(hr: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[F x 11*51] input features from the interpolated input `up`, [F] true swing (dB), [F]
    speech-frame mask of one segment."""
    low = stft(up)[LOW].abs() ** 2
    low_db = 10 * np.log10(low.numpy() + 1e-10)
    level = frame_db(low)
    active = level > level.max() - 30
    low_db = low_db - level[active].mean()
    padded = np.pad(low_db, ((0, 0), (CONTEXT, CONTEXT)), mode="edge")
    x = np.stack([padded[:, i : i + low_db.shape[1]] for i in range(2 * CONTEXT + 1)])
    x = x.transpose(2, 0, 1).reshape(low_db.shape[1], -1)
    high = frame_db(stft(hr)[FIRST:].abs() ** 2)
    return x.astype(np.float32), (high - high[active].mean()).astype(np.float32), active


def training_segments(data: Path, per_voice: int) -> list[np.ndarray]:
    """Up to `per_voice` 4 s segments of each training voice, evenly spread through it."""
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["stride"] * 2 == manifest["patch"] and manifest["rate"] == 16000
    rows = np.load(data / "train_hr.npy", mmap_mode="r")
    segments, start = [], 0
    for count in manifest["splits"]["train"]["group_patches"].values():
        stream = np.asarray(rows[start : start + count : 2]).reshape(-1)
        start += count
        cuts = len(stream) // SEGMENT
        for i in np.unique(np.linspace(0, cuts - 1, min(per_voice, cuts)).round().astype(int)):
            segments.append(stream[i * SEGMENT : (i + 1) * SEGMENT].astype(np.float64))
    return segments


def fit(x: np.ndarray, y: np.ndarray, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(x.shape[1], 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 1)
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-5)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    steps = 4000
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(xt), (512,), generator=g)
        loss = (net(xt[idx])[:, 0] - yt[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def with_swing(made: torch.Tensor, swing: np.ndarray, active: np.ndarray) -> torch.Tensor:
    """`made` with its band's energy per speech frame set to its own mean + `swing`."""
    m = band_db(made, FIRST)
    own = frame_db(made[FIRST:].abs() ** 2)
    shift = np.where(active, own[active].mean() + swing - own, 0.0)
    return impose(made, m + shift[None], FIRST)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="an x4 `evaluate --out` folder")
    parser.add_argument("--data", type=Path, default=Path("data-wide"))
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--per-voice", type=int, default=40)
    args = parser.parse_args()
    segments = training_segments(args.data, args.per_voice)
    xs, ys = [], []
    for hr in segments:
        x, y, active = features(hr, interpolated(audio.lowres(hr, 4, "cheby8"), 4, len(hr)))
        xs.append(x[active])
        ys.append(y[active])
    held = np.arange(len(xs)) % 10 == 0
    x_fit = np.concatenate([x for x, h in zip(xs, held, strict=True) if not h])
    y_fit = np.concatenate([y for y, h in zip(ys, held, strict=True) if not h])
    net = fit(x_fit, y_fit)
    with torch.no_grad():
        x_held = np.concatenate([x for x, h in zip(xs, held, strict=True) if h])
        y_held = np.concatenate([y for y, h in zip(ys, held, strict=True) if h])
        held_err = (net(torch.from_numpy(x_held))[:, 0].numpy() - y_held).std()
    print(
        f"{len(segments)} training segments of 4 s, {len(x_fit)} speech frames fitted; swing "
        f"error on the held-out tenth {held_err:.2f} dB (swing std {y_held.std():.2f} dB)"
    )
    table: dict[str, list] = {}
    errors = {"net": [], "predictor": []}
    for hr_path in sorted(args.folder.glob("*.hr.wav"))[: args.items]:
        hr = audio.load(hr_path)[0][0].astype(np.float64)
        sr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".sr.")))[0][0]
        lr = audio.load(hr_path.with_name(hr_path.name.replace(".hr.", ".lr.")))[0][0]
        n = min(len(hr), len(sr))
        hr, sr = hr[:n], sr[:n].astype(np.float64)
        sinc = interpolated(lr.astype(np.float64), 4, n)
        x, true_swing, active = features(hr, sinc)
        with torch.no_grad():
            swing = net(torch.from_numpy(x))[:, 0].numpy()
        made = stft(sr)
        own = frame_db(made[FIRST:].abs() ** 2)
        errors["net"].append((own - own[active].mean() - true_swing)[active])
        errors["predictor"].append((swing - true_swing)[active])
        versions = {
            "as it is": sr,
            "predicted swing": istft(with_swing(made, swing, active), n),
            "predicted swing x0.75": istft(with_swing(made, 0.75 * swing, active), n),
            "true swing": istft(with_swing(made, true_swing, active), n),
            "sinc": sinc,
        }
        for name, y in versions.items():
            row = (
                metrics.wb_pesq(hr, y),
                metrics.lsd(hr, y),
                metrics.dnsmos(y)["dnsmos_p808"],
                metrics.distillmos(y),
            )
            table.setdefault(name, []).append(row)
    print(
        f"{len(table['sinc'])} items from {args.folder}: swing error std, speech frames: net "
        f"{np.concatenate(errors['net']).std():.2f} dB, predictor "
        f"{np.concatenate(errors['predictor']).std():.2f} dB"
    )
    for name, rows in table.items():
        pesq, lsd, p808, distill = np.mean(rows, axis=0)
        print(
            f"  {name:<24} WB-PESQ {pesq:.3f}  LSD {lsd:.3f}  DNSMOS P.808 {p808:.3f}  "
            f"DistillMOS {distill:.3f}"
        )


if __name__ == "__main__":
    main()
