"""`python -m model {upsample,prepare,train,evaluate,average,ship,bench}`: the command line of the model package."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("upsample", help="IN at rate s -> OUT at rate s*scale")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--checkpoint", default=None, help="path, shipped name, or 'spline'")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])

    p = sub.add_parser("prepare", help="corpus -> split HR/LR patches in OUT")
    p.add_argument("--corpus", default="debian", help="'debian' or a folder of audio")
    p.add_argument("--out", type=Path, default=Path("data"))
    p.add_argument("--patch", type=int, default=8192)
    p.add_argument("--stride", type=int, default=4096)
    p.add_argument("--val-fraction", type=float, default=0.15)

    p = sub.add_parser("train", help="train a net on prepared data")
    p.add_argument("--data", type=Path, default=Path("data"))
    p.add_argument("--model", default="audiounet", choices=["audiounet", "tfilm", "dnn", "tiny"])
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--steps-per-epoch", type=int, default=None)
    p.add_argument("--stft-weight", type=float, default=0.1)
    p.add_argument("--loss", default="mse", choices=["mse", "snr"], help="waveform loss term")
    p.add_argument("--init", default=None, help="fine-tune from this checkpoint (path or name)")
    p.add_argument(
        "--select", default="merit", choices=["merit", "snr"], help="how the kept epoch is chosen"
    )
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument(
        "--speed", type=float, default=0.0, help="fraction of patches speed-perturbed by +-10%%"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("evaluate", help="model vs spline vs sinc on high-res files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--files", required=True, help="a folder, an audio file, or a text file listing files"
    )
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--filter", default="cheby8", help="low-pass that makes the low-res input")
    p.add_argument(
        "--out", type=Path, default=None, help="write f.hr/lr/sr.wav and results.json here"
    )
    p.add_argument("--device", default="auto")

    p = sub.add_parser("average", help="average a run's epoch weights (SWA) into a new run folder")
    p.add_argument("run", type=Path, help="a training run folder (holding epochs/NNN.safetensors)")
    p.add_argument("--first", type=int, required=True, help="first epoch to average")
    p.add_argument("--last", type=int, default=None, help="last epoch to average (default: all)")
    p.add_argument("--data", type=Path, default=Path("data"), help="for validating the average")
    p.add_argument("--out", type=Path, required=True)

    p = sub.add_parser("ship", help="copy a run's best checkpoint into model/checkpoints/")
    p.add_argument("run", type=Path, help="a training run folder (holding best.safetensors)")
    p.add_argument("name", help="file name stem under model/checkpoints/")
    p.add_argument("--default", action="store_true", help="the default for its rate and scale")

    p = sub.add_parser("bench", help="x real time of the shipped models (JSON)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--scale", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from model import cli

    try:
        if args.command == "upsample":
            print(
                json.dumps(
                    cli.upsample(
                        args.input,
                        args.output,
                        scale=args.scale,
                        checkpoint=args.checkpoint,
                        device=args.device,
                    )
                )
            )
        elif args.command == "prepare":
            from model.data import prepare

            manifest = prepare(
                args.corpus,
                args.out,
                patch=args.patch,
                stride=args.stride,
                val_fraction=args.val_fraction,
            )
            print(json.dumps(manifest["splits"], indent=2))
        elif args.command == "train":
            from model.train import train

            train(
                args.data,
                args.out,
                model=args.model,
                scale=args.scale,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                steps_per_epoch=args.steps_per_epoch,
                stft_weight=args.stft_weight,
                loss=args.loss,
                init=args.init,
                select=args.select,
                max_minutes=args.max_minutes,
                speed=args.speed,
                device=args.device,
            )
        elif args.command == "evaluate":
            cli.evaluate(
                args.checkpoint,
                args.files,
                scale=args.scale,
                out=args.out,
                filter=args.filter,
                device=args.device,
            )
        elif args.command == "average":
            from model.train import average

            result = average(args.run, args.out, data=args.data, first=args.first, last=args.last)
            print(json.dumps(result))
        elif args.command == "ship":
            print(json.dumps(cli.ship(args.run, args.name, default=args.default)))
        elif args.command == "bench":
            print(
                json.dumps(
                    cli.bench(device=args.device, seconds=args.seconds, scale=args.scale), indent=2
                )
            )
    except (LookupError, ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
