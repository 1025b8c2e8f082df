"""Training: random-filter low-res augmentation, MSE + multi-resolution STFT loss, validation every
epoch against spline, best checkpoint kept, automatic resume, CSV log and curves."""

from __future__ import annotations

import csv
import functools
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model import audio, checkpoint, metrics, registry
from model.data import RATE
from model.inference import pick_device
from model.nets import DNN, AudioTFiLMNet, AudioUNet, parameter_count

# The shipped size: fast enough for >= 30x real time on a 2-core CPU (see `python -m model bench`).
PRESETS: dict[str, tuple[type, dict]] = {
    "audiounet": (AudioUNet, dict(depth=5, base_filters=16, max_filters=64, max_kernel=33)),
    "tfilm": (
        AudioTFiLMNet,
        dict(depth=5, base_filters=16, max_filters=64, max_kernel=33, tfilm_block=256),
    ),
    "dnn": (DNN, dict(frame=256, hidden=1024, layers=2)),
    "tiny": (AudioUNet, dict(depth=2, base_filters=8, max_filters=16, max_kernel=9, dropout=0.0)),
}
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))


def stft_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + L1 of log magnitudes.

    The log term is what LSD measures, and it rewards energy in the band the low-res input lacks,
    which MSE alone hardly does (that band holds little of the waveform's energy).
    """
    total = y.new_zeros(())
    y, target = y.squeeze(1), target.squeeze(1)
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft, device=y.device)
        sy = torch.stft(y, n_fft, hop, window=window, return_complex=True).abs().clamp_min(1e-5)
        st = (
            torch.stft(target, n_fft, hop, window=window, return_complex=True).abs().clamp_min(1e-5)
        )
        convergence = torch.linalg.norm(st - sy) / torch.linalg.norm(st).clamp_min(1e-5)
        total = total + convergence + F.l1_loss(sy.log10(), st.log10())
    return total / len(STFT_RESOLUTIONS)


def snr_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative SNR in dB per example, averaged: exactly what the validation table reports.

    The pooled MSE lets loud patches buy gains with quiet ones (pooled SNR rose 0.7 dB while the
    mean per-patch SNR fell 0.3 dB); on a log scale every patch counts the same, so the net learns
    to add high band only where it can predict its waveform.
    """
    dims = tuple(range(1, y.dim()))
    err = (y - target).pow(2).sum(dims)
    power = target.pow(2).sum(dims)
    return (10 * torch.log10((err + 1e-7) / (power + 1e-7))).mean()


def normalized_mse(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error over target power, pooled over the batch: the quantity SNR measures.

    Pooled rather than per example, so a near-silent patch cannot dominate the gradient.
    """
    return (y - target).pow(2).sum() / target.pow(2).sum().clamp_min(1e-6)


# --loss: the waveform term of the objective, and how the checkpoint header names it.
LOSSES = {
    "mse": (normalized_mse, "normalized MSE"),
    "snr": (snr_loss, "negative per-patch SNR (dB)"),
}
SELECTIONS = ("merit", "snr")


# Speed perturbation (Ko et al. 2015) resamples by 20/k: k in 18..22 moves pitch and formants by
# up to +-10 %, so a voice in the training set also stands in for nearby, unheard voices.
SPEED_DENOMINATORS = (18, 19, 21, 22)


def speed_perturb(window: np.ndarray, k: int, length: int) -> np.ndarray:
    """`window` resampled by 20/k and played at the same rate: its first `length` samples.

    k > 20 shortens the stream (faster, higher voice), k < 20 stretches it. `window` must hold at
    least length * k / 20 samples.
    """
    from scipy import signal  # heavy import; only training pays for it

    need = -(-length * k // 20) + 64  # a margin so the polyphase filter's tail is not cut
    y = signal.resample_poly(window[:need].astype(np.float64), 20, k)
    return y[:length].astype(np.float32)


# Samples of stream on each side of a patch that the net sees but is not scored on, as whole-file
# inference has chunk margins: decimate's Chebyshev rings for about 400 samples at 16 kHz after a
# start (-80 dB).
CONTEXT = 1024


def stream_windows(hr: np.ndarray, idx, stride: int | None, scale: int) -> tuple[np.ndarray, int]:
    """Each patch with `lead` samples of the stream before and after it: (float32 [B x T + 2 lead],
    lead). Patches are cut every `stride` samples; where there is no neighbour (the ends of the
    array, or no `stride`), the patch is mirrored instead.
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
    return np.stack(rows), lead


def interpolate_windows(windows: np.ndarray, scale: int, filters, rng) -> np.ndarray:
    """Spline interpolation of each window's low-res version (`filters[i]` low-passes row i)."""
    return np.stack(
        [
            audio.spline(audio.lowres(w, scale, kind, rng), scale)
            for w, kind in zip(windows, filters, strict=True)
        ]
    ).astype(np.float32)


def make_batch(
    hr: np.ndarray,
    scale: int,
    rng: np.random.Generator,
    batch: int,
    augment: bool,
    speed: float = 0.0,
    stride: int | None = None,
):
    """(spline-interpolated low-res Tensor[B x 1 x T + 2 lead], high-res Tensor[B x 1 x T]).

    The input holds `lead` samples of stream (CONTEXT, or the patch mirrored) on either side of
    the target patch; train on the middle T of the output (`crop`). Patches are cut every `stride`
    samples. `speed` is the fraction of patches that get speed perturbation: patch i followed by
    the tail of patch i + 1 is the longer stretch that a faster replay needs (at the end of a voice
    it joins the next one: rare, and still speech); such a replay gets a mirrored context.
    """
    idx = np.sort(rng.integers(0, len(hr), batch))
    windows, lead = stream_windows(hr, idx, stride, scale)
    length = hr.shape[1]
    overlap = length - (stride or length // 2)
    if speed > 0:
        for row, i in enumerate(idx):
            if rng.random() >= speed or i + 1 == len(hr):  # the last patch has no stream after it
                continue
            stream = np.concatenate([hr[i], hr[i + 1][overlap:]])
            replay = speed_perturb(stream, int(rng.choice(SPEED_DENOMINATORS)), length)
            windows[row] = np.pad(replay, lead, mode="reflect")
    if augment:
        # Levels differ wildly between corpora and microphones; the model should not care.
        patch = windows[:, lead : lead + length]
        peak = np.abs(patch).max(axis=1, keepdims=True) + 1e-6
        gain = rng.uniform(0.05, 0.95, (batch, 1)).astype(np.float32) / peak
        windows = windows * np.where(rng.random((batch, 1)) < 0.5, -gain, gain)
    # Half the batch with the paper's filter, half with random filters, so the model meets the
    # benchmark's low-pass and real-world ones alike.
    filters = ["cheby8" if i % 2 == 0 else "random" for i in range(batch)]
    inputs = interpolate_windows(windows, scale, filters, rng)
    target = np.ascontiguousarray(windows[:, lead : lead + length])
    return torch.from_numpy(inputs[:, None]), torch.from_numpy(target[:, None])


def crop(y, length: int):
    """The middle `length` samples along the last axis (a net's output on a `make_batch` input)."""
    lead = (y.shape[-1] - length) // 2
    return y[..., lead : lead + length]


def predict(net, interpolated: np.ndarray, device="cpu", batch: int = 32) -> np.ndarray:
    """The net's output for interpolated patches [N x T], in batches: float32 [N x T]."""
    outs = []
    with torch.inference_mode():
        for s in range(0, len(interpolated), batch):
            xb = torch.from_numpy(np.asarray(interpolated[s : s + batch, None], np.float32))
            outs.append(net(xb.to(device)).cpu().numpy()[:, 0])
    return np.concatenate(outs)


def validate(
    net, val_hr: np.ndarray, scale: int, device, limit: int = 400, stride: int | None = None
):
    """Mean SNR / LSD / LSD-HF over validation patches for the net and for spline.

    The paper's low-pass makes the input. As in training, the net sees each patch inside CONTEXT
    samples of its stream (with `stride`; else mirrored) and is scored on the patch alone.
    """
    n = min(limit, len(val_hr))
    idx = np.linspace(0, len(val_hr) - 1, n).astype(int)
    hr = val_hr[idx].astype(np.float32)
    windows, _ = stream_windows(val_hr, idx, stride, scale)
    interpolated = interpolate_windows(windows, scale, ["cheby8"] * n, None)
    net.eval()
    out = crop(predict(net, interpolated, device), hr.shape[1])
    interpolated = crop(interpolated, hr.shape[1])
    net.train()
    rows = {"model": [], "spline": []}
    for ref, est, base in zip(hr, out, interpolated, strict=True):
        if np.max(np.abs(ref)) < 1e-3:
            continue
        rows["model"].append(metrics.score(ref, est, scale))
        rows["spline"].append(metrics.score(ref, base, scale))
    return {
        who: {k: float(np.mean([r[k] for r in rs])) for k in ("snr", "lsd", "lsd_hf")}
        for who, rs in rows.items()
    }


def plot_curves(log_path: Path, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_path) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    axes[0].plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    axes[0].set_title("loss")
    for ax, key in ((axes[1], "snr"), (axes[2], "lsd")):
        ax.plot(ep, [float(r[f"val_{key}"]) for r in rows], label="model")
        ax.plot(ep, [float(r[f"spline_{key}"]) for r in rows], "--", label="spline")
        ax.set_title(f"validation {key.upper()}")
        ax.legend()
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def patch_stride(data: Path) -> int | None:
    """The hop between consecutive patches in data/ (from its manifest), None when unknown."""
    manifest = data / "manifest.json"
    return json.loads(manifest.read_text()).get("stride") if manifest.exists() else None


# The most patch LSD, as a fraction of spline's, that `--select snr` accepts at each scale: the
# LSD bar (sinc's LSD / 1.6 at x4, / 1.5 at x2) with sinc's LSD about 1.15 x spline's at x4 and
# 1.24 x at x2 on the validation files, less a margin, because 8192-sample patches score 3-5 %
# lower LSD than whole files. Other scales get the strictest.
LSD_LIMIT = {4: 0.72, 2: 0.78}


def _merit(val: dict, select: str, scale: int) -> float:
    """One number to rank epochs by, higher is better.

    "merit" weighs both bars: SNR gain in dB plus 10 x the LSD drop (about 1 dB per 0.1 LSD).
    "snr" ranks by SNR gain alone, among epochs whose LSD is at most LSD_LIMIT x spline's.
    """
    gain = val["model"]["snr"] - val["spline"]["snr"]
    if select == "merit":
        return gain + 10 * (val["spline"]["lsd"] - val["model"]["lsd"])
    if select == "snr":
        limit = LSD_LIMIT.get(scale, min(LSD_LIMIT.values()))
        return gain if val["model"]["lsd"] <= limit * val["spline"]["lsd"] else gain - 100.0
    raise ValueError(f"unknown selection {select!r}; choose from {SELECTIONS}")


def train(
    data: Path,
    out: Path,
    *,
    model: str = "audiounet",
    scale: int = 4,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 3e-4,
    steps_per_epoch: int | None = None,
    stft_weight: float = 0.1,
    loss: str = "mse",
    init: str | Path | None = None,
    select: str = "merit",
    max_minutes: float | None = None,
    speed: float = 0.0,
    device: str = "auto",
    seed: int = 0,
) -> dict:
    """Train `model` on data/ (from `prepare`), resuming from out/state.pt when it exists."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
    if select not in SELECTIONS:
        raise ValueError(f"unknown selection {select!r}; choose from {SELECTIONS}")
    fit, loss_name = LOSSES[loss]
    dev = pick_device(device)
    out.mkdir(parents=True, exist_ok=True)
    train_hr = np.load(data / "train_hr.npy", mmap_mode="r")
    val_hr = np.load(data / "val_hr.npy", mmap_mode="r")
    stride = patch_stride(data)
    cls, args = PRESETS[model]
    torch.manual_seed(seed)
    net = cls(**args).to(dev)
    if init is not None and not (out / "state.pt").exists():
        # Fine-tuning: start from a trained checkpoint of the same preset (a path or shipped name).
        source, meta = checkpoint.load(registry.checkpoint_path(init, None, scale), dev)
        if meta["class"] != cls.__name__ or meta["args"] != args:
            raise ValueError(
                f"--init {init}: {meta['class']}{meta['args']} is not preset {model!r}"
            )
        net.load_state_dict(source.state_dict())
        print(f"initialised from {init}", flush=True)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = steps_per_epoch or max(1, len(train_hr) // batch_size)
    state_path, log_path = out / "state.pt", out / "log.csv"
    start_epoch, best, wall = 0, -np.inf, 0.0
    if state_path.exists():
        state = torch.load(state_path, weights_only=True, map_location=dev)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        start_epoch, best, wall = state["epoch"], state["best"], state["wall_s"]
        print(f"resuming {out} at epoch {start_epoch}", flush=True)
    rng = np.random.default_rng(seed + start_epoch)
    print(
        f"{model}: {parameter_count(net):,} parameters, {len(train_hr)} train patches, "
        f"{steps_per_epoch} steps/epoch on {dev}",
        flush=True,
    )
    begun = time.time()
    step_losses: list[float] = []
    save = functools.partial(
        checkpoint.save, net=net, init_args=args, input_rate=RATE // scale, scale=scale, half=True
    )
    for epoch in range(start_epoch, epochs):
        t0 = time.time()
        net.train()
        losses = []
        # Cosine decay to a tenth over the planned epochs: big steps early, fine ones at the end.
        progress = epoch / max(1, epochs - 1)
        for group in opt.param_groups:
            group["lr"] = float(lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress))))
        for step in range(steps_per_epoch):
            x, y = make_batch(
                train_hr, scale, rng, batch_size, augment=True, speed=speed, stride=stride
            )
            x, y = x.to(dev), y.to(dev)
            pred = crop(net(x), y.shape[-1])
            objective = fit(pred, y) + stft_weight * stft_loss(pred, y)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            opt.step()
            losses.append(float(objective.detach()))
            step_losses.append(losses[-1])
            if step % 50 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{steps_per_epoch} loss {np.mean(losses[-50:]):.4f}",
                    flush=True,
                )
        wall += time.time() - t0
        val = validate(net, val_hr, scale, dev, stride=stride)
        merit = _merit(val, select, scale)
        row = {
            "epoch": epoch + 1,
            "steps": (epoch + 1) * steps_per_epoch,
            "train_loss": float(np.mean(losses)),
            "val_snr": val["model"]["snr"],
            "val_lsd": val["model"]["lsd"],
            "val_lsd_hf": val["model"]["lsd_hf"],
            "spline_snr": val["spline"]["snr"],
            "spline_lsd": val["spline"]["lsd"],
            "spline_lsd_hf": val["spline"]["lsd_hf"],
            "wall_s": round(wall, 1),
        }
        new_file = not log_path.exists()
        with open(log_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        print(json.dumps(row), flush=True)
        header = {
            "preset": model,
            "epoch": epoch + 1,
            "steps": row["steps"],
            "batch_size": batch_size,
            "lr": lr,
            "loss": f"{loss_name} + {stft_weight} x multi-resolution STFT",
            "init": str(init) if init else None,
            "speed_perturbed": speed,
            "select": select,
            "val": val,
            "wall_s": row["wall_s"],
            "hardware": f"{platform.processor() or platform.machine()} {dev}"
            f" x{torch.get_num_threads()} threads",
        }
        # Every epoch's weights (fp16, ~2 MB for the U-Nets) for `average` to combine later.
        save(out / "epochs" / f"{epoch + 1:03d}.safetensors", training=header)
        if merit > best:
            best = merit
            save(out / "best.safetensors", training=header)
        resume = {
            "net": net.state_dict(),
            "opt": opt.state_dict(),
            "epoch": epoch + 1,
            "best": float(best),
            "wall_s": wall,
        }
        checkpoint.atomic_write(state_path, functools.partial(torch.save, resume))
        plot_curves(log_path, out / "curves.png")
        if max_minutes and (time.time() - begun) > max_minutes * 60:
            print(f"stopping after {max_minutes} minutes", flush=True)
            break
    return {"best": float(best), "out": str(out), "step_losses": step_losses}


def average(run: Path, out: Path, *, data: Path, first: int, last: int | None = None) -> dict:
    """Average the weights a run kept for epochs first..last, validate, save out/best.safetensors.

    Averaging the late epochs of one run (Izmailov et al. 2018, stochastic weight averaging) lands
    nearer the middle of the basin than any single epoch; on unheard voices the average beat the
    mean of the epochs it combines (model card, stage 4), and it costs nothing at inference.
    """
    files = sorted((Path(run) / "epochs").glob("*.safetensors"))
    chosen = [f for f in files if first <= int(f.stem) <= (last or int(f.stem))]
    if not chosen:
        raise ValueError(f"{run}: no epoch files between {first} and {last or 'the end'}")
    net, meta = checkpoint.load(chosen[0])
    total = {k: v.double() for k, v in net.state_dict().items()}
    for path in chosen[1:]:
        other, other_meta = checkpoint.load(path)
        if (other_meta["class"], other_meta["args"]) != (meta["class"], meta["args"]):
            raise ValueError(f"{path} is not the same net as {chosen[0]}")
        for k, v in other.state_dict().items():
            total[k] += v.double()
    net.load_state_dict({k: (v / len(chosen)).float() for k, v in total.items()})
    scale = meta["scale"]
    val_hr = np.load(Path(data) / "val_hr.npy", mmap_mode="r")
    val = validate(net, val_hr, scale, "cpu", stride=patch_stride(Path(data)))
    epochs = [int(f.stem) for f in chosen]
    # The last epoch's record (its steps, wall time), with the average's own validation.
    training = {
        **checkpoint.read_metadata(chosen[-1])["training"],
        "averaged_epochs": epochs,
        "run": Path(run).name,
        "val": val,
    }
    checkpoint.save(
        Path(out) / "best.safetensors",
        net,
        init_args=meta["args"],
        input_rate=meta["input_rate"],
        scale=scale,
        training=training,
        half=True,
    )
    return {"epochs": epochs, "val": val, "out": str(out)}
