"""The shipped models by input rate and scale, read from checkpoint headers without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
OUTPUT_RATE = 16000
SPLINE_SCALES = (2, 4)
# A detected bandwidth may stand a few per cent above the true edge (a filter's skirt), so a model
# whose input band is this much narrower still holds it.
BANDWIDTH_TOLERANCE = 1.08
# Input whose band reaches this fraction of the output's Nyquist has nothing left to add.
ALREADY_WIDE = 0.9


class AlreadyWide(ValueError):
    """The input's band is as wide as a model's output, or wider than every model's input."""


def read_header(path: str | Path) -> dict:
    """The string metadata of a safetensors file: its first 8 bytes give the JSON header's length."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(size)).get("__metadata__", {})


def available_models() -> list[dict]:
    """Shipped checkpoints (default first for each scale), then the spline baseline per scale.

    A file named `<name>.safetensors` is the default for its (input rate, scale) when its metadata
    says `"default": true` in the training record.
    """
    models = []
    for path in sorted(CHECKPOINT_DIR.glob("*.safetensors")):
        meta = read_header(path)
        rate, scale = int(meta["input_rate"]), int(meta["scale"])
        training = json.loads(meta.get("training", "{}"))
        models.append(
            {
                "name": path.stem,
                "input_rate": rate,
                "scale": scale,
                "output_rate": rate * scale,
                "arch": meta["class"],
                "path": str(path),
                "default": bool(training.get("default", False)),
            }
        )
    models.sort(key=lambda m: (m["scale"], not m["default"], m["name"]))
    for scale in SPLINE_SCALES:
        models.append(
            {
                "name": "spline",
                "input_rate": OUTPUT_RATE // scale,
                "scale": scale,
                "output_rate": OUTPUT_RATE,
                "arch": "Spline",
                "path": None,
                "default": False,
            }
        )
    return models


def find(name: str | None, input_rate: int | None, scale: int) -> dict:
    """The model called `name` (or the default) for this scale and input rate; LookupError if none."""
    candidates = [m for m in available_models() if m["scale"] == scale]
    if name:
        candidates = [m for m in candidates if m["name"] == name]
    elif input_rate is not None:
        candidates = [m for m in candidates if m["input_rate"] == input_rate and m["path"]]
    else:
        candidates = [m for m in candidates if m["path"]]
    if not candidates:
        pairs = sorted({(m["input_rate"], m["scale"]) for m in available_models() if m["path"]})
        shipped = ", ".join(f"{r} Hz x{s}" for r, s in pairs) or "none yet"
        what = f"model {name!r}" if name else f"shipped model for {input_rate} Hz input"
        raise LookupError(
            f"no {what} at scale {scale}; shipped (input rate, scale): {shipped}; "
            "'spline' works at any rate"
        )
    return candidates[0]


def for_scale(meta: dict, scale: int, name: str = "this checkpoint") -> dict:
    """A multi-rate checkpoint's metadata re-targeted at `scale`, one of the scales it learned
    (LookupError for any other)."""
    scales = meta["args"].get("scales")
    if not scales or scale not in scales:
        raise LookupError(f"{name} upsamples by {scales or meta['scale']}, not by {scale}")
    return {
        **meta,
        "args": {**meta["args"], "scale": scale},
        "scale": scale,
        "input_rate": OUTPUT_RATE // scale,
    }


def checkpoint_path(name_or_path: str | Path | None, input_rate: int | None, scale: int) -> Path:
    """A checkpoint file from a path, a shipped name, or (None) the default for the rate and scale."""
    path = Path(name_or_path) if name_or_path else None
    if path is None or not path.exists():
        path = Path(find(name_or_path and str(name_or_path), input_rate, scale)["path"])
    return path


def scale_for_bandwidth(bandwidth_hz: float, output_rate: int = OUTPUT_RATE) -> int:
    """The largest scale whose input band (output_rate / 2 / scale) holds `bandwidth_hz`, so the
    input is never resampled below its own band; AlreadyWide when no scale adds anything."""
    top = output_rate / 2
    if bandwidth_hz >= ALREADY_WIDE * top:
        raise AlreadyWide(
            f"the audio already reaches {bandwidth_hz / 1000:.1f} kHz, as wide as the "
            f"{output_rate / 1000:g} kHz output ({top / 1000:g} kHz): there is no band to add"
        )
    scales = sorted({m["scale"] for m in available_models()}, reverse=True)
    for scale in scales:
        if top / scale * BANDWIDTH_TOLERANCE >= bandwidth_hz:
            return scale
    widest = top / scales[-1]
    raise AlreadyWide(
        f"the audio reaches {bandwidth_hz / 1000:.1f} kHz, above the widest model input band "
        f"({widest / 1000:g} kHz): upsampling it would first throw away what lies between"
    )
