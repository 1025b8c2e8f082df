"""Training and validation batches: high-res patches in their stream, low-passed, decimated and
spline-interpolated, with level, polarity, filter, speed and recording-chain augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from model import audio
from model.chains import RATE as CHAIN_RATE
from model.chains import recording_chain

# Speed perturbation (Ko et al. 2015) resamples by 20/k: k in 18..22 moves pitch and formants by
# up to +-10 %, so a voice in the training set also stands in for nearby, unheard voices.
SPEED_DENOMINATORS = (18, 19, 21, 22)

# Samples of stream on each side of a patch that the net sees but is not scored on, as whole-file
# inference has chunk margins: decimate's Chebyshev rings for about 400 samples at 16 kHz after a
# start (-80 dB).
CONTEXT = 1024


def patch_stride(data: Path) -> int | None:
    """The hop between consecutive patches in data/ (from its manifest), None when unknown."""
    manifest = Path(data) / "manifest.json"
    return json.loads(manifest.read_text()).get("stride") if manifest.exists() else None


def data_rate(data: Path) -> int:
    """The sample rate of data/'s patches (its manifest's; 16 kHz for data made before it said)."""
    manifest = Path(data) / "manifest.json"
    return (
        json.loads(manifest.read_text()).get("rate", CHAIN_RATE)
        if manifest.exists()
        else CHAIN_RATE
    )


def speed_perturb(window: np.ndarray, k: int, length: int) -> np.ndarray:
    """`window` resampled by 20/k and played at the same rate: its first `length` samples.

    k > 20 shortens the stream (faster, higher voice), k < 20 stretches it. `window` must hold at
    least length * k / 20 samples.
    """
    from scipy import signal  # heavy import; only training pays for it

    need = -(-length * k // 20) + 64  # a margin so the polyphase filter's tail is not cut
    y = signal.resample_poly(window[:need].astype(np.float64), 20, k)
    return y[:length].astype(np.float32)


def stream_windows(hr: np.ndarray, idx, stride: int | None, scale: int) -> tuple[np.ndarray, int]:
    """Each patch with `lead` samples of the stream before and after it: (float32 [B x T + 2 lead],
    lead). Patches are cut every `stride` samples; where there is no neighbour (the ends of the
    array, or no `stride`), the patch is mirrored instead. A patch whose length is not a whole
    number of low-res samples (8192 at x3) loses its last few samples, so that decimating and
    interpolating the window gives back exactly its length and the middle stays aligned.
    """
    length = hr.shape[1]
    lead = min(CONTEXT, stride or CONTEXT, length // 2) // scale * scale  # whole low-res samples
    rows = []
    for i in idx:
        row = hr[i].astype(np.float32)
        if stride and 0 < i < len(hr) - 1:
            left = hr[i - 1][stride - lead : stride]
            right = hr[i + 1][length - stride :][:lead]
            rows.append(np.concatenate([left, row, right]).astype(np.float32))
        else:
            rows.append(np.pad(row, lead, mode="reflect"))
    return np.stack(rows)[:, : 2 * lead + length - length % scale], lead


# What real narrowband audio goes through besides a clean low-pass; "noisy" is the paper's
# low-pass plus white noise 20-40 dB below the signal, "g722" a wideband call's codec.
DEGRADATIONS = ("telephone", "mp3", "g722", "noisy")
# From full-band (48 kHz) data the low-res input is wideband (16 kHz at x3): a telephone band
# is not what such input goes through, G.722 (a 16 kHz codec) and MP3 are.
FULLBAND_DEGRADATIONS = ("mp3", "g722", "noisy")


def row_band_ends(data: Path, split: str = "train") -> np.ndarray | None:
    """Where each patch's recording really ends, in Hz, one per row of data/{split}_hr.npy: its
    voice's bandwidth from the manifest (`prepare` measures it per voice for the wide corpus and
    stores the rows voice after voice). None when the manifest does not say."""
    manifest = Path(data) / "manifest.json"
    if not manifest.exists():
        return None
    entry = json.loads(manifest.read_text())["splits"][split]
    voices, rows = entry.get("voices", {}), entry.get("group_patches")
    if not rows or not all("bandwidth_hz" in voices.get(group, {}) for group in rows):
        return None
    return np.concatenate(
        [np.full(count, float(voices[group]["bandwidth_hz"])) for group, count in rows.items()]
    )


def degradations(rate: int, scale: int) -> tuple[str, ...]:
    """The DEGRADATIONS that make sense for low-res input at rate / scale."""
    if rate == CHAIN_RATE:
        return DEGRADATIONS
    return FULLBAND_DEGRADATIONS if rate // scale == CHAIN_RATE else ("mp3", "noisy")


def _lowres(window: np.ndarray, scale: int, kind: str, rng, rate: int) -> np.ndarray:
    if kind != "noisy":
        return audio.lowres(window, scale, kind, rng, rate)
    lr = audio.lowres(window, scale, "cheby8")
    level = np.sqrt(np.mean(lr**2)) * 10 ** (-rng.uniform(20, 40) / 20)
    return (lr + level * rng.standard_normal(lr.shape)).astype(np.float32)


def interpolate_windows(
    windows: np.ndarray, scale: int, filters, rng, rate: int = CHAIN_RATE
) -> np.ndarray:
    """Spline interpolation of each window's low-res version (`filters[i]` makes row i's:
    a low-pass of `audio.lowres` or one of DEGRADATIONS); the windows are at `rate`."""
    return np.stack(
        [
            audio.spline(_lowres(w, scale, kind, rng, rate), scale)
            for w, kind in zip(windows, filters, strict=True)
        ]
    ).astype(np.float32)


def _speed_perturbed(windows, hr, idx, lead, stride, speed, rng) -> np.ndarray:
    """Replace a `speed` fraction of the windows by speed-perturbed replays (mirrored context).

    Patch i followed by the tail of patch i + 1 is the longer stretch that a faster replay needs;
    at the end of a voice it joins the next one: rare, and still speech.
    """
    length = hr.shape[1]
    overlap = length - (stride or length // 2)
    for row, i in enumerate(idx):
        if rng.random() >= speed or i + 1 == len(hr):  # the last patch has no stream after it
            continue
        stream = np.concatenate([hr[i], hr[i + 1][overlap:]])
        replay = speed_perturb(stream, int(rng.choice(SPEED_DENOMINATORS)), length)
        windows[row] = np.pad(replay, lead, mode="reflect")[: windows.shape[1]]
    return windows


def _chained(windows, chain, rng) -> np.ndarray:
    """Replace a `chain` fraction of the windows by what a random recording chain (room, noise,
    microphone) would have recorded: the target as well as the input, as in a real recording."""
    for row in range(len(windows)):
        if rng.random() < chain:
            windows[row] = recording_chain(windows[row], rng)
    return windows


def _random_level(windows, lead, length, rng) -> np.ndarray:
    """Levels differ wildly between corpora and microphones; the model should not care."""
    batch = len(windows)
    peak = np.abs(windows[:, lead : lead + length]).max(axis=1, keepdims=True) + 1e-6
    gain = rng.uniform(0.05, 0.95, (batch, 1)).astype(np.float32) / peak
    return windows * np.where(rng.random((batch, 1)) < 0.5, -gain, gain)


def make_batch(
    hr: np.ndarray,
    scale: int,
    rng: np.random.Generator,
    batch: int,
    augment: bool,
    speed: float = 0.0,
    stride: int | None = None,
    degrade: float = 0.0,
    chain: float = 0.0,
    rate: int = CHAIN_RATE,
    idx: np.ndarray | None = None,
):
    """(spline-interpolated low-res Tensor[B x 1 x T + 2 lead], high-res Tensor[B x 1 x T]).

    The input holds `lead` samples of stream (CONTEXT, or the patch mirrored) on either side of
    the target patch; train on the middle T of the output (`crop`). Patches are cut every `stride`
    samples. `speed` is the fraction of patches that get speed perturbation, `degrade` the
    fraction whose low-res version goes through one of DEGRADATIONS instead of a clean low-pass,
    `chain` the fraction recorded through a random `recording_chain` (patch and context alike,
    before the low-res version is made). `hr` is at `rate`: 16 kHz, or 48 kHz full-band data.
    `idx` names the rows (sorted) when the caller needs to know them; else `batch` are drawn.
    """
    if chain > 0 and rate != CHAIN_RATE:
        raise ValueError(f"recording chains are built at {CHAIN_RATE} Hz, not {rate} Hz")
    idx = np.sort(rng.integers(0, len(hr), batch)) if idx is None else np.asarray(idx)
    batch = len(idx)
    windows, lead = stream_windows(hr, idx, stride, scale)
    length = windows.shape[1] - 2 * lead
    if speed > 0:
        windows = _speed_perturbed(windows, hr, idx, lead, stride, speed, rng)
    if chain > 0:
        windows = _chained(windows, chain, rng)
    if augment:
        windows = _random_level(windows, lead, length, rng)
    # Half the batch with the paper's filter, half with random filters, so the model meets the
    # benchmark's low-pass and real-world ones alike.
    filters = ["cheby8" if i % 2 == 0 else "random" for i in range(batch)]
    if degrade > 0:
        kinds = degradations(rate, scale)
        filters = [str(rng.choice(kinds)) if rng.random() < degrade else f for f in filters]
    inputs = interpolate_windows(windows, scale, filters, rng, rate)
    target = np.ascontiguousarray(windows[:, lead : lead + length])
    return torch.from_numpy(inputs[:, None]), torch.from_numpy(target[:, None])


def crop(y, length: int):
    """The middle `length` samples along the last axis (a net's output on a `make_batch` input)."""
    lead = (y.shape[-1] - length) // 2
    return y[..., lead : lead + length]
