"""Write N seconds of real validation speech, low-passed to 16 kHz / scale, for timing `upsample`.

Usage: .venv/bin/python scripts/speech_300s.py OUT.wav [--seconds 300] [--scale 4] [--data data]
"""

import argparse
from pathlib import Path

import numpy as np

from model import audio
from model.registry import OUTPUT_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--data", type=Path, default=Path("data"))
    args = parser.parse_args()
    rate = OUTPUT_RATE
    need = int(args.seconds * rate)
    clips, total = [], 0
    for path in sorted((args.data / "val_wavs").rglob("*.wav")):
        x, clip_rate = audio.load(path)
        clips.append(audio.resample(x[0], clip_rate, rate))
        total += len(clips[-1])
        if total >= need:
            break
    speech = np.concatenate(clips)[:need]
    if len(speech) < need:
        raise SystemExit(f"only {len(speech) / rate:.0f} s of validation speech in {args.data}")
    audio.save(args.out, audio.lowres(speech, args.scale), rate // args.scale)
    print(f"{args.out}: {len(speech) / rate:.0f} s at {rate // args.scale} Hz")


if __name__ == "__main__":
    main()
