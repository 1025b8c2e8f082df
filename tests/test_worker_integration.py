"""Real Redis, a real Celery worker process: jobs submitted as the web submits them, outputs checked."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import pytest
import redis
import soundfile as sf
import torch

from model import audio
from worker.config import Settings
from worker.jobqueue import UPSAMPLE_TASK, make_celery
from worker.jobs import submit
from worker.jobstore import FINISHED, JobStore
from worker.local import wait_for_job

from .waits import HANG_S

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def settings(redis_url):
    return Settings(redis_url=redis_url, checkpoint="spline")


@pytest.fixture(scope="module")
def store(settings, celery_worker):
    return JobStore(redis.Redis.from_url(settings.redis_url), settings.job_ttl_s)


@pytest.fixture(scope="module")
def celery(settings):
    celery = make_celery(settings)
    yield celery
    celery.close()


@pytest.fixture(scope="module")
def speech(speech_wav):
    x, rate = audio.load(speech_wav)
    return audio.to_mono(x), rate


def run(store, celery, data: bytes, **job) -> tuple[dict, list[dict]]:
    """Submit like the web does and poll to the end; return the final status and every snapshot."""
    job = {"filename": "speech.wav", "mode": "simulate", "scale": 4, "model": "spline", **job}
    job_id = submit(store, data, settings=celery.settings, celery=celery, **job)
    snapshots, deadline = [], time.monotonic() + HANG_S
    while not snapshots or snapshots[-1]["state"] not in FINISHED:
        assert time.monotonic() < deadline, f"job stuck: {snapshots[-1]}"
        snapshots.append(store.status(job_id))
        time.sleep(0.02)
    return snapshots[-1], snapshots


def wav(store, status: dict, name: str) -> tuple[np.ndarray, int]:
    x, rate = sf.read(io.BytesIO(store.file(status["id"], name)), dtype="float32")
    return x, rate


def result_json(store, status: dict) -> dict:
    return json.loads(store.file(status["id"], "result.json"))


def test_simulate_scores_the_model_and_spline_on_the_same_audio(store, celery, speech_wav):
    status, _ = run(store, celery, speech_wav.read_bytes())

    assert status["state"] == "done", status["error"]
    assert status["error"] is None
    assert status["progress"] == {"stage": "done", "percent": 100.0}
    assert sorted(status["files"]) == sorted(
        ["input", "lowres.wav", "superres.wav", "reference.wav", "spectrogram.png", "result.json"]
    )
    reference, reference_rate = wav(store, status, "reference.wav")
    lowres, lowres_rate = wav(store, status, "lowres.wav")
    superres, superres_rate = wav(store, status, "superres.wav")
    assert (reference_rate, lowres_rate, superres_rate) == (16000, 4000, 16000)
    assert len(superres) == len(reference) == 4 * len(lowres)
    assert store.file(status["id"], "spectrogram.png").startswith(PNG_MAGIC)

    model, spline = status["metrics"]["model"], status["metrics"]["spline"]
    assert model == spline  # the model here *is* spline
    assert 3 < model["snr"] < 40
    assert 0 < model["lsd"] < model["lsd_hf"]

    timings = status["timings"]
    assert timings["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert timings["audio_s"] == pytest.approx(7.49, abs=0.01)
    assert timings["queued_s"] >= 0 and timings["processing_s"] > 0
    assert timings["realtime_factor"] == pytest.approx(
        timings["audio_s"] / timings["processing_s"], rel=0.02
    )
    assert 0 < timings["model_s"] < timings["processing_s"]
    assert timings["model_realtime_factor"] > timings["realtime_factor"]
    record = result_json(store, status)
    assert record["timings"] == timings and record["metrics"] == status["metrics"]
    assert record["stages_s"]["upsampling"] == pytest.approx(timings["model_s"], abs=1e-4)
    assert record["lowres_rate"] == 4000 and record["output_rate"] == 16000
    assert set(record["stages_s"]) >= {"decoding", "upsampling", "scoring", "plotting", "saving"}


def test_simulate_at_x3_scores_a_48k_recording_against_its_16k_copy(store, celery, speech):
    """A 48 kHz recording is the full-band reference: its 16 kHz copy is restored to 48 kHz."""
    x, rate = speech
    recording = audio.resample(x[: 2 * rate], rate, 48000)
    status, _ = run(store, celery, audio.to_wav_bytes(recording, 48000), scale=3)

    assert status["state"] == "done", status["error"]
    reference, reference_rate = wav(store, status, "reference.wav")
    lowres, lowres_rate = wav(store, status, "lowres.wav")
    superres, superres_rate = wav(store, status, "superres.wav")
    assert (reference_rate, lowres_rate, superres_rate) == (48000, 16000, 48000)
    assert len(superres) == len(reference) == 3 * len(lowres)
    assert abs(len(reference) - len(recording)) < 3
    model = status["metrics"]["model"]
    # What the 16 kHz copy had is kept; above 8 kHz spline adds nothing.
    assert model["lowband_snr"] > 20 and model["lsd_hf"] > model["lsd"] > 0
    record = result_json(store, status)
    assert (record["lowres_rate"], record["output_rate"]) == (16000, 48000)
    assert record["chain"] == status["chain"] == ["spline"]


def test_enhance_chains_x2_and_x3_for_48k_output(store, celery, speech):
    x, rate = speech
    call = audio.lowres(x[: 2 * rate], 2)
    status, _ = run(
        store, celery, audio.to_wav_bytes(call, 8000), mode="enhance", scale=2, output_rate="48000"
    )

    assert status["state"] == "done", status["error"]
    assert status["chain"] == ["spline", "spline"] and status["params"]["model"] == "spline"
    superres, superres_rate = wav(store, status, "superres.wav")
    lowres, lowres_rate = wav(store, status, "lowres.wav")
    assert (lowres_rate, superres_rate) == (8000, 48000)
    assert len(superres) == 6 * len(lowres) == 6 * len(call)
    assert result_json(store, status)["output_rate"] == 48000


def test_progress_only_moves_forward(store, celery, speech_wav):
    _, snapshots = run(store, celery, speech_wav.read_bytes())

    states = [s["state"] for s in snapshots]
    order = {"queued": 0, "running": 1, "done": 2}
    assert [order[s] for s in states] == sorted(order[s] for s in states)
    percents = [s["progress"]["percent"] for s in snapshots]
    assert percents == sorted(percents) and percents[-1] == 100.0


def test_enhance_upsamples_low_res_input_by_the_scale(store, celery, speech):
    x, rate = speech
    lowres_in = audio.resample(x, rate, 4000)
    status, _ = run(store, celery, audio.to_wav_bytes(lowres_in, 4000), mode="enhance")

    assert status["state"] == "done", status["error"]
    assert status["metrics"] is None
    assert "reference.wav" not in status["files"]
    superres, superres_rate = wav(store, status, "superres.wav")
    assert superres_rate == 16000 and len(superres) == 4 * len(lowres_in)


def test_enhance_resamples_input_to_the_models_rate_first(store, celery, speech_wav):
    status, _ = run(store, celery, speech_wav.read_bytes(), mode="enhance", scale=2)

    assert status["state"] == "done", status["error"]
    lowres, lowres_rate = wav(store, status, "lowres.wav")
    superres, superres_rate = wav(store, status, "superres.wav")
    assert (lowres_rate, superres_rate) == (8000, 16000)
    assert len(superres) == 2 * len(lowres)


def test_stereo_44k_reference_is_mixed_down_and_resampled(store, celery, speech):
    x, rate = speech
    stereo = np.stack([x, 0.5 * x])[:, : 2 * rate]
    data = audio.to_wav_bytes(audio.resample(stereo, rate, 44100), 44100)
    status, _ = run(store, celery, data)

    assert status["state"] == "done", status["error"]
    assert result_json(store, status)["input"] == {
        "filename": "speech.wav",
        "rate": 44100,
        "channels": 2,
        "bandwidth_hz": None,  # detected only when the scale is auto, in enhance mode
    }
    reference, reference_rate = wav(store, status, "reference.wav")
    assert reference.ndim == 1 and reference_rate == 16000


def test_the_model_is_loaded_once_per_worker_process(store, celery, speech_wav):
    first, _ = run(store, celery, speech_wav.read_bytes())
    second, _ = run(store, celery, speech_wav.read_bytes())

    one, two = result_json(store, first)["worker"], result_json(store, second)["worker"]
    assert one["pid"] == two["pid"]
    assert one["model_loads"] == two["model_loads"]


def enqueue_unchecked(store, celery, data: bytes, **params) -> dict:
    """Store and enqueue a job without the web's checks, as a worker with stricter limits sees it."""
    params = {"mode": "simulate", "scale": 4, "model": "spline", **params}
    job_id = store.create(data, params)
    celery.send_task(UPSAMPLE_TASK, args=[job_id])
    return wait_for_job(store, job_id)


