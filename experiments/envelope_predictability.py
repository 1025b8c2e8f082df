"""How predictable is a frame's energy above 2 kHz from the band below it? Linear and MLP baselines.

    .venv/bin/python experiments/envelope_predictability.py --data data
    .venv/bin/python experiments/envelope_predictability.py --data data-g722 --mlp

Fits least squares from the log energies of sixteen 125 Hz bands up to 2 kHz, over 11 frames
(+-5, STFT 512 / 128 at 16 kHz), to the log energy of each 1 kHz band from 2 to 8 kHz, on 3,000
training patches; then prints its mean |error| on every third validation file (active frames:
the 150-1900 Hz band within 30 dB of the file's loudest frame), over all and per validation voice
with the voice's bias and the error left once that bias is removed. A net that predicts the high
band's envelope should beat this; the recording chain's share of the error is the bias.

With `--mlp` the predictor is a small MLP (two hidden layers of 256, L1: the median) on the log
power of every bin from 62 Hz to 2 kHz over the same frames, so it can use harmonicity and
noisiness, not only band levels: does a nonlinear map of the band below pin the envelope down?
`--scale 2` does the same from 4 kHz up (the x2 input's Nyquist); `--speed` trains on patches
resampled by 20/18 ... 20/22 (formants and pitch shifted by up to 10 %): more voices, in effect.

"training voices" is the fit on the frames it was fitted to; "training voices, held out" is its
error on training patches it never saw (blocks of 50 consecutive patches, one block in five, so
no held-out patch overlaps a fitted one but at a block's edge): the same voices and recording
chains, other words. If that is as large as the validation voices' error, more voices would not
narrow it. `--voices K` fits on K training voices only (drawn by `--seed`; needs the manifest's
`group_patches`): how the error on unseen voices falls with the number of voices heard.
`--eq` fits on patches through a random recording chain (`chain_eq`): more recording set-ups, in
effect, if a chain were a smooth tilt and shelf.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio  # noqa: E402

N_FFT, HOP, CONTEXT = 512, 128, 5
WINDOW = torch.hann_window(N_FFT, dtype=torch.float64)


def bands(
    x: np.ndarray, fine: bool = False, nyquist: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low: 125 Hz band energies, or with `fine` every bin's power, from 62 Hz to the input's
    Nyquist, bin `nyquist`; high: 1 kHz band energies above it) in dB [bands x F], and the
    active-frame mask."""
    x = torch.from_numpy(np.asarray(x, dtype=np.float64))
    power = torch.stft(x, N_FFT, HOP, window=WINDOW, return_complex=True).abs().numpy() ** 2
    db = lambda rows: 10 * np.log10(rows.sum(0) + 1e-10)  # noqa: E731
    width = 1 if fine else 4
    low = np.stack([db(power[b : b + width]) for b in range(2, nyquist, width)])
    high = np.stack([db(power[b : b + 32]) for b in range(nyquist, 256, 32)])
    level = db(power[5 : nyquist - 4])
    return low, high, level > level.max() - 30


def with_context(low: np.ndarray) -> np.ndarray:
    """[16 x F] -> [F x 16 (2 CONTEXT + 1) + 1]: the frames around each, edges repeated, and 1."""
    frames = low.shape[1]
    padded = np.pad(low, ((0, 0), (CONTEXT, CONTEXT)), mode="edge")
    stacked = [padded[:, i : i + frames] for i in range(2 * CONTEXT + 1)]
    return np.concatenate(stacked + [np.ones((1, frames))]).T


