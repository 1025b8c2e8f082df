"""Submitting jobs: every refusal happens before anything is stored or queued; settings from env;
the Celery app made from settings."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import redis
import soundfile as sf
from redis.backoff import NoBackoff
from redis.retry import Retry

from model import audio, registry
from worker.config import Settings, SettingsError
from worker.jobqueue import make_celery
from worker.jobs import JobRejected, resolve_model, submit
from worker.jobstore import JobStore

QUEUE = "celery"


def tone(seconds: float, rate: int = 16000, channels: int = 1) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t, dtype=np.float64).astype(np.float32)
    return audio.to_wav_bytes(np.tile(x, (channels, 1)), rate)


def encoded(x: np.ndarray, rate: int = 16000, **format) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, rate, **format)
    return buf.getvalue()


NAN_WAV = encoded(np.where(np.arange(16000) == 100, np.nan, 0.1), format="WAV", subtype="FLOAT")
INF_WAV = encoded(np.where(np.arange(16000) == 100, np.inf, 0.1), format="WAV", subtype="DOUBLE")
FLAC = encoded(0.1 * np.random.default_rng(0).standard_normal(32000), format="FLAC")


# A one-second tone, as the page sends it in simulate mode at x4.
SIMULATE = dict(filename="a.wav", mode="simulate", scale=4)


@pytest.fixture
def database_name():
    return "submit"


def test_an_accepted_job_is_stored_and_its_id_queued(store, settings, celery):
    job_id = submit(store, tone(1.0), **SIMULATE, settings=settings, celery=celery)

    status = store.status(job_id)
    assert status["state"] == "queued"
    assert status["params"] == {
        "mode": "simulate",
        "scale": 4,
        "model": "spline",
        "auto": False,
        "output_rate": "model",
    }
    assert status["input"] == {"rate": 16000, "channels": 1, "bandwidth_hz": None}
    queued = store.redis.lrange(QUEUE, 0, -1)
    assert len(queued) == 1
    # Tasks carry the job id, never the audio.
    assert job_id.encode() in queued[0] and len(queued[0]) < 4000


def test_without_a_model_the_job_names_the_one_that_will_run(store, settings, celery):
    default = dataclasses.replace(settings, checkpoint=None)
    job_id = submit(
        store,
        tone(1.0),
        filename="a.wav",
        mode="enhance",
        scale=2,
        settings=default,
        celery=celery,
    )

    shipped = [m["name"] for m in registry.available_models() if m["scale"] == 2]
    assert store.status(job_id)["params"]["model"] == shipped[0]


REFUSALS = [
    # (audio, submit keywords, settings overrides, HTTP status, words in the message)
    (b"", {}, {}, 400, "empty"),
    (tone(1.0), {"mode": "denoise"}, {}, 400, "mode must be"),
    (tone(1.0), {"scale": "4"}, {}, 400, "whole number"),
    (tone(1.0), {"output_rate": "44100"}, {}, 400, "output_rate must be"),
    (tone(1.0), {"output_rate": "48000"}, {}, 400, "applies to enhance mode"),
    (tone(1.0), {"scale": 5}, {}, 422, "scale 5 is not supported"),
    (tone(1.0), {"model": "no-such-net"}, {}, 422, "no-such-net"),
    (b"this is not audio at all" * 10, {}, {}, 415, "not an audio file"),
    (tone(1.0), {}, {"max_bytes": 1000}, 413, "limit is"),
    (tone(3.0), {}, {"max_seconds": 2.0}, 413, "0:03 long; the limit is 0:02"),
    (tone(0.1), {}, {}, 422, "at least"),
    (tone(1.0, channels=3), {}, {}, 422, "3 channels"),
    (tone(1.0, rate=8000), {"mode": "simulate"}, {}, 422, "choose enhance mode"),
    # x3 writes 48 kHz: a 16 or 32 kHz file cannot be its full-band reference.
    (tone(1.0), {"scale": 3}, {}, 422, "sampled at 48000 Hz (at least 43200 Hz)"),
    (tone(1.0, rate=32000), {"scale": 3}, {}, 422, "choose enhance mode"),
    (tone(2.0, rate=800), {"mode": "enhance"}, {}, 422, "too low"),
    # Headers that promise good audio: only decoding the samples finds the fault.
    (NAN_WAV, {}, {}, 422, "NaN"),
    (INF_WAV, {}, {}, 422, "infinite"),
    (FLAC[: len(FLAC) // 2], {}, {}, 415, "truncated"),
]


@pytest.mark.parametrize("data, keywords, overrides, http_status, words", REFUSALS)
def test_refusals_are_readable_and_leave_nothing_behind(
    store, settings, celery, data, keywords, overrides, http_status, words
):
    arguments = {**SIMULATE, **keywords}
    limited = dataclasses.replace(settings, **overrides)
    with pytest.raises(JobRejected) as refused:
        submit(store, data, settings=limited, celery=celery, **arguments)

    assert refused.value.http_status == http_status
    assert words in str(refused.value)
    assert store.redis.dbsize() == 0


def test_an_unreachable_redis_is_a_503_not_a_crash(settings, celery):
    dead = redis.Redis(port=1, retry=Retry(NoBackoff(), 0))
    with pytest.raises(JobRejected) as refused:
        submit(JobStore(dead, 600), tone(1.0), **SIMULATE, settings=settings, celery=celery)
    assert refused.value.http_status == 503


def test_a_job_that_cannot_be_queued_is_not_kept(store, settings):
    no_broker = make_celery(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    with pytest.raises(JobRejected) as refused:
        submit(store, tone(1.0), **SIMULATE, settings=settings, celery=no_broker)

    assert refused.value.http_status == 503
    assert store.redis.dbsize() == 0


@pytest.mark.parametrize("rate", [44100, 48000])
def test_a_44k_or_48k_recording_is_the_reference_for_simulate_at_x3(store, settings, celery, rate):
    job_id = submit(
        store, tone(1.0, rate=rate), **{**SIMULATE, "scale": 3}, settings=settings, celery=celery
    )
    status = store.status(job_id)
    assert status["params"]["scale"] == 3 and status["input"]["rate"] == rate


def test_output_rate_48000_is_accepted(store, settings, celery):
    job_id = submit(
        store,
        tone(1.0, rate=8000),
        filename="call.wav",
        mode="enhance",
        scale=2,
        output_rate="48000",
        settings=settings,
        celery=celery,
    )
    assert store.status(job_id)["params"]["output_rate"] == "48000"


def test_resolve_model_prefers_the_named_model_then_the_worker_checkpoint(settings):
    assert resolve_model("spline", 2, settings)["input_rate"] == 8000
    assert resolve_model(None, 4, settings)["name"] == "spline"


def test_the_celery_app_is_made_from_the_settings_it_is_given(settings):
    celery = make_celery(dataclasses.replace(settings, time_limit_s=60, soft_time_limit_s=50))

    assert celery.settings.time_limit_s == 60
    assert celery.conf.broker_url == celery.conf.result_backend == settings.redis_url
    assert (celery.conf.task_time_limit, celery.conf.task_soft_time_limit) == (60, 50)
    # A message leaves Redis only once its job has finished, so a killed worker loses nothing.
    assert celery.conf.task_acks_late and celery.conf.task_reject_on_worker_lost
    assert celery.conf.worker_prefetch_multiplier == 1
    transport = celery.conf.broker_transport_options
    assert transport["visibility_timeout"] == settings.visibility_timeout_s


def test_settings_come_from_the_environment():
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://example:6379/2",
            "MAX_UPLOAD_BYTES": "1000",
            "MAX_AUDIO_S": "30",
            "JOB_TTL_S": "60",
            "WORKER_DEVICE": "cpu",
            "WORKER_CHECKPOINT": "spline",
            "TASK_TIME_LIMIT_S": "120",
        }
    )
    assert (settings.redis_url, settings.max_bytes, settings.max_seconds) == (
        "redis://example:6379/2",
        1000,
        30.0,
    )
    assert (settings.job_ttl_s, settings.device, settings.checkpoint) == (60, "cpu", "spline")
    # Derived limits: the soft limit comes first; redelivery waits past the hard one.
    assert settings.soft_time_limit_s < settings.time_limit_s == 120 < settings.visibility_timeout_s


def test_settings_defaults_match_the_contract():
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.max_bytes == 50 * 1024 * 1024
    assert settings.max_seconds == 600
    assert settings.job_ttl_s == 86400
    assert settings.device == "auto"


@pytest.mark.parametrize(
    "environ, words",
    [
        ({"WORKER_DEVICE": "tpu"}, "WORKER_DEVICE"),
        ({"MAX_AUDIO_S": "ten minutes"}, "MAX_AUDIO_S must be a number"),
        ({"TASK_TIME_LIMIT_S": "60", "TASK_SOFT_TIME_LIMIT_S": "90"}, "TASK_SOFT_TIME_LIMIT_S"),
        ({"JOB_TTL_S": "0"}, "job_ttl_s"),
    ],
)
def test_bad_settings_say_which_variable(environ, words):
    with pytest.raises(SettingsError, match=words):
        Settings.from_env(environ)
