"""Write some clips of each training voice as wavs, as `prepare` writes the validation voices'
(`val_wavs/<voice>/`), so `evaluate` can score a model on voices it was trained on: a level
calibrated there is not chosen on the validation voices.

    .venv/bin/python experiments/train_items.py data-fb --per-voice 24   # -> data-fb/train_wavs/
    .venv/bin/python -m model evaluate --checkpoint spectral-x3 --files data-fb/train_wavs \
        --scale 3 --join 4 --voice-items 6 --no-perceptual --out eval/x3-train

Reads the corpus and rate from the folder's `manifest.json`, takes the files of each training
voice it kept (the same decoding, trimming, clipping and bandwidth checks as `prepare`), and
writes at most `--per-voice` of them, evenly spread through the voice's files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio, data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a `prepare --out` folder")
    parser.add_argument("--per-voice", type=int, default=24)
    args = parser.parse_args()
    manifest = json.loads((args.folder / "manifest.json").read_text())
    corpus, rate = manifest["corpus"], manifest["rate"]
    groups = data.corpus_groups(corpus, args.folder)
    out = args.folder / "train_wavs"
    shutil.rmtree(out, ignore_errors=True)
    train = manifest["splits"]["train"]
    for group in train["groups"]:
        if not train["voices"][group]["files"]:
            continue
        pairs, _ = data.voice_clips(groups[group], data.is_checked(corpus, rate), rate)
        picks = np.unique(np.linspace(0, len(pairs) - 1, min(args.per_voice, len(pairs))).round())
        (out / group).mkdir(parents=True, exist_ok=True)
        for i in picks.astype(int):
            path, clip = pairs[i]
            audio.save(out / group / f"{path.stem}.wav", clip, rate)
        print(f"{group}: {len(picks)} of {len(pairs)} files", flush=True)


if __name__ == "__main__":
    main()
