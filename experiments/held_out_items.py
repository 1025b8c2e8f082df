"""The shipped models scored on validation items that no choice was made on.

    .venv/bin/python experiments/held_out_items.py --scale 4 --models spectral-x4,tfilm-x4
    .venv/bin/python experiments/held_out_items.py --scale 2 --models spectral-x2,audiounet-x2

spectral-x4's epoch and written-band level, and spectral-x2's, were chosen on `evaluate --join 4
--limit 24` items, and the model card reports `--limit 48`; both are evenly spread over the same
164 joined items of the 6 validation voices, so the card's figures may carry a little of the
choice. This scores every model given, spline and sinc (and the original's DNSMOS and DistillMOS)
on the items that neither `--limit 24` nor `--limit 48` takes (`--limit N` of those, evenly
spread), with the same low-pass, metrics and table as `python -m model evaluate`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio, metrics  # noqa: E402
from model.cli import (  # noqa: E402
    _file_scores,
    _load_group,
    comparisons,
    evenly,
    format_table,
    joined,
    list_files,
)
from model.inference import Upsampler  # noqa: E402


def held_out_groups(files: str, join: float, chosen_on: tuple[int, ...]) -> list[list[Path]]:
    """The joined items that none of `evaluate --limit N` (N in `chosen_on`) takes."""
    groups = joined(list_files(files), join)
    taken = {id(group) for n in chosen_on for group in evenly(groups, n)}
    return [group for group in groups if id(group) not in taken]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="data/val_wavs")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--models", required=True, help="comma-separated checkpoints")
    parser.add_argument("--filter", default="cheby8")
    parser.add_argument("--join", type=float, default=4)
    parser.add_argument("--limit", type=int, default=None, help="this many held-out items")
    parser.add_argument("--out", type=Path, default=None, help="write results.json here")
    args = parser.parse_args()

    groups = evenly(held_out_groups(args.files, args.join, (24, 48)), args.limit)
    nets = [Upsampler.load(name, scale=args.scale, device="cpu") for name in args.models.split(",")]
    rate = nets[0].output_rate
    rows = []
    for group in tqdm(groups, desc=f"held-out x{args.scale} {args.filter}"):
        hr = _load_group(group, rate)
        hr = hr[: len(hr) - len(hr) % args.scale]
        lr = audio.lowres(hr, args.scale, args.filter)
        outputs = {net.name: net(lr)[0] for net in nets}
        outputs.update(spline=audio.spline(lr, args.scale), sinc=audio.sinc(lr, args.scale))
        rows.append(_file_scores(hr, outputs, args.scale, perceptual=True))
    table = {name: metrics.mean_scores([row[name] for row in rows]) for name in rows[0]}
    voices = sorted({group[0].parent.name for group in groups})
    for net in nets:
        result = {
            "checkpoint": net.name,
            "scale": args.scale,
            "filter": args.filter,
            "files": len(groups),
            "joined_s": args.join,
            "voices": voices,
            "table": table,
            **comparisons(table, net.name),
        }
        print(format_table(result))
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{net.name}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
