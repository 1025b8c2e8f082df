"""The shipped models by input rate and scale, read from checkpoint headers without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"
# Wideband: what the x2 and x4 models write, and what the full-band (x3) model reads.
OUTPUT_RATE = 16000
FULL_BAND_RATE = 48000
# The spline baseline beside each shipped model: (input rate, scale).
SPLINE_PAIRS = ((8000, 2), (16000, 3), (4000, 4))
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
    """Shipped checkpoints (default first for each scale), then the spline baseline per pair.

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
    for rate, scale in SPLINE_PAIRS:
        models.append(
            {
                "name": "spline",
                "input_rate": rate,
                "scale": scale,
                "output_rate": rate * scale,
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
    (LookupError for any other): the same output rate, from a wider or narrower input."""
    scales = meta["args"].get("scales")
    if not scales or scale not in scales:
        raise LookupError(f"{name} upsamples by {scales or meta['scale']}, not by {scale}")
    output_rate = meta["input_rate"] * meta["scale"]
    return {
        **meta,
        "args": {**meta["args"], "scale": scale},
        "scale": scale,
        "input_rate": output_rate // scale,
    }


def spline_rate(scale: int) -> int:
    """The input rate the spline baseline takes by default at `scale`: its shipped pair's, or
    16 kHz / scale for a scale nothing ships at."""
    rates = [rate for rate, s in SPLINE_PAIRS if s == scale]
    return rates[0] if rates else OUTPUT_RATE // scale


def stage_to(rate: int, output_rate: int, baseline: bool = False) -> dict | None:
    """The model that takes audio at `rate` on to `output_rate` (16 -> 48 kHz after a wideband
    model): the shipped default for that pair, or spline when `baseline` (a chain of baselines
    stays one) or when no checkpoint serves it; None when no pair leads there."""
    if output_rate % rate:
        return None
    pair = [
        m
        for m in available_models()
        if m["input_rate"] == rate and m["scale"] == output_rate // rate
    ]
    shipped = [m for m in pair if m["path"]]
    if shipped and not baseline:
        return shipped[0]
    return next((m for m in pair if m["name"] == "spline"), None)


def checkpoint_path(name_or_path: str | Path | None, input_rate: int | None, scale: int) -> Path:
    """A checkpoint file from a path, a shipped name, or (None) the default for the rate and scale."""
    path = Path(name_or_path) if name_or_path else None
    if path is None or not path.exists():
        path = Path(find(name_or_path and str(name_or_path), input_rate, scale)["path"])
    return path


def pair_for_bandwidth(bandwidth_hz: float) -> tuple[int, int]:
    """(input rate, scale) of the model for audio whose band ends at `bandwidth_hz`: among the
    shipped pairs, those whose input band holds it (the input is never resampled below its own
    band) and whose output is wider, the narrowest input band, then the smallest scale (3.4 kHz
    telephone audio: 8 -> 16 kHz; a 16 kHz file: 16 -> 48 kHz). AlreadyWide when none adds
    anything."""
    pairs = sorted({(m["input_rate"], m["scale"]) for m in available_models()})
    holds = [(r, s) for r, s in pairs if r / 2 * BANDWIDTH_TOLERANCE >= bandwidth_hz]
    adds = [(r, s) for r, s in holds if bandwidth_hz < ALREADY_WIDE * r * s / 2]
    if adds:
        return adds[0]
    widest_output = max(r * s for r, s in pairs)
    if bandwidth_hz >= ALREADY_WIDE * widest_output / 2:
        raise AlreadyWide(
            f"the audio already reaches {bandwidth_hz / 1000:.1f} kHz, as wide as the "
            f"{widest_output / 1000:g} kHz output ({widest_output / 2000:g} kHz): there is no "
            "band to add"
        )
    widest_input = max(r for r, _ in pairs)
    raise AlreadyWide(
        f"the audio reaches {bandwidth_hz / 1000:.1f} kHz, above the widest model input band "
        f"({widest_input / 2000:g} kHz): upsampling it would first throw away what lies between"
    )
