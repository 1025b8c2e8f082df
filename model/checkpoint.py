"""Checkpoints that rebuild their own net: class, constructor args, rates and weights in one safetensors file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from model.nets import ARCHITECTURES
from model.registry import read_header
from model.spectral import SpectralBWE


def atomic_write(path: str | Path, write) -> None:
    """Call write(temporary path) beside `path`, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is for every user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save(
    path: str | Path,
    net: nn.Module,
    *,
    init_args: dict,
    input_rate: int,
    scale: int,
    training: dict | None = None,
    half: bool = False,
) -> None:
    """Write weights and metadata atomically (temporary file + rename), fp16 if `half`."""
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta = {
        "class": type(net).__name__,
        "args": json.dumps(init_args),
        "input_rate": str(input_rate),
        "scale": str(scale),
        "training": json.dumps(training or {}),
    }
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def save_like(path: str | Path, net: nn.Module, meta: dict, training: dict) -> None:
    """Write `net` (fp16) with the constructor arguments and rates of `meta` (from `load` or
    `read_metadata`) and the given training record: re-marking, shipping and averaging runs."""
    save(
        path,
        net,
        init_args=meta["args"],
        input_rate=meta["input_rate"],
        scale=meta["scale"],
        training=training,
        half=True,
    )


def _cast_floats(state, dtype):
    """`state` (nested dicts and lists of tensors) with its float tensors cast to `dtype`."""
    if isinstance(state, dict):
        return {k: _cast_floats(v, dtype) for k, v in state.items()}
    if isinstance(state, list):
        return [_cast_floats(v, dtype) for v in state]
    if torch.is_tensor(state) and state.is_floating_point() and state.dim() > 0:
        return state.to(dtype)
    return state


def save_resume(path: str | Path, state: dict, optimizer: dict) -> None:
    """A run's resume state as `path` (weights, counters) and `optimizer.pt` beside it.

    The optimizer's moments take twice the weights' space, so they get a file of their own, in
    bfloat16: each file stays small enough to commit (16 MB) for a multi-million-parameter net,
    and a later session resumes the run. bfloat16 keeps float32's range, so no small second
    moment underflows; its rounding (0.4 %) is far below what one step changes.
    """
    path = Path(path)
    compact = _cast_floats(optimizer, torch.bfloat16)
    atomic_write(path.with_name("optimizer.pt"), lambda tmp: torch.save(compact, tmp))
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_resume(path: str | Path, device) -> tuple[dict, dict]:
    """(state, optimizer state) written by `save_resume`, on `device`, floats back in float32."""
    path = Path(path)
    state = torch.load(path, weights_only=True, map_location=device)
    optimizer = torch.load(path.with_name("optimizer.pt"), weights_only=True, map_location=device)
    return state, _cast_floats(optimizer, torch.float32)


def read_metadata(path: str | Path) -> dict:
    """The metadata of a checkpoint, decoded, read from the header without loading weights."""
    meta = read_header(path)
    return {
        "class": meta.get("class"),
        "args": json.loads(meta.get("args", "{}")),
        "input_rate": int(meta.get("input_rate", 0)),
        "scale": int(meta.get("scale", 0)),
        "training": json.loads(meta.get("training", "{}")),
    }


def load(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the net a checkpoint describes, in eval mode, float32, on `device`."""
    meta = read_metadata(path)
    cls = {**ARCHITECTURES, "SpectralBWE": SpectralBWE}.get(meta["class"])
    if cls is None:
        raise ValueError(f"{path}: unknown architecture {meta['class']!r}")
    net = cls(**meta["args"])
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    net.load_state_dict(state)
    return net.to(device).eval(), meta