@pytest.mark.parametrize(
    "make_data, params, words",
    [
        (lambda: b"RIFF not really a wave file" * 4, {}, "audio"),
        (lambda: audio.to_wav_bytes(np.zeros(601_000, np.float32), 1000), {}, "limit is 10:00"),
        (lambda: audio.to_wav_bytes(np.zeros(16000, np.float32), 16000), {"scale": 5}, "scale 5"),
        (
            lambda: audio.to_wav_bytes(np.zeros(16000, np.float32), 16000),
            {"model": "no-such-net"},
            "no-such-net",
        ),
    ],
    ids=["undecodable", "too-long", "unsupported-scale", "unknown-model"],
)
def test_the_worker_refuses_bad_jobs_with_a_readable_message(
    store, celery, make_data, params, words
):
    status = enqueue_unchecked(store, celery, make_data(), **params)

    assert status["state"] == "failed"
    assert words in status["error"]
    assert "Traceback" not in status["error"] and "File " not in status["error"]
    assert status["files"] == ["input"]


def test_a_redelivered_finished_job_is_not_run_again(store, celery, speech_wav, celery_worker):
    status, _ = run(store, celery, speech_wav.read_bytes())
    # The same message again, as Redis hands it back when a worker dies before acknowledging.
    celery.send_task(UPSAMPLE_TASK, args=[status["id"]], task_id=status["id"])

    deadline = time.monotonic() + HANG_S
    while celery_worker.log().count(f"[{status['id']}] succeeded") < 2:
        assert time.monotonic() < deadline, "the duplicate was never consumed"
        time.sleep(0.05)
    assert store.status(status["id"]) == status
    assert store.meta(status["id"])["attempts"] == 1


