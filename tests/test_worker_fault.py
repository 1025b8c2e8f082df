"""A worker SIGKILLed mid-job loses nothing: Redis redelivers the job and another worker finishes it."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import redis

from model import audio
from worker.config import Settings
from worker.jobs import submit
from worker.jobstore import JobStore
from worker.local import WorkerProcess, wait_for_job

pytestmark = pytest.mark.integration

# Its own database: the session worker (database 0) must not be the one that takes the job.
FAULT_DB = 1
# Redelivery waits for the broker's visibility timeout; keep it short here so the test is quick.
VISIBILITY_S = 3
LONG_AUDIO_S = 90


def test_a_job_whose_worker_is_killed_finishes_on_another(redis_url, speech_wav, tmp_path):
    url = redis_url.rsplit("/", 1)[0] + f"/{FAULT_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    settings = Settings(redis_url=url, checkpoint="spline", visibility_timeout_s=VISIBILITY_S)
    store = JobStore(client, settings.job_ttl_s)
    env = {
        "WORKER_CHECKPOINT": "spline",
        "OMP_NUM_THREADS": "1",
        "BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
    }
    # Long enough that the job is certainly still running a few milliseconds after it starts.
    x, rate = audio.load(speech_wav)
    x = np.tile(audio.to_mono(x), int(np.ceil(LONG_AUDIO_S * rate / x.shape[-1])))
    data = audio.to_wav_bytes(x[: LONG_AUDIO_S * rate], rate)

    first = WorkerProcess(url, tmp_path / "first.log", name="first", env=env).start()
    try:
        job_id = submit(
            store,
            data,
            filename="long.wav",
            mode="simulate",
            scale=4,
            model="spline",
            settings=settings,
        )
        deadline = time.monotonic() + 60
        while store.status(job_id)["state"] != "running":
            assert time.monotonic() < deadline, "the first worker never started the job"
            time.sleep(0.01)
        first.kill()
    finally:
        if first.process.poll() is None:
            first.kill()
    # The kill landed mid-job: nothing was finished or acknowledged.
    assert store.status(job_id)["state"] == "running"
    assert client.hlen("unacked") == 1

    second = WorkerProcess(url, tmp_path / "second.log", name="second", env=env).start()
    try:
        status = wait_for_job(store, job_id, timeout_s=120)
    finally:
        second.stop()

    assert status["state"] == "done", status["error"]
    assert "result.json" in status["files"] and "superres.wav" in status["files"]
    assert status["timings"]["audio_s"] == pytest.approx(LONG_AUDIO_S, abs=0.01)
    record = json.loads(store.file(job_id, "result.json"))
    assert record["attempt"] == 2
    assert f"[{job_id}] received" in second.log()
