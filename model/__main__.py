"""`python -m model {upsample,prepare,train,evaluate,average,ship,bench}`: the command line of the model package."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import MISSING, fields
from pathlib import Path

DEVICE = ("--device", dict(default="auto", choices=["auto", "cpu", "cuda"]))


def _upsample(**kw):
    from model import cli

    return cli.upsample(kw.pop("input"), kw.pop("output"), **kw)


def _prepare(**kw):
    from model.data import prepare

    manifest = prepare(kw.pop("corpus"), kw.pop("out"), **kw)
    return {split: manifest["splits"][split]["hours"] for split in manifest["splits"]} | {
        "packages": manifest["packages"]
    }


def _train(**kw):
    from model.train import train

    train(kw.pop("data"), kw.pop("out"), **kw)


def _evaluate(**kw):
    from model import cli

    cli.evaluate(kw.pop("checkpoint"), kw.pop("files"), **kw)


def _average(**kw):
    from model.train import average

    return average(kw.pop("run"), kw.pop("out"), **kw)


def _ship(**kw):
    from model import cli

    return cli.ship(kw.pop("run"), kw.pop("name"), **kw)


def _bench(**kw):
    from model import cli

    return cli.bench(**kw)


def train_options() -> list[tuple[str, dict]]:
    """One option per `TrainConfig` field: its default, type, help and choices from the code."""
    from model.train import TrainConfig

    options = []
    for f in fields(TrainConfig):
        help = f.metadata["help"].replace("%", "%%")
        if f.type == "bool":  # a switch: present or not
            options.append((f"--{f.name.replace('_', '-')}", dict(action="store_true", help=help)))
            continue
        kind = int if f.type.startswith("int") else float if f.type.startswith("float") else str
        spec = dict(type=kind, default=f.default, help=help)
        if f.metadata["choices"]:
            spec["choices"] = sorted(f.metadata["choices"])
        assert f.default is not MISSING, f.name
        options.append((f"--{f.name.replace('_', '-')}", spec))
    return options


# command: (help, [(flag or name, argparse keywords)] or a function that lists them when the parser
# is built, handler whose result is printed as JSON)
COMMANDS = {
    "upsample": (
        "IN -> OUT with the high band restored",
        [
            ("input", {}),
            ("output", {}),
            (
                "--scale",
                dict(type=int, default=None, help="default: chosen by the input's bandwidth"),
            ),
            ("--checkpoint", dict(default=None, help="path, shipped name, or 'spline'")),
            (
                "--output-rate",
                dict(
                    default="model",
                    choices=["model", "input", "48000"],
                    help="'input': write at the input file's rate when that is higher; "
                    "'48000': full band, through the 16 -> 48 kHz model after a 16 kHz one",
                ),
            ),
            DEVICE,
        ],
        _upsample,
    ),
    "prepare": (
        "corpus -> split HR/LR patches in OUT",
        [
            (
                "--corpus",
                dict(
                    default="debian",
                    help="'debian', 'debian+g722', 'wide' (more packages, checked voices) or a "
                    "folder of audio",
                ),
            ),
            (
                "--rate",
                dict(type=int, default=16000, help="16000, or 48000 for full-band data"),
            ),
            ("--out", dict(type=Path, default=Path("data"))),
            ("--patch", dict(type=int, default=8192)),
            ("--stride", dict(type=int, default=4096)),
            ("--val-fraction", dict(type=float, default=0.15)),
        ],
        _prepare,
    ),
    "train": (
        "train a net on prepared data",
        lambda: [
            ("--data", dict(type=Path, default=Path("data"))),
            ("--out", dict(type=Path, required=True)),
            *train_options(),
        ],
        _train,
    ),
    "evaluate": (
        "model vs spline vs sinc on high-res files",
        [
            ("--checkpoint", dict(required=True)),
            ("--files", dict(required=True, help="a folder, an audio file, or a list of files")),
            ("--scale", dict(type=int, default=4)),
            ("--filter", dict(default="cheby8", help="low-pass that makes the low-res input")),
            ("--out", dict(type=Path, default=None, help="write wavs, results.json, scores.csv")),
            ("--limit", dict(type=int, default=None, help="this many items, evenly spread")),
            ("--join", dict(type=float, default=None, help="join a folder's files to >= S s")),
            (
                "--voice-items",
                dict(type=int, default=None, help="at most N items of each voice (folder)"),
            ),
            (
                "--no-perceptual",
                dict(dest="perceptual", action="store_false", help="SNR and LSD only (fast)"),
            ),
            DEVICE,
        ],
        _evaluate,
    ),
    "average": (
        "average a run's epoch weights (SWA) into a new run folder",
        [
            ("run", dict(type=Path, help="a training run folder (holding epochs/NNN.safetensors)")),
            ("--first", dict(type=int, required=True, help="first epoch to average")),
            ("--last", dict(type=int, default=None, help="last epoch to average (default: all)")),
            ("--data", dict(type=Path, default=Path("data"), help="for validating the average")),
            ("--out", dict(type=Path, required=True)),
        ],
        _average,
    ),
    "ship": (
        "copy a run's best checkpoint into model/checkpoints/",
        [
            ("run", dict(type=Path, help="a training run folder (holding best.safetensors)")),
            ("name", dict(help="file name stem under model/checkpoints/")),
            ("--default", dict(action="store_true", help="the default for its rate and scale")),
            ("--scale", dict(type=int, default=None, help="a multi-rate net's scale to ship")),
            (
                "--written-gain-db",
                dict(type=float, default=None, help="a spectral net's level for its written band"),
            ),
            (
                "--crossover",
                dict(
                    type=float,
                    default=None,
                    help="a spectral net's kept band, as a fraction of the input's Nyquist",
                ),
            ),
        ],
        _ship,
    ),
    "bench": (
        "x real time of the shipped models (JSON)",
        [DEVICE, ("--seconds", dict(type=float, default=300)), ("--scale", dict(type=int))],
        _bench,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help, arguments, handler) in COMMANDS.items():
        command = sub.add_parser(name, help=help)
        for flag, spec in arguments() if callable(arguments) else arguments:
            command.add_argument(flag, **spec)
        command.set_defaults(handler=handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    del args["command"]
    handler = args.pop("handler")
    try:
        result = handler(**args)
    except (LookupError, ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result is not None:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
