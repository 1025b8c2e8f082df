"""Training: batches from `model.batches`, objectives from `model.losses`, validation against spline
every epoch, every epoch's and the best checkpoint kept, automatic resume, CSV log and curves."""

from __future__ import annotations

import csv
import functools
import json
import platform
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from model import checkpoint, losses, metrics, registry
from model.batches import (
    crop,
    data_rate,
    interpolate_windows,
    make_batch,
    patch_stride,
    row_band_ends,
    stream_windows,
)
from model.discriminators import Adversary
from model.inference import pick_device
from model.nets import DNN, AudioTFiLMNet, AudioUNet, parameter_count
from model.spectral import SpectralBWE

# The shipped size: fast enough for >= 30x real time on a 2-core CPU (see `python -m model bench`).
PRESETS: dict[str, tuple[type, dict]] = {
    "audiounet": (AudioUNet, dict(depth=5, base_filters=16, max_filters=64, max_kernel=33)),
    "tfilm": (
        AudioTFiLMNet,
        dict(depth=5, base_filters=16, max_filters=64, max_kernel=33, tfilm_block=256),
    ),
    "dnn": (DNN, dict(frame=256, hidden=1024, layers=2)),
    "tiny": (AudioUNet, dict(depth=2, base_filters=8, max_filters=16, max_kernel=9, dropout=0.0)),
    "spectral": (SpectralBWE, dict(n_fft=512, hop=128, channels=192, blocks=8, kernel=7)),
    # The same frames in time (32 ms windows, 8 ms hop) for 48 kHz full-band data.
    "spectral-fb": (SpectralBWE, dict(n_fft=1536, hop=384, channels=192, blocks=8, kernel=7)),
    "tiny-spectral": (SpectralBWE, dict(n_fft=256, hop=64, channels=16, blocks=1, kernel=3)),
}
SELECTIONS = ("merit", "snr", "lsd")

# The most patch LSD, as a fraction of spline's, that `--select snr` accepts at each scale: the
# LSD bar (sinc's LSD / 1.6 at x4, / 1.5 at x2) with sinc's LSD about 1.15 x spline's at x4 and
# 1.24 x at x2 on the validation files, less a margin, because 8192-sample patches score 3-5 %
# lower LSD than whole files. Other scales get the strictest.
LSD_LIMIT = {4: 0.72, 2: 0.78}


