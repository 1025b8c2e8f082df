"""The commands behind `python -m model`: upsample a file, evaluate against baselines, benchmark."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from model import audio, metrics, registry
from model.data import AUDIO_SUFFIXES

# The `output_rate` that asks for full band: 48 kHz, whatever the model writes.
FULL_BAND = str(registry.FULL_BAND_RATE)


def upsample(
    input: str | Path,
    output: str | Path,
    *,
    scale: int | None = None,
    checkpoint: str | None = None,
    output_rate: str = "model",
    device: str = "auto",
) -> dict:
    """IN -> OUT with the shipped model for (IN's rate, scale) or `checkpoint`.

    With no `scale`, the input's effective bandwidth picks the model (`audio.bandwidth`,
    `registry.pair_for_bandwidth`: the narrowest model input band that holds it), and the input is
    resampled to that model's input rate. With a `scale`, IN must be at the model's input rate
    (any rate for "spline"). `output_rate="input"` writes OUT at IN's rate when that is higher
    than the model's output; "48000" writes it at 48 kHz, through the 16 -> 48 kHz model after a
    model that writes 16 kHz (`chain` in the result names the models in order). Stereo stays
    stereo.
    """
    from model.inference import Chain, Upsampler, full_band_stages

    started = time.perf_counter()
    x, rate = audio.load(input)
    bandwidth = None
    if scale is None:
        bandwidth = audio.bandwidth(x, rate)
        input_rate, scale = registry.pair_for_bandwidth(bandwidth)
        upsampler = Upsampler.load(checkpoint, input_rate=input_rate, scale=scale, device=device)
        x = audio.resample(x, rate, upsampler.input_rate)
    else:
        # The untrained spline baseline takes the file's rate as its own.
        upsampler = Upsampler.load(checkpoint, input_rate=rate, scale=scale, device=device)
        if upsampler.input_rate != rate:
            raise ValueError(
                f"{upsampler.name} expects {upsampler.input_rate} Hz input, the file is {rate} Hz;"
                " leave out --scale to let the file's bandwidth choose the model"
            )
    chain = Chain([upsampler])
    if output_rate == FULL_BAND:
        load = lambda e: Upsampler.load(  # noqa: E731
            e["name"], input_rate=e["input_rate"], scale=e["scale"], device=device
        )
        chain = Chain([upsampler, *full_band_stages(upsampler, load)])
    y, y_rate = chain(x), chain.output_rate
    if output_rate == "input" and rate > y_rate:
        y, y_rate = audio.resample(y, y_rate, rate), rate
    elif output_rate == FULL_BAND and y_rate != registry.FULL_BAND_RATE:
        # No model leads from this rate to 48 kHz: the file is written there, nothing added.
        y, y_rate = audio.resample(y, y_rate, registry.FULL_BAND_RATE), registry.FULL_BAND_RATE
    audio.save(output, y, y_rate)
    seconds = x.shape[-1] / upsampler.input_rate
    wall = time.perf_counter() - started
    return {
        "model": upsampler.name,
        "scale": scale,
        "chain": chain.names,
        "input_rate": rate,
        "channels": int(y.shape[0]),
        "bandwidth_hz": None if bandwidth is None else round(bandwidth),
        "output_rate": y_rate,
        "frames": int(y.shape[1]),
        "audio_s": round(seconds, 3),
        "wall_s": round(wall, 3),
        "realtime_factor": round(seconds / wall, 1),
    }


def list_files(spec: str | Path) -> list[Path]:
    """A folder (searched recursively), one audio file, or a text file naming one file per line."""
    spec = Path(spec)
    if spec.is_dir():
        return sorted(p for p in spec.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if spec.suffix.lower() in AUDIO_SUFFIXES:
        return [spec]
    lines = [line.strip() for line in spec.read_text().splitlines() if line.strip()]
    return [Path(line) if Path(line).is_absolute() else spec.parent / line for line in lines]


def _file_scores(
    hr, outputs: dict, scale: int, perceptual: bool, rate: int = metrics.PERCEPTUAL_RATE
) -> dict[str, dict]:
    """Every method's scores on one file at `rate`; with `perceptual`, the original's DNSMOS and
    DistillMOS too. Above 16 kHz the perceptual scores are `metrics.fullband`'s and the original
    has no row (the reference-free scores are 16 kHz ones)."""
    rows = {name: metrics.score(hr, est, scale) for name, est in outputs.items()}
    if perceptual and rate > metrics.PERCEPTUAL_RATE:
        for name, est in outputs.items():
            rows[name].update(metrics.fullband(hr, est, rate // scale, rate))
    elif perceptual:
        for name, est in outputs.items():
            rows[name].update(metrics.perceptual(hr, est, scale))
        rows["original"] = metrics.reference_free(hr)
    return rows


def _write_csv(path: Path, files: list[Path], rows: list[dict[str, dict]]) -> None:
    """One line per file and method: the file, the method, then every score it has."""
    import csv

    keys = sorted({key for row in rows for scores in row.values() for key in scores})
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "method", *keys])
        for file, row in zip(files, rows, strict=True):
            for method, scores in row.items():
                writer.writerow([file, method, *(scores.get(key, "") for key in keys)])


def evenly(paths: list, limit: int | None) -> list:
    """At most `limit` of the items, evenly spread (so every voice of a sorted folder is heard)."""
    if not limit or limit >= len(paths):
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, limit).astype(int)]


def per_voice(items: list[list[Path]], count: int | None) -> list[list[Path]]:
    """At most `count` items of each voice (the folder of an item's first file), evenly spread:
    a voice with many files weighs no more in the table than one with few."""
    if not count:
        return items
    voices: dict[Path, list] = {}
    for item in items:
        voices.setdefault(item[0].parent, []).append(item)
    return [item for voice in voices.values() for item in evenly(voice, count)]


def joined(paths: list[Path], seconds: float | None) -> list[list[Path]]:
    """Consecutive files of one folder (one voice) in groups of at least `seconds` of audio, so
    word-length clips become sentence-length items that ViSQOL and DNSMOS can judge; a group per
    file without `seconds`."""
    if not seconds:
        return [[p] for p in paths]
    groups, current, length = [], [], 0.0
    for path in paths:
        if current and current[-1].parent != path.parent:
            groups.append(current)  # a voice's last, shorter group: still that voice
            current, length = [], 0.0
        frames, rate, _ = audio.info(path)
        current.append(path)
        length += frames / rate
        if length >= seconds:
            groups.append(current)
            current, length = [], 0.0
    return groups + ([current] if current else [])


def _load_group(group: list[Path], rate: int) -> np.ndarray:
    """The files of a group at `rate`, mono, joined with 100 ms of silence."""
    gap = np.zeros(rate // 10, dtype=np.float32)
    parts = []
    for path in group:
        x, file_rate = audio.load(path)
        parts += [audio.resample(audio.to_mono(x), file_rate, rate), gap]
    return np.concatenate(parts[:-1])


def item_names(paths: list[Path]) -> list[str]:
    """The names `evaluate --out` gives its items' wavs: each item's first clip's stem, with its
    folder's name before it when an earlier item took the stem (voices share clip names, such
    as a.wav in several languages, and no item may overwrite another)."""
    names: list[str] = []
    for path in paths:
        names.append(path.stem if path.stem not in names else f"{path.parent.name}-{path.stem}")
    return names


def evaluate(
    checkpoint: str,
    files: str | Path,
    *,
    scale: int = 4,
    out: Path | None = None,
    filter: str = "cheby8",
    device: str = "auto",
    limit: int | None = None,
    join: float | None = None,
    voice_items: int | None = None,
    perceptual: bool = True,
    quiet: bool = False,
) -> dict:
    """Score the model, spline and sinc on the same low-res versions of high-res files.

    Each file is resampled to the model's output rate, low-passed and decimated with `filter`
    (the paper's order-8 Chebyshev by default), then super-resolved three ways; the table is the
    mean over files of per-file SNR, LSD and LSD-HF and, with `perceptual`, low-band SNR, ViSQOL,
    WB-PESQ, DNSMOS and DistillMOS (for the last two the original is a row too). A model whose
    output is above 16 kHz (x3 to 48 kHz) gets ViSQOL in audio mode and low-band SNR in place of
    the 16 kHz scores, and its written band's level per 1 kHz against the original's long-term
    spectrum (`written_band_levels`). `join` joins a voice's files into items of at least that
    many seconds; `voice_items` keeps at most that many items of each voice (`per_voice`); `limit`
    evaluates that many items, evenly spread.
    """
    from tqdm import tqdm

    from model.inference import Upsampler

    upsampler = Upsampler.load(checkpoint, scale=scale, device=device)
    groups = evenly(per_voice(joined(list_files(files), join), voice_items), limit)
    if not groups:
        raise FileNotFoundError(f"no audio files in {files}")
    paths, rows, powers = [group[0] for group in groups], [], []
    rate, fullband = upsampler.output_rate, upsampler.output_rate > metrics.PERCEPTUAL_RATE
    written_from_hz = upsampler.input_rate / 2
    for group, name in zip(
        tqdm(groups, desc=f"{upsampler.name} x{scale} {filter}", disable=quiet),
        item_names(paths),
        strict=True,
    ):
        hr = _load_group(group, rate)
        hr = hr[: len(hr) - len(hr) % scale]
        lr = audio.lowres(hr, scale, filter, rate=rate)
        sr = upsampler(lr)[0]
        outputs = {
            upsampler.name: sr,
            "spline": audio.spline(lr, scale),
            "sinc": audio.sinc(lr, scale),
        }
        rows.append(_file_scores(hr, outputs, scale, perceptual, rate))
        if fullband:
            powers.append([metrics.band_power(x, rate, written_from_hz) for x in (hr, sr)])
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            audio.save(out / f"{name}.hr.wav", hr, rate)
            audio.save(out / f"{name}.lr.wav", lr, upsampler.input_rate)
            audio.save(out / f"{name}.sr.wav", sr, rate)
    table = {name: metrics.mean_scores([row[name] for row in rows]) for name in rows[0]}
    result = {
        "checkpoint": upsampler.name,
        "scale": scale,
        "filter": filter,
        "files": len(paths),
        "joined_s": join,
        "voice_items": voice_items,
        "table": table,
        **comparisons(table, upsampler.name),
    }
    if fullband:
        result.update(
            input_rate=upsampler.input_rate,
            output_rate=rate,
            visqol_audio_items=sum("visqol_audio" in row[upsampler.name] for row in rows),
            **written_band_levels(powers, written_from_hz),
        )
    if out is not None:
        (out / "results.json").write_text(json.dumps(result, indent=2))
        _write_csv(out / "scores.csv", paths, rows)
    if not quiet:
        print(format_table(result))
        print(json.dumps(result))
    return result


def comparisons(table: dict, model: str) -> dict:
    """The figures the bars are set on: the model against sinc, spline and the original."""
    m, sinc, spline = table[model], table["sinc"], table["spline"]
    result = {
        "lsd_ratio_vs_sinc": sinc["lsd"] / m["lsd"],
        "snr_gain_vs_spline_db": m["snr"] - spline["snr"],
    }
    if "visqol" in m:
        result.update(
            visqol_gain_vs_sinc=m["visqol"] - sinc["visqol"],
            pesq_gain_vs_sinc=m["pesq"] - sinc["pesq"],
            lowband_snr_gain_vs_spline_db=m["lowband_snr"] - spline["lowband_snr"],
            dnsmos_p808_gap_closed=gap_closed(table, model, "dnsmos_p808"),
            distillmos_gap_closed=gap_closed(table, model, "distillmos"),
        )
    if "visqol_audio" in m:
        result.update(
            visqol_audio_gain_vs_sinc=m["visqol_audio"] - sinc["visqol_audio"],
            lowband_snr_gain_vs_spline_db=m["lowband_snr"] - spline["lowband_snr"],
        )
    return result


def written_band_levels(powers: list[list[np.ndarray]], from_hz: float) -> dict:
    """The model's level per band from `from_hz` up against the original's, in dB, from each
    item's [original, model] band powers (`metrics.band_power`): over the corpus (its long-term
    spectrum: powers summed over every item), the largest deviation of those, per item, and
    the median over items: the corpus sum is ruled by the loudest voices up there, the median
    says how a typical recording sounds."""
    hr, sr = np.sum(powers, axis=0)
    levels = metrics.level_db(hr, sr)
    per_item = np.array([metrics.level_db(*item) for item in powers])
    median = np.median(per_item, axis=0)
    return {
        "band_levels_from_hz": from_hz,
        "band_levels_db": [round(float(v), 3) for v in levels],
        "band_level_worst_db": float(np.max(np.abs(levels))),
        "band_levels_db_item_median": [round(float(v), 3) for v in median],
        "band_level_item_median_worst_db": float(np.max(np.abs(median))),
        "band_levels_db_per_item": [[round(float(v), 3) for v in item] for item in per_item],
    }


def gap_closed(table: dict, model: str, key: str) -> float | None:
    """The share of the gap in `key` from sinc to the original that the model closes (None when
    sinc and the original score the same)."""
    sinc, original = table["sinc"][key], table["original"][key]
    return (table[model][key] - sinc) / (original - sinc) if original != sinc else None


COLUMNS = (
    ("snr", "SNR dB", ".2f"),
    ("lsd", "LSD", ".3f"),
    ("lsd_hf", "LSD-HF", ".3f"),
    ("lowband_snr", "LB-SNR", ".2f"),
    ("visqol", "ViSQOL", ".3f"),
    ("visqol_audio", "ViSQOL-A", ".3f"),
    ("pesq", "WB-PESQ", ".3f"),
    ("dnsmos_p808", "P.808", ".3f"),
    ("dnsmos_sig", "SIG", ".3f"),
    ("dnsmos_bak", "BAK", ".3f"),
    ("dnsmos_ovrl", "OVRL", ".3f"),
    ("distillmos", "DistillMOS", ".3f"),
)


def format_table(result: dict) -> str:
    """The table as text: a row per method, a column per score it has ('-' where it has none)."""
    table = result["table"]
    shown = [c for c in COLUMNS if any(c[0] in row for row in table.values())]
    widths = [max(9, len(title) + 1) for _, title, _ in shown]

    def line(first: str, cells: list[str]) -> str:
        return f"{first:<24}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))

    lines = [
        f"{result['files']} items"
        + (f" (files joined to >= {result['joined_s']:g} s)" if result.get("joined_s") else "")
        + f", scale {result['scale']}, low-pass {result['filter']}"
        + (
            f", {result['input_rate']} -> {result['output_rate']} Hz"
            if "output_rate" in result
            else ""
        ),
        line("method", [title for _, title, _ in shown]),
    ]
    for name, row in table.items():
        cells = [format(row[key], fmt) if key in row else "-" for key, _, fmt in shown]
        lines.append(line(name, cells))
    lines.append(
        f"LSD(sinc)/LSD(model) = {result['lsd_ratio_vs_sinc']:.2f}; "
        f"SNR(model) - SNR(spline) = {result['snr_gain_vs_spline_db']:+.2f} dB"
    )
    if "visqol_gain_vs_sinc" in result:
        lines.append(
            f"ViSQOL - sinc = {result['visqol_gain_vs_sinc']:+.3f}; "
            f"WB-PESQ - sinc = {result['pesq_gain_vs_sinc']:+.3f}; "
            f"low-band SNR - spline = {result['lowband_snr_gain_vs_spline_db']:+.2f} dB"
        )
        lines.append(
            "share of the sinc-to-original gap the model closes: "
            f"DNSMOS P.808 {_percent(result['dnsmos_p808_gap_closed'])}; "
            f"DistillMOS {_percent(result['distillmos_gap_closed'])}"
        )
    if "visqol_audio_gain_vs_sinc" in result:
        scored = result["visqol_audio_items"]
        lines.append(
            f"ViSQOL (audio, 48 kHz) - sinc = {result['visqol_audio_gain_vs_sinc']:+.3f}"
            + (
                f" ({scored} items of >= {metrics.VISQOL_AUDIO_MIN_S:g} s)"
                if scored < result["files"]
                else ""
            )
            + f"; low-band SNR - spline = {result['lowband_snr_gain_vs_spline_db']:+.2f} dB"
        )
    if "band_levels_db" in result:
        lines.append(
            f"written band level vs original, dB per {metrics.BAND_WIDTH_HZ / 1000:g} kHz from "
            f"{result['band_levels_from_hz'] / 1000:g} kHz: "
            + " ".join(f"{v:+.1f}" for v in result["band_levels_db"])
            + f" (worst {result['band_level_worst_db']:.1f} dB)"
        )
    if "band_levels_db_item_median" in result:
        lines.append(
            "  the same, median over items: "
            + " ".join(f"{v:+.1f}" for v in result["band_levels_db_item_median"])
            + f" (worst {result['band_level_item_median_worst_db']:.1f} dB)"
        )
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f} %"


def ship(
    run: Path,
    name: str,
    *,
    default: bool = False,
    scale: int | None = None,
    written_gain_db: float | None = None,
    crossover: float | None = None,
) -> dict:
    """Copy run/best.safetensors to model/checkpoints/<name>.safetensors, marking the default.

    Only one shipped model per (input rate, scale) stays the default. `scale` ships a multi-rate
    net for one of its scales (ship it once per scale, under a name each); `written_gain_db`
    sets a time-frequency generator's level for the band it writes at that scale, `crossover`
    where (a fraction of the input's Nyquist) its output stops being the input (1.0: all of the
    input's band is kept as it is, for input whose band really reaches its Nyquist).
    """
    from model import checkpoint

    net, meta = checkpoint.load(Path(run) / "best.safetensors")
    if scale is not None:
        meta = registry.for_scale(meta, scale)
    if written_gain_db is not None:
        if meta["class"] != "SpectralBWE":
            raise ValueError(f"--written-gain-db: {meta['class']} writes no band of its own")
        meta = {**meta, "args": {**meta["args"], "written_gain_db": written_gain_db}}
    if crossover is not None:
        if meta["class"] != "SpectralBWE":
            raise ValueError(f"--crossover: {meta['class']} has no crossover")
        meta = {**meta, "args": {**meta["args"], "crossover": crossover}}
    training = {**meta["training"], "default": default, "run": Path(run).name}
    if default:
        for entry in registry.available_models():
            same_pair = (entry["input_rate"], entry["scale"]) == (meta["input_rate"], meta["scale"])
            if entry["path"] and entry["default"] and same_pair and entry["name"] != name:
                other, other_meta = checkpoint.load(entry["path"])
                unmarked = {**other_meta["training"], "default": False}
                checkpoint.save_like(entry["path"], other, other_meta, unmarked)
    dest = registry.CHECKPOINT_DIR / f"{name}.safetensors"
    checkpoint.save_like(dest, net, meta, training)
    return {"path": str(dest), "bytes": dest.stat().st_size, "default": default}


def speechlike(seconds: float, rate: int) -> np.ndarray:
    """Harmonic bursts with a syllable-rate envelope: a cheap stand-in with speech-like structure,
    float32 [1 x T]."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(
        np.sin(2 * np.pi * f0 * t * (1 + 0.05 * np.sin(t))) / k
        for k, f0 in enumerate((140, 280, 420, 560), 1)
    )
    x = 0.2 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)[None]


