"""One job's audio work: decode, make or take the low-res input, super-resolve, score, plot."""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time

import numpy as np
import redis

from model import audio, metrics, registry
from model.registry import OUTPUT_RATE
from worker.config import Settings
from worker.jobs import (
    FULL_BAND,
    JobRejected,
    check_audio,
    check_reference_rate,
    check_size,
    resolve_model,
)
from worker.jobstore import JobGone, JobStore

# Percent of the progress bar reached when each stage starts; upsampling fills 20..80.
STAGES = {
    "decoding": 2.0,
    "loading model": 8.0,
    "resampling": 12.0,
    "upsampling": 20.0,
    "scoring": 80.0,
    "plotting": 88.0,
    "saving": 95.0,
}
UPSAMPLE_SPAN = 60.0
PROGRESS_INTERVAL_S = 0.25

log = logging.getLogger(__name__)
_upsamplers: dict[tuple[str, int, str], object] = {}
model_loads = 0


class JobFailed(Exception):
    """The job cannot be done; the message is for the person who sent it."""


def upsampler(name: str, scale: int, device: str):
    """The loaded model for (name, scale), loaded once per worker process and kept."""
    global model_loads
    key = (name, scale, device)
    if key not in _upsamplers:
        from model.inference import Upsampler  # torch: only worker children pay for it

        try:
            _upsamplers[key] = Upsampler.load(name, scale=scale, device=device)
        except (LookupError, RuntimeError) as err:
            raise JobFailed(f"the worker could not load model {name!r}: {err}") from None
        model_loads += 1
    return _upsamplers[key]


