"""Submit a job: check the upload and its parameters, store it, enqueue `upsample(job_id)`."""

from __future__ import annotations

import logging

import kombu.exceptions
import numpy as np
import redis
from celery import Celery

from model import audio, registry
from worker.config import Settings
from worker.jobqueue import LONG_QUEUE, SHORT_QUEUE, UPSAMPLE_TASK, queued_jobs
from worker.jobstore import JobStore

MODES = ("simulate", "enhance")
# scale "auto": the input's own bandwidth picks the model (enhance mode); in simulate mode the
# input is the wideband reference, so auto means the paper's x4.
AUTO = "auto"
SIMULATE_AUTO_SCALE = 4
# Where the result is written: the model's output rate, the upload's own when that is higher, or
# full band (48 kHz: through the 16 -> 48 kHz model after a model that writes 16 kHz).
FULL_BAND = str(registry.FULL_BAND_RATE)
OUTPUT_RATES = ("model", "input", FULL_BAND)
# The stretch of an upload whose spectrum decides the scale: enough for any voice, and the web
# process never holds a whole 10-minute file for it.
BANDWIDTH_SECONDS = 60.0
MAX_CHANNELS = 2
MIN_SECONDS = 0.25
# Frames decoded at a time when checking an upload: memory stays small whatever its length.
CHECK_BLOCK_FRAMES = 1 << 16
UNREACHABLE = "the job queue is not reachable right now; try again shortly"
# Uploads are refused once Redis would pass this share of its memory cap (maxmemory).
MEMORY_HEADROOM = 0.9

log = logging.getLogger(__name__)


class JobRejected(ValueError):
    """A job refused before it was stored; the message is for the person, with an HTTP status
    (and, for 429 and 503, how many seconds to wait before trying again)."""

    def __init__(self, message: str, http_status: int = 400, retry_after: int | None = None):
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after


def submit(
    store: JobStore,
    audio_bytes: bytes,
    *,
    filename: str,
    mode: str,
    scale: int | str,
    model: str | None = None,
    output_rate: str = "model",
    client: str | None = None,
    settings: Settings,
    celery: Celery,
) -> str:
    """Validate, store and enqueue one job; return its id or raise JobRejected (400/413/415/422).

    `scale` is a number or "auto" (the input's bandwidth picks it in enhance mode). `settings`
    holds the limits; the job goes on the queue of `celery`, whose broker must be the Redis behind
    `store`. A Redis that cannot be reached is a 503, and nothing is left behind. `client` (the
    sender's address) is held to Settings.max_client_audio_s of audio waiting or running at once.
    """
    if not audio_bytes:
        raise JobRejected("the file is empty", 400)
    if mode not in MODES:
        raise JobRejected(f"mode must be one of {', '.join(MODES)}, not {str(mode)[:20]!r}", 400)
    if scale != AUTO and (isinstance(scale, bool) or not isinstance(scale, int)):
        raise JobRejected(
            f"scale must be 'auto' or a whole number such as 2 or 4, not {str(scale)[:20]!r}"
        )
    if output_rate not in OUTPUT_RATES:
        raise JobRejected(
            f"output_rate must be one of {', '.join(OUTPUT_RATES)}, not {str(output_rate)[:20]!r}"
        )
    if mode == "simulate" and output_rate != "model":
        # The result is scored against the upload made into the model's reference: same rate.
        raise JobRejected(
            "output_rate applies to enhance mode; simulate mode writes the model's rate, that of "
            "the reference it is compared with"
        )
    check_size(len(audio_bytes), settings)
    try:
        frames, rate, channels = audio.info(audio_bytes)
    except audio.AudioError as err:
        raise JobRejected(str(err), 415) from None
    check_audio(frames, rate, channels, settings)
    # One decoding pass checks every sample and keeps the stretch that scale "auto" judges.
    detect = scale == AUTO and mode == "enhance"
    head, rate = check_samples(audio_bytes, BANDWIDTH_SECONDS if detect else 0.0)
    scale, bandwidth = choose_scale(head, rate, mode, scale)
    entry = resolve_model(model, scale, settings)
    check_reference_rate(rate, mode, entry)

    audio_s = frames / rate
    try:
        admit(store, len(audio_bytes), audio_s, client, settings)
    except redis.RedisError:
        log.exception("could not check the queue")
        raise JobRejected(UNREACHABLE, 503, retry_after=5) from None

    params = {
        "mode": mode,
        "scale": scale,
        "model": entry["name"],
        "filename": filename,
        "auto": bandwidth is not None,
        "output_rate": output_rate,
        "input": {"rate": rate, "channels": channels, "bandwidth_hz": bandwidth},
    }
    try:
        job_id = store.create(audio_bytes, params)
    except redis.RedisError:
        log.exception("could not store a job")
        raise JobRejected(UNREACHABLE, 503) from None
    try:
        # The job store holds the status; a Celery result would only add a pub/sub subscription
        # per job to the web process.
        queue = LONG_QUEUE if audio_s > settings.long_job_s else SHORT_QUEUE
        celery.send_task(
            UPSAMPLE_TASK, args=[job_id], task_id=job_id, ignore_result=True, queue=queue
        )
        if client:
            store.hold(client, job_id, audio_s)
    except (redis.RedisError, kombu.exceptions.OperationalError):
        log.exception("could not enqueue job %s", job_id)
        store.delete(job_id)
        raise JobRejected(UNREACHABLE, 503) from None
    return job_id