def _option(default, help: str, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class TrainConfig:
    """What `train` is asked to do; `python -m model train` has one option per field."""

    model: str = _option("audiounet", "net preset", PRESETS)
    scale: int = _option(4, "upsampling factor (input rate = the data's rate / scale)")
    epochs: int = _option(10, "epochs planned (the learning rate decays over them)")
    batch_size: int = _option(16, "patches per step")
    lr: float = _option(3e-4, "peak learning rate (Adam)")
    steps_per_epoch: int | None = _option(None, "steps between validations (default: one pass)")
    stft_weight: float = _option(0.1, "weight of the multi-resolution STFT loss")
    mel_weight: float = _option(0.0, "weight of the log mel-band energy loss (spectral loss only)")
    mel_over: float = _option(1.0, "how much dearer too much mel-band energy is than too little")
    frame_weight: float = _option(
        0.0, "weight of the written band's log energy per frame (spectral loss only)"
    )
    loss: str = _option("mse", "waveform loss term", losses.LOSSES)
    init: str | None = _option(None, "fine-tune from this checkpoint (path or shipped name)")
    select: str = _option("merit", "how the kept epoch is chosen", SELECTIONS)
    max_minutes: float | None = _option(None, "stop after the epoch that passes this wall time")
    stop_after: int | None = _option(None, "stop after this epoch of the planned schedule")
    speed: float = _option(0.0, "fraction of patches speed-perturbed by +-10 %")
    degrade: float = _option(0.0, "fraction of low-res inputs made by telephone, MP3 or noise")
    chain: float = _option(
        0.0,
        "fraction of patches through a random recording chain (room, microphone, noise) before the"
        " low-res input is made",
    )
    mix_scale: int | None = _option(None, "every other batch at this scale (multi-rate nets)")
    adversarial: float = _option(0.0, "weight of the adversarial + feature-matching loss")
    band_mask: bool = _option(
        False,
        "score each patch only up to its voice's own band end (from the manifest): a training"
        " recording's codec low-pass is not the voice's, and the net should not learn it",
    )
    device: str = _option("auto", "where to train", ("auto", "cpu", "cuda"))
    seed: int = _option(0, "random seed")

    def __post_init__(self):
        for f in fields(self):
            choices, value = f.metadata["choices"], getattr(self, f.name)
            if choices and value not in choices:
                raise ValueError(f"unknown {f.name} {value!r}; choose from {sorted(choices)}")


def predict(net, interpolated: np.ndarray, device="cpu", batch: int = 32) -> np.ndarray:
    """The net's output for interpolated patches [N x T], in batches: float32 [N x T]."""
    outs = []
    with torch.inference_mode():
        for s in range(0, len(interpolated), batch):
            xb = torch.from_numpy(np.asarray(interpolated[s : s + batch, None], np.float32))
            outs.append(net(xb.to(device)).cpu().numpy()[:, 0])
    return np.concatenate(outs)


def validate(
    net,
    val_hr: np.ndarray,
    scale: int,
    device,
    limit: int = 400,
    stride: int | None = None,
    rate: int = registry.OUTPUT_RATE,
):
    """Mean SNR / LSD / LSD-HF over validation patches for the net and for spline.

    The paper's low-pass makes the input. As in training, the net sees each patch inside CONTEXT
    samples of its stream (with `stride`; else mirrored) and is scored on the patch alone.
    """
    n = min(limit, len(val_hr))
    idx = np.linspace(0, len(val_hr) - 1, n).astype(int)
    windows, lead = stream_windows(val_hr, idx, stride, scale)
    hr = val_hr[idx, : windows.shape[1] - 2 * lead].astype(np.float32)
    interpolated = interpolate_windows(windows, scale, ["cheby8"] * n, None, rate)
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
    return {who: metrics.mean_scores(rs) for who, rs in rows.items()}


def epoch_merit(val: dict, select: str, scale: int) -> float:
    """One number to rank epochs by, higher is better.

    "merit" weighs both bars: SNR gain in dB plus 10 x the LSD drop (about 1 dB per 0.1 LSD).
    "snr" ranks by SNR gain alone, among epochs whose LSD is at most LSD_LIMIT x spline's.
    "lsd" ranks by LSD alone (the spectral generator, judged by what listeners hear).
    """
    gain = val["model"]["snr"] - val["spline"]["snr"]
    if select == "merit":
        return gain + 10 * (val["spline"]["lsd"] - val["model"]["lsd"])
    if select == "snr":
        limit = LSD_LIMIT.get(scale, min(LSD_LIMIT.values()))
        return gain if val["model"]["lsd"] <= limit * val["spline"]["lsd"] else gain - 100.0
    if select == "lsd":
        return -val["model"]["lsd"]
    raise ValueError(f"unknown selection {select!r}; choose from {SELECTIONS}")


def plot_curves(log_path: Path, out_png: Path) -> None:
    """Training loss and validation SNR / LSD (model and spline) per epoch, from log.csv."""
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


def append_log(log_path: Path, row: dict) -> None:
    """One epoch's row in log.csv (header first when the file is new)."""
    new_file = not log_path.exists()
    with open(log_path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new_file:
            writer.writeheader()
        writer.writerow(row)


def build_net(config: TrainConfig, device, init: str | None) -> tuple[torch.nn.Module, dict]:
    """The preset's net on `device` (and its constructor args), with the weights of `init` if given."""
    cls, args = PRESETS[config.model]
    if getattr(cls, "multi_rate", False):
        args = {
            **args,
            "scale": config.scale,
            "scales": sorted({config.scale, config.mix_scale or config.scale}),
        }
    elif config.mix_scale:
        raise ValueError(f"--mix-scale needs a multi-rate preset, not {config.model!r}")
    torch.manual_seed(config.seed)
    net = cls(**args).to(device)
    if init is not None:
        source, meta = checkpoint.load(registry.checkpoint_path(init, None, config.scale), device)
        if meta["class"] != cls.__name__ or meta["args"] != args:
            raise ValueError(
                f"--init {init}: {meta['class']}{meta['args']} is not preset {config.model!r}"
            )
        net.load_state_dict(source.state_dict())
    return net, args


def set_learning_rate(opt, config: TrainConfig, epoch: int) -> None:
    """Cosine decay to a tenth over the planned epochs: big steps early, fine ones at the end."""
    progress = epoch / max(1, config.epochs - 1)
    for group in opt.param_groups:
        group["lr"] = float(config.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * progress))))