def warm_up() -> None:
    """Resample and plot a moment of silence, so the first job does not wait on slow imports."""
    from model import plots

    silence = np.zeros(1600, dtype=np.float32)
    lowres = audio.resample(silence, OUTPUT_RATE, OUTPUT_RATE // 4)
    plots.spectrogram_comparison(None, lowres, silence, OUTPUT_RATE, OUTPUT_RATE // 4)


class Progress:
    """Writes stage and percent into the job's status, at most every PROGRESS_INTERVAL_S."""

    def __init__(self, store: JobStore, job_id: str):
        self.store, self.job_id = store, job_id
        self.stage, self.last_write = None, 0.0
        self.stage_times: dict[str, float] = {}
        self.stage_start = time.perf_counter()

    def start(self, stage: str) -> None:
        now = time.perf_counter()
        if self.stage is not None:
            self.stage_times[self.stage] = round(now - self.stage_start, 4)
        self.stage, self.stage_start = stage, now
        self._write(STAGES[stage], force=True)

    def upsampling(self, fraction: float) -> None:
        self._write(STAGES["upsampling"] + UPSAMPLE_SPAN * min(max(fraction, 0.0), 1.0))

    def finish(self) -> dict[str, float]:
        self.stage_times[self.stage] = round(time.perf_counter() - self.stage_start, 4)
        return self.stage_times

    def _write(self, percent: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_INTERVAL_S:
            return
        self.last_write = now
        progress = {"stage": self.stage, "percent": round(percent, 1)}
        try:
            self.store.update(self.job_id, lambda s: s.update(progress=progress))
        except redis.RedisError:
            # Progress is best effort: a stalled Redis must not stop the work itself.
            log.warning("could not write the progress of job %s", self.job_id)


def run(store: JobStore, job_id: str, settings: Settings) -> None:
    """Process one queued (or redelivered) job and mark it done; raise JobFailed if it cannot be."""
    meta, data = store.meta(job_id), store.file(job_id, "input")
    if meta is None or data is None:
        raise JobGone(job_id)
    started = time.time()
    status = store.update(job_id, _mark_running)
    params = status["params"]
    progress = Progress(store, job_id)

    progress.start("decoding")
    x, rate, promised = _decode(data, params, settings)
    warnings, silent = describe(x, rate, promised)
    source = {
        "filename": meta.get("filename"),
        "rate": rate,
        "channels": x.shape[0],
        "bandwidth_hz": (status.get("input") or {}).get("bandwidth_hz"),
    }
    audio_s = x.shape[-1] / rate

    progress.start("loading model")
    up = upsampler(params["model"], int(params["scale"]), settings.device)
    chain = _chain(up, params, settings)

    if params["mode"] == "simulate":
        result = _simulate(audio.to_mono(x), rate, up, progress)
        if silent:
            result["metrics"] = None  # SNR and LSD of silence against silence mean nothing
    else:
        result = _enhance(x, rate, chain, progress, params.get("output_rate") or "model")
    _store_outputs(store, job_id, result, up, progress, source["bandwidth_hz"])

    processing_s = time.time() - started
    stages = progress.finish()
    # The model's own time apart from the whole job's (decoding, scoring, plotting, storing).
    model_s = stages.get("upsampling", 0.0)
    timings = {
        "queued_s": round(started - meta["created_at"], 3),
        "processing_s": round(processing_s, 3),
        "audio_s": round(audio_s, 3),
        "realtime_factor": round(audio_s / max(processing_s, 1e-6), 2),
        "model_s": round(model_s, 4),
        "model_realtime_factor": round(audio_s / max(model_s, 1e-6), 1),
        "device": up.device,
    }
    record = {
        "id": job_id,
        "params": {**params, "model": up.name},
        "chain": chain.names,
        "input": source,
        "lowres_rate": up.input_rate,
        "output_rate": result["output_rate"],
        "timings": timings,
        "stages_s": stages,
        "metrics": result["metrics"],
        "warnings": warnings,
        "worker": {"host": socket.gethostname(), "pid": os.getpid(), "model_loads": model_loads},
        "attempt": meta["attempts"],
    }
    store.put_file(job_id, "result.json", json.dumps(record, indent=2).encode())
    store.update(
        job_id,
        lambda status: _mark_done(status, timings, result["metrics"], chain.names, warnings),
    )


def _chain(up, params: dict, settings: Settings):
    """The models a job runs, in order: `up`, then, for full-band output in enhance mode, the
    model that takes its output on to 48 kHz (`full_band_stages`), loaded once per process."""
    # torch, which these import, `upsampler` has loaded already.
    from model.inference import Chain, full_band_stages

    if params["mode"] != "enhance" or params.get("output_rate") != FULL_BAND:
        return Chain([up])
    load = lambda e: upsampler(e["name"], e["scale"], settings.device)  # noqa: E731
    return Chain([up, *full_band_stages(up, load)])


def _store_outputs(
    store: JobStore, job_id: str, result: dict, up, progress: Progress, cutoff_hz: float | None
) -> None:
    """Plot the spectrograms (channels mixed; the detected cut-off marked) and write every audio
    output to the job store."""
    progress.start("plotting")
    from model import plots  # matplotlib: imported where it is used, in the worker only

    png = plots.spectrogram_comparison(
        result["reference"],
        audio.to_mono(result["lowres"]),
        audio.to_mono(result["superres"]),
        result["output_rate"],
        up.input_rate,
        cutoff_hz=cutoff_hz,
    )

    progress.start("saving")
    files = {
        "lowres.wav": audio.to_wav_bytes(result["lowres"], up.input_rate),
        "superres.wav": audio.to_wav_bytes(result["superres"], result["output_rate"]),
        "spectrogram.png": png,
    }
    if result["reference"] is not None:
        files["reference.wav"] = audio.to_wav_bytes(result["reference"], up.output_rate)
    for name, blob in files.items():
        store.put_file(job_id, name, blob)


def _mark_running(status: dict) -> None:
    # A redelivered job starts over: drop outputs listed by an attempt that died.
    status.update(state="running", error=None, files=["input"])


def _mark_done(
    status: dict, timings: dict, scores: dict | None, chain: list[str], warnings: list[str]
) -> None:
    status.update(
        state="done",
        progress={"stage": "done", "percent": 100.0},
        error=None,
        timings=timings,
        metrics=scores,
        warnings=warnings,
        chain=chain,
    )
    status["params"]["model"] = chain[0]


def _decode(data: bytes, params: dict, settings: Settings) -> tuple[np.ndarray, int, int]:
    """Check the upload again (this worker's limits may differ from the web's), then decode it:
    (samples [C x T], rate, the frames its header promised)."""
    try:
        check_size(len(data), settings)
        frames, rate, channels = audio.info(data)
        check_audio(frames, rate, channels, settings)
        entry = resolve_model(params["model"], int(params["scale"]), settings)
        check_reference_rate(rate, params["mode"], entry)
        x, rate = audio.load(data)
        return x, rate, frames
    except (JobRejected, audio.AudioError) as err:
        raise JobFailed(str(err)) from None


# Quieter than this at its loudest 100 ms, a recording holds no speech to restore.
SILENCE_DBFS = -60.0
# A decode this much shorter than the header promised lost part of the file.
SHORTFALL_S = 0.05


def describe(x: np.ndarray, rate: int, promised: int) -> tuple[list[str], bool]:
    """What a person should know about their audio before trusting the result (silence, or a
    file that decoded shorter than its header said), and whether it is silent."""
    warnings = []
    mono = audio.to_mono(x)
    block = max(1, rate // 10)
    blocks = mono[: len(mono) // block * block].reshape(-1, block) if len(mono) >= block else None
    loudest = float(np.sqrt((blocks**2).mean(axis=1)).max()) if blocks is not None else 0.0
    level = 20 * np.log10(max(loudest, 1e-10))
    silent = level < SILENCE_DBFS
    if silent:
        warnings.append(
            f"the audio is silent or nearly so (its loudest 0.1 s is at {level:.0f} dBFS): there is no speech"
            " to restore, and no scores are given"
        )
    missing_s = (promised - x.shape[-1]) / rate
    if missing_s > SHORTFALL_S:
        warnings.append(
            f"the file's header promised {promised / rate:.2f} s but only {x.shape[-1] / rate:.2f} s"
            f" could be decoded: {missing_s:.2f} s were damaged and are left out"
        )
    return warnings, silent


def _simulate(x: np.ndarray, rate: int, up, progress: Progress) -> dict:
    """The input is the reference at the model's output rate (16 kHz, or 48 kHz for a 44.1 or
    48 kHz recording at x3): decimate it with the paper's filter, super-resolve, score."""
    progress.start("resampling")
    reference = audio.resample(x, rate, up.output_rate)
    # Whole low-res samples only, so output and reference have the same length.
    reference = reference[: len(reference) - len(reference) % up.scale]
    lowres = audio.lowres(reference, up.scale, rate=up.output_rate)

    progress.start("upsampling")
    superres = up(lowres[None], progress=progress.upsampling)[0]

    progress.start("scoring")
    spline = audio.spline(lowres, up.scale)
    scores = {
        "model": _score(reference, superres, up),
        "spline": _score(reference, spline, up),
    }
    return {
        "reference": reference,
        "lowres": lowres,
        "superres": superres,
        "output_rate": up.output_rate,
        "metrics": scores,
    }


def _enhance(x: np.ndarray, rate: int, chain, progress: Progress, output_rate: str) -> dict:
    """The input [C x T] is already low-res: bring it to the first model's input rate and run the
    chain on each channel; with `output_rate` "input", write the result at the upload's rate when
    higher, with "48000" at 48 kHz (resampled when no model of the chain writes it)."""
    progress.start("resampling")
    lowres = audio.resample(x, rate, chain.input_rate)

    progress.start("upsampling")
    superres, superres_rate = chain(lowres, progress=progress.upsampling), chain.output_rate
    if output_rate == "input" and rate > superres_rate:
        superres, superres_rate = audio.resample(superres, superres_rate, rate), rate
    elif output_rate == FULL_BAND and superres_rate != registry.FULL_BAND_RATE:
        full_band = registry.FULL_BAND_RATE
        superres, superres_rate = audio.resample(superres, superres_rate, full_band), full_band
    return {
        "reference": None,
        "lowres": lowres,
        "superres": superres,
        "output_rate": superres_rate,
        "metrics": None,
    }


def _score(reference: np.ndarray, estimate: np.ndarray, up) -> dict[str, float | None]:
    """SNR, LSD, LSD of the band above the input's Nyquist, and SNR below it (what the input had,
    kept?) of one estimate against the reference, both at `up`'s output rate."""
    scores = {
        "snr": metrics.snr(reference, estimate),
        "lsd": metrics.lsd(reference, estimate),
        "lsd_hf": metrics.lsd_hf(reference, estimate, up.scale),
        "lowband_snr": metrics.lowband_snr(
            reference, estimate, input_rate=up.input_rate, rate=up.output_rate
        ),
    }
    # JSON has no NaN or Infinity; a silent reference can produce them.
    return {k: (round(v, 4) if math.isfinite(v) else None) for k, v in scores.items()}
