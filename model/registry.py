"""The shipped models by input rate and scale, read from checkpoint headers without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
OUTPUT_RATE = 16000
SPLINE_SCALES = (2, 4)


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


def checkpoint_path(name_or_path: str | Path | None, input_rate: int | None, scale: int) -> Path:
    """A checkpoint file from a path, a shipped name, or (None) the default for the rate and scale."""
    path = Path(name_or_path) if name_or_path else None
    if path is None or not path.exists():
        path = Path(find(name_or_path and str(name_or_path), input_rate, scale)["path"])
    return path
