"""Each voice's long-term spectrum, and the recordings that two voices share.

    .venv/bin/python experiments/voice_spectra.py --data data

Prints, per training voice (40 of its patches, from the manifest's `group_patches`) and per
validation voice (every other clip), the mean power per 1 kHz band over active frames (within
30 dB of the loudest, 150-1900 Hz), in dB re the loudest 125 Hz-wide bin below 2 kHz; training
voices sorted by their 6-8 kHz level. Then the files that more than one voice holds (sha1 of the
unpacked Debian files): repeated voices, and whether any straddles the split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio  # noqa: E402
from model.data import debian_groups  # noqa: E402

WINDOW = torch.hann_window(512, dtype=torch.float64)


def active_power(x: np.ndarray) -> np.ndarray:
    """[257 x frames] power of the active frames (STFT 512 / 128 at 16 kHz)."""
    z = torch.stft(
        torch.from_numpy(x.astype(np.float64)), 512, 128, window=WINDOW, return_complex=True
    )
    power = z.abs().numpy() ** 2
    level = 10 * np.log10(power[5:60].sum(0) + 1e-12)
    return power[:, level > level.max() - 30]


def per_khz(power: np.ndarray) -> list[float]:
    ltas = 10 * np.log10(power.mean(1) + 1e-12)
    return [ltas[b : b + 32].mean() - ltas[4:64].max() for b in range(0, 256, 32)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args()
    splits = json.loads((args.data / "manifest.json").read_text())["splits"]
    hr = np.load(args.data / "train_hr.npy", mmap_mode="r")
    rows, start = [], 0
    for voice, count in splits["train"]["group_patches"].items():
        picked = range(start, start + count, max(1, count // 40))
        start += count
        bands = per_khz(np.concatenate([active_power(np.asarray(hr[i])) for i in picked], 1))
        rows.append((bands[6] + bands[7], voice, bands))
    print("dB per 1 kHz band, 0-1 ... 7-8 kHz")
    for _, voice, bands in sorted(rows):
        print(f"  train {voice:<24}" + " ".join(f"{v:6.1f}" for v in bands))
    for folder in sorted((args.data / "val_wavs").iterdir()):
        clips = sorted(folder.glob("*.wav"))[::2]
        power = np.concatenate([active_power(audio.load(p)[0][0]) for p in clips], 1)
        print(f"  val   {folder.name:<24}" + " ".join(f"{v:6.1f}" for v in per_khz(power)))
    voices_of = defaultdict(set)
    for voice, paths in debian_groups(args.data / "unpacked").items():
        for path in paths:
            voices_of[hashlib.sha1(path.read_bytes()).hexdigest()].add(voice)
    shared = defaultdict(int)
    for voices in voices_of.values():
        if len(voices) > 1:
            shared[tuple(sorted(voices))] += 1
    validation = set(splits["val"]["groups"])
    print("files held by more than one voice:")
    for voices, n in sorted(shared.items(), key=lambda item: -item[1]):
        straddles = " (a validation voice!)" if validation & set(voices) else ""
        print(f"  {n:3d}  {', '.join(voices)}{straddles}")


if __name__ == "__main__":
    main()