def test_a_job_whose_workers_keep_dying_is_given_up(store, celery):
    job_id = store.create(b"RIFF", {"mode": "simulate", "scale": 4, "model": "spline"})
    # Three earlier deliveries started it and never came back.
    store.update_meta(job_id, lambda meta: meta.update(attempts=3))
    celery.send_task(UPSAMPLE_TASK, args=[job_id])

    status = wait_for_job(store, job_id)
    assert status["state"] == "failed"
    assert status["error"] == "workers stopped 3 times while processing this audio"


def test_enhance_keeps_stereo_and_writes_at_the_uploads_rate(store, celery, speech):
    x, rate = speech
    narrow = audio.resample(audio.lowres(x, 2, "sinc"), rate // 2, 44100)
    stereo = np.stack([narrow, -0.5 * narrow])
    status, _ = run(
        store,
        celery,
        audio.to_wav_bytes(stereo, 44100),
        mode="enhance",
        scale="auto",
        output_rate="input",
    )

    assert status["state"] == "done", status["error"]
    superres, superres_rate = wav(store, status, "superres.wav")
    lowres, lowres_rate = wav(store, status, "lowres.wav")
    assert (superres_rate, lowres_rate) == (44100, 8000)
    assert superres.shape[1] == lowres.shape[1] == 2
    assert abs(len(superres) - stereo.shape[1]) <= 44100 // 1000
    # The channels stay apart: the second is still the first at -0.5.
    assert np.corrcoef(superres[:, 0], superres[:, 1])[0, 1] < -0.99
    record = result_json(store, status)
    assert record["output_rate"] == 44100 and record["params"]["scale"] == 2
    assert 3600 <= record["input"]["bandwidth_hz"] <= 4400


def test_silence_is_said_to_be_silence_and_not_scored(store, celery):
    status, _ = run(store, celery, audio.to_wav_bytes(np.zeros(16000 * 3, np.float32), 16000))

    assert status["state"] == "done", status["error"]
    assert status["metrics"] is None
    assert len(status["warnings"]) == 1 and "silent" in status["warnings"][0]
    assert result_json(store, status)["warnings"] == status["warnings"]


def test_a_file_that_decodes_shorter_than_its_header_says_is_reported(store, celery):
    """An Ogg with one damaged page: libvorbis skips it, the header still counts its samples."""
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    sf.write(buf, 0.1 * rng.standard_normal(16000 * 10), 16000, format="OGG", subtype="VORBIS")
    data = bytearray(buf.getvalue())
    pages = [i for i in range(len(data)) if data[i : i + 4] == b"OggS"]
    middle = pages[len(pages) // 2]
    data[middle + 100 : middle + 140] = bytes(40)
    status, _ = run(store, celery, bytes(data))

    assert status["state"] == "done", status["error"]
    assert any("header promised 10.00 s" in w for w in status["warnings"]), status["warnings"]
    assert status["metrics"] is not None  # what did decode is still speech-like and scored


def test_speech_has_no_warnings(store, celery, speech_wav):
    status, _ = run(store, celery, speech_wav.read_bytes())
    assert status["state"] == "done" and status["warnings"] == []