def fit_mlp(inputs: np.ndarray, targets: np.ndarray, steps: int = 4000):
    """A two-hidden-layer MLP fitted by Adam to the median (L1); returns predict(inputs)."""
    torch.manual_seed(0)
    x, y = torch.from_numpy(inputs).float(), torch.from_numpy(targets).float()
    mean, std = x.mean(0), x.std(0) + 1e-3
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], 256),
        torch.nn.GELU(),
        torch.nn.Linear(256, 256),
        torch.nn.GELU(),
        torch.nn.Linear(256, y.shape[1]),
    )
    with torch.no_grad():
        net[-1].bias.copy_(y.median(0).values)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        batch = torch.from_numpy(rng.integers(0, len(x), 512))
        loss = (net((x[batch] - mean) / std) - y[batch]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net((torch.from_numpy(z).float() - mean) / std).double().numpy()

    return predict


def chain_eq(x: np.ndarray, rng: np.random.Generator, sr: int = 16000) -> np.ndarray:
    """x through a random smooth EQ, as a microphone, room or codec colours a recording: a tilt
    of -3 ... +3 dB per octave about 1 kHz and a shelf of -12 ... +6 dB from a corner at 2-6 kHz
    (a dull microphone or a codec's roll-off is commoner than a bright one); the same filter on
    the band below and the band above."""
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    octaves = np.log2(np.maximum(freqs, 50) / 1000)
    corner = np.log2(rng.uniform(2000, 6000) / 1000)
    shelf = rng.uniform(-12, 6) / (1 + np.exp(-(octaves - corner) * 4))
    gain_db = rng.uniform(-3, 3) * octaves + shelf
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (gain_db / 20), len(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--patches", type=int, default=3000)
    parser.add_argument("--mlp", action="store_true", help="an MLP on every bin's log power")
    parser.add_argument("--scale", type=int, default=4, help="4: from 2 kHz up; 2: from 4 kHz")
    parser.add_argument(
        "--speed", action="store_true", help="train on patches sped up or slowed by 5 or 10 %%"
    )
    parser.add_argument("--eq", action="store_true", help="fit through random recording chains")
    parser.add_argument("--voices", type=int, default=0, help="fit on this many voices only")
    parser.add_argument("--seed", type=int, default=0, help="which --voices are drawn")
    args = parser.parse_args()
    nyquist = 256 // args.scale
    hr = np.load(args.data / "train_hr.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    index = np.arange(len(hr))
    held = index // 50 % 5 == 2
    chosen = np.ones(len(hr), dtype=bool)
    if args.voices:
        counts = json.loads((args.data / "manifest.json").read_text())["splits"]["train"]
        names = list(counts["group_patches"])
        voice = np.searchsorted(np.cumsum(list(counts["group_patches"].values())), index, "right")
        picked = np.random.default_rng(args.seed).choice(len(names), args.voices, replace=False)
        print("voices:", ", ".join(sorted(names[v] for v in picked)))
        chosen = np.isin(voice, picked)
    fitted, held = ~held & chosen, held & chosen
    inputs, targets = [], []
    for i in rng.choice(index[fitted], min(args.patches, int(fitted.sum())), replace=False):
        x = np.asarray(hr[i], dtype=np.float64)
        if args.speed and (k := int(rng.choice([18, 19, 20, 21, 22]))) != 20:
            x = signal.resample_poly(x, 20, k)  # formants and pitch shift by 20 / k
        if args.eq:
            x = chain_eq(x, rng)
        low, high, active = bands(x, args.mlp, nyquist)
        inputs.append(with_context(low)[active])
        targets.append(high.T[active])
    inputs, targets = np.concatenate(inputs), np.concatenate(targets)
    held_inputs, held_targets = [], []
    for i in rng.choice(index[held], min(1000, int(held.sum())), replace=False):
        low, high, active = bands(np.asarray(hr[i], dtype=np.float64), args.mlp, nyquist)
        held_inputs.append(with_context(low)[active])
        held_targets.append(high.T[active])
    if args.mlp:
        predict = fit_mlp(inputs, targets)
    else:
        beta = np.linalg.lstsq(inputs, targets, rcond=None)[0]
        predict = lambda z: z @ beta  # noqa: E731
    fit = np.abs(predict(inputs) - targets).mean(0)
    print(
        f"{len(inputs)} training frames; mean |error| per 1 kHz band, {8 // args.scale}-8 kHz (dB):"
    )
    print(f"  training voices   {fit.round(1)}")
    held_error = predict(np.concatenate(held_inputs)) - np.concatenate(held_targets)
    print(f"  ... held out      {np.abs(held_error).mean(0).round(1)}")
    by_voice = defaultdict(list)
    for path in sorted((args.data / "val_wavs").glob("*/*.wav"))[::3]:
        low, high, active = bands(audio.load(path)[0][0], args.mlp, nyquist)
        by_voice[path.parent.name].append((predict(with_context(low)) - high.T)[active])
    every = np.concatenate([e for errors in by_voice.values() for e in errors])
    print(f"  validation voices {np.abs(every).mean(0).round(1)}")
    for voice, errors in by_voice.items():
        e = np.concatenate(errors)
        print(
            f"  {voice:<18} bias {e.mean(0).round(1)}  |error| {np.abs(e).mean(0).round(1)}"
            f"  without the bias {np.abs(e - e.mean(0)).mean(0).round(1)}"
        )


if __name__ == "__main__":
    main()