def output(net, x: torch.Tensor, length: int, scale: int) -> torch.Tensor:
    """The net's output over the middle `length` samples of a `make_batch` input."""
    return crop(net(x, scale) if getattr(net, "multi_rate", False) else net(x), length)


def train_epoch(net, opt, fit, adversary, data, config: TrainConfig, steps: int, rng, device):
    """One epoch of `steps` optimizer steps (and as many discriminator steps with an adversary);
    `data` is (train_hr, stride, rate, band ends per row or None). The step losses."""
    net.train()
    step_losses = []
    for step in range(steps):
        scale = config.mix_scale if config.mix_scale and step % 2 else config.scale
        augment = dict(speed=config.speed, degrade=config.degrade, chain=config.chain)
        band_ends = data[3] if config.band_mask else None
        # The rows drawn here, as make_batch would draw them, so the band mask knows whose they are.
        idx = np.sort(rng.integers(0, len(data[0]), config.batch_size))
        batch = make_batch(
            data[0],
            scale,
            rng,
            config.batch_size,
            True,
            stride=data[1],
            rate=data[2],
            idx=idx,
            **augment,
        )
        x, target = (t.to(device) for t in batch)
        y = output(net, x, target.shape[-1], scale)
        if band_ends is not None:
            # Above its recording's band end a patch's target is a codec's silence, not speech:
            # score the net there on nothing, so it writes what the full-band voices have.
            cutoff = torch.from_numpy(band_ends[idx])
            y, target = (losses.band_limited(t, cutoff, data[2]) for t in (y, target))
        objective = fit(y, target, net, scale)
        if adversary is not None:
            adversary.step(y, target, scale)
            objective = objective + config.adversarial * adversary.generator_loss(y, target, scale)
        opt.zero_grad(set_to_none=True)
        objective.backward()
        opt.step()
        step_losses.append(float(objective.detach()))
        if step % 50 == 0:
            print(f"step {step}/{steps} loss {np.mean(step_losses[-50:]):.4f}", flush=True)
    return step_losses


def training_record(config: TrainConfig, row: dict, val: dict, device) -> dict:
    """What a checkpoint's header says about how it was trained."""
    return {
        "preset": config.model,
        "epoch": row["epoch"],
        "steps": row["steps"],
        "batch_size": config.batch_size,
        "lr": config.lr,
        "loss": losses.describe(
            config.loss, config.stft_weight, config.mel_weight, config.mel_over, config.frame_weight
        )
        + (f" + {config.adversarial} x adversarial" if config.adversarial else ""),
        "init": str(config.init) if config.init else None,
        "speed_perturbed": config.speed,
        "degraded": config.degrade,
        "chained": config.chain,
        "band_masked": config.band_mask,
        "mixed_scale": config.mix_scale,
        "select": config.select,
        "val": val,
        "wall_s": row["wall_s"],
        "hardware": f"{platform.processor() or platform.machine()} {device}"
        f" x{torch.get_num_threads()} threads",
    }


def log_row(epoch: int, steps: int, step_losses: list[float], val: dict, wall: float) -> dict:
    """log.csv's row for an epoch."""
    return {
        "epoch": epoch,
        "steps": steps,
        "train_loss": float(np.mean(step_losses)),
        **{f"val_{k}": v for k, v in val["model"].items()},
        **{f"spline_{k}": v for k, v in val["spline"].items()},
        "wall_s": round(wall, 1),
    }