def time_net(upsampler, x: np.ndarray) -> float:
    """Wall seconds of one pass of the loaded model over `x`, after a one-second warm-up."""
    import torch

    upsampler(x[:, : upsampler.input_rate])  # warm-up: allocator, kernels
    started = time.perf_counter()
    upsampler(x)
    if upsampler.device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - started


def time_cli(checkpoint: str, x: np.ndarray, rate: int, scale: int, device: str) -> float:
    """Wall seconds of `python -m model upsample` on `x` as a user runs it: process start-up,
    torch import, loading, decoding and writing included."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        audio.save(src, x, rate)
        command = [sys.executable, "-m", "model", "upsample", str(src), str(dst)]
        command += ["--scale", str(scale), "--checkpoint", checkpoint, "--device", device]
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started


def bench(device: str = "auto", seconds: float = 300, scale: int | None = None) -> dict:
    """x real time of each shipped model on `seconds` of synthetic speech-like low-res audio: the
    net alone (model already loaded) and the whole `python -m model upsample` command."""
    import sys

    import torch

    from model.inference import Upsampler

    results = {
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "seconds": seconds,
        "models": [],
    }
    for entry in registry.available_models():
        if scale is not None and entry["scale"] != scale:
            continue
        checkpoint = entry["path"] or "spline"
        upsampler = Upsampler.load(checkpoint, scale=entry["scale"], device=device)
        x = speechlike(seconds, upsampler.input_rate)
        cli_wall = time_cli(checkpoint, x, upsampler.input_rate, entry["scale"], device)
        row = {
            "name": entry["name"],
            "arch": entry["arch"],
            "input_rate": upsampler.input_rate,
            "scale": entry["scale"],
            "device": upsampler.device,
            "net_realtime_factor": round(seconds / time_net(upsampler, x), 1),
            "cli_realtime_factor": round(seconds / cli_wall, 1),
            "cli_wall_s": round(cli_wall, 2),
        }
        results["models"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return results