def admit(store: JobStore, n_bytes: int, audio_s: float, client: str | None, settings) -> None:
    """Refuse a job the service cannot take now: the queue is full (503), Redis has no memory
    for its upload (503), or its sender already has too much audio waiting (429)."""
    queued = queued_jobs(store.redis)
    if queued >= settings.max_queued_jobs:
        raise JobRejected(
            f"the queue is full ({queued} jobs waiting); try again in a few minutes", 503, 60
        )
    memory = store.redis.info("memory")
    limit = int(memory.get("maxmemory") or 0)
    # The upload, and outputs of about the same size again, must fit under Redis's cap.
    if limit and memory["used_memory"] + 2 * n_bytes > MEMORY_HEADROOM * limit:
        raise JobRejected(
            "the server has no room for more uploads right now; try again in a few minutes",
            503,
            60,
        )
    if client:
        held = store.held_audio_s(client)
        if held + audio_s > settings.max_client_audio_s:
            raise JobRejected(
                f"you already have {held:.0f} s of audio waiting or running; the limit is "
                f"{settings.max_client_audio_s:.0f} s at once: wait for those jobs to finish",
                429,
                30,
            )


def choose_scale(head: np.ndarray, rate: int, mode: str, scale: int | str):
    """(scale, detected bandwidth in Hz or None): a given scale as it is; "auto" in enhance mode
    from the bandwidth of `head` (the upload's first seconds), refused (422) when no model would
    add to it."""
    if scale != AUTO:
        return scale, None
    if mode == "simulate":
        return SIMULATE_AUTO_SCALE, None
    bandwidth = round(audio.bandwidth(head, rate))
    try:
        return registry.pair_for_bandwidth(bandwidth)[1], bandwidth
    except registry.AlreadyWide as err:
        raise JobRejected(f"{err}; nothing to do in enhance mode", 422) from None


def resolve_model(model: str | None, scale: int, settings: Settings) -> dict:
    """The registry entry a job will run: the named model, WORKER_CHECKPOINT, or the default.

    With no model named and none shipped for this scale, the spline baseline runs, and the job's
    params say so.
    """
    scales = sorted({m["scale"] for m in registry.available_models()})
    if scale not in scales:
        raise JobRejected(
            f"scale {scale} is not supported; choose {' or '.join(map(str, scales))}", 422
        )
    name = model or settings.checkpoint
    try:
        return registry.find(name, None, scale)
    except LookupError as err:
        if name:
            raise JobRejected(str(err), 422) from None
    return registry.find("spline", None, scale)


def check_size(n_bytes: int, settings: Settings) -> None:
    """Refuse files above MAX_UPLOAD_BYTES (the worker checks again: its limits may differ)."""
    if n_bytes > settings.max_bytes:
        raise JobRejected(
            f"the file is {n_bytes / 1e6:.1f} MB; the limit is {settings.max_bytes / 1e6:.0f} MB",
            413,
        )


def check_audio(frames: int, rate: int, channels: int, settings: Settings) -> None:
    """Refuse audio too long or short, with too many channels, or at too low a rate."""
    seconds = frames / rate
    if seconds > settings.max_seconds:
        raise JobRejected(
            f"the audio is {_clock(seconds)} long; the limit is {_clock(settings.max_seconds)}",
            413,
        )
    if seconds < MIN_SECONDS:
        raise JobRejected(f"the audio lasts {seconds:.2f} s; send at least {MIN_SECONDS} s", 422)
    if channels > MAX_CHANNELS:
        raise JobRejected(f"the audio has {channels} channels; send mono or stereo", 422)
    if rate < 1000:
        raise JobRejected(f"a sample rate of {rate} Hz is too low to be speech", 422)


def check_reference_rate(rate: int, mode: str, entry: dict) -> None:
    """Simulate mode needs a reference as wide as the model's output: sampled at its output rate,
    or at most a tenth below it (44.1 kHz for 48 kHz output, whose band it nearly fills)."""
    lowest = round(registry.ALREADY_WIDE * entry["output_rate"])
    if mode == "simulate" and rate < lowest:
        raise JobRejected(
            f"simulate mode needs audio sampled at {entry['output_rate']} Hz (at least {lowest} Hz)"
            f" to use as the reference at x{entry['scale']}; this file is {rate} Hz: choose enhance"
            " mode to upsample it instead",
            422,
        )


def check_samples(audio_bytes: bytes, keep_seconds: float = 0.0) -> tuple[np.ndarray, int]:
    """Refuse an upload whose body breaks off (415) or holds NaN or infinity (422); return its
    first `keep_seconds` [C x T] and its rate.

    The header alone passes a FLAC cut short or a float WAV of NaNs; without this check such a file
    would be accepted with a 202 and only fail later, on a worker.
    """
    try:
        return audio.verify(audio_bytes, block=CHECK_BLOCK_FRAMES, keep_seconds=keep_seconds)
    except audio.NonFiniteAudio as err:
        raise JobRejected(str(err), 422) from None
    except audio.AudioError as err:
        raise JobRejected(str(err), 415) from None


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"