def train(data: Path, out: Path, **options) -> dict:
    """Train on data/ (from `prepare`) as `TrainConfig(**options)` says, resuming from
    out/state.pt when it exists: {"best", "out", "step_losses"}."""
    config = TrainConfig(**options)
    device = pick_device(config.device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_hr = np.load(Path(data) / "train_hr.npy", mmap_mode="r")
    val_hr = np.load(Path(data) / "val_hr.npy", mmap_mode="r")
    stride, rate = patch_stride(data), data_rate(data)
    band_ends = row_band_ends(data) if config.band_mask else None
    if config.band_mask:
        if band_ends is None or len(band_ends) != len(train_hr):
            raise ValueError(f"--band-mask: {data}/manifest.json does not give each voice's band")
        if config.speed:
            raise ValueError("--band-mask with --speed: speed perturbation moves the band end")
    state_path = out / "state.pt"
    resuming = state_path.exists()
    # On resume the weights come from state.pt; `init` only seeds a new run.
    net, args = build_net(config, device, None if resuming else config.init)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    adversary = Adversary(device) if config.adversarial else None
    steps = config.steps_per_epoch or max(1, len(train_hr) // config.batch_size)
    start, best, wall = 0, -np.inf, 0.0
    if resuming:
        state, opt_state = checkpoint.load_resume(state_path, device)
        net.load_state_dict(state["net"])
        opt.load_state_dict(opt_state)
        if adversary is not None:
            adversary.load_state_dict(state["adversary"])
        start, best, wall = state["epoch"], state["best"], state["wall_s"]
        print(f"resuming {out} at epoch {start}", flush=True)
    print(
        f"{config.model}: {parameter_count(net):,} parameters, {len(train_hr)} train patches,"
        f" {steps} steps/epoch on {device}",
        flush=True,
    )
    rng = np.random.default_rng(config.seed + start)
    fit = losses.objective(
        config.loss,
        config.stft_weight,
        config.mel_weight,
        config.mel_over,
        rate,
        config.frame_weight,
    )
    save = functools.partial(
        checkpoint.save,
        net=net,
        init_args=args,
        input_rate=rate // config.scale,
        scale=config.scale,
        half=True,
    )
    begun, all_losses = time.time(), []
    for epoch in range(start + 1, min(config.epochs, config.stop_after or config.epochs) + 1):
        t0 = time.time()
        print(f"epoch {epoch}/{config.epochs}", flush=True)
        set_learning_rate(opt, config, epoch - 1)
        step_losses = train_epoch(
            net,
            opt,
            fit,
            adversary,
            (train_hr, stride, rate, band_ends),
            config,
            steps,
            rng,
            device,
        )
        all_losses += step_losses
        wall += time.time() - t0
        val = validate(net, val_hr, config.scale, device, stride=stride, rate=rate)
        row = log_row(epoch, epoch * steps, step_losses, val, wall)
        append_log(out / "log.csv", row)
        print(json.dumps(row), flush=True)
        record = training_record(config, row, val, device)
        # Every epoch's weights (fp16, ~2 MB for the U-Nets) for `average` to combine later.
        save(out / "epochs" / f"{epoch:03d}.safetensors", training=record)
        merit = epoch_merit(val, config.select, config.scale)
        if merit > best:
            best = merit
            save(out / "best.safetensors", training=record)
        resume = {
            "net": net.state_dict(),
            "epoch": epoch,
            "best": float(best),
            "wall_s": wall,
            **({"adversary": adversary.state_dict()} if adversary else {}),
        }
        checkpoint.save_resume(state_path, resume, opt.state_dict())
        plot_curves(out / "log.csv", out / "curves.png")
        if config.max_minutes and (time.time() - begun) > config.max_minutes * 60:
            print(f"stopping after {config.max_minutes} minutes", flush=True)
            break
    return {"best": float(best), "out": str(out), "step_losses": all_losses}


def average(run: Path, out: Path, *, data: Path, first: int, last: int | None = None) -> dict:
    """Average the weights a run kept for epochs first..last, validate, save out/best.safetensors.

    Averaging the late epochs of one run (Izmailov et al. 2018, stochastic weight averaging) lands
    nearer the middle of the basin than any single epoch; on unheard voices the average beat the
    mean of the epochs it combines (experiments/LOG.md), and it costs nothing at inference.
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
    val_hr = np.load(Path(data) / "val_hr.npy", mmap_mode="r")
    val = validate(
        net,
        val_hr,
        meta["scale"],
        "cpu",
        stride=patch_stride(Path(data)),
        rate=meta["input_rate"] * meta["scale"],
    )
    epochs = [int(f.stem) for f in chosen]
    # The last epoch's record (its steps, wall time), with the average's own validation.
    training = {
        **checkpoint.read_metadata(chosen[-1])["training"],
        "averaged_epochs": epochs,
        "run": Path(run).name,
        "val": val,
    }
    checkpoint.save_like(Path(out) / "best.safetensors", net, meta, training)
    return {"epochs": epochs, "val": val, "out": str(out)}
