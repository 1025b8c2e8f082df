"""A worker SIGKILLed mid-job loses nothing: Redis redelivers the job and another worker finishes it."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import redis
from celery import Celery

from model import audio
from worker.config import Settings
from worker.jobqueue import make_celery, queued_jobs
from worker.jobs import submit
from worker.jobstore import JobStore
from worker.local import RedisServer, WorkerProcess, wait_for_job

from .waits import HANG_S

pytestmark = pytest.mark.integration

# Each test has its own database (tests/conftest.py), so the session worker never takes its jobs.
# Redelivery waits for the broker's visibility timeout; keep it short here so the test is quick.
VISIBILITY_S = 3
STALL_S = 15
LONG_AUDIO_S = 90
SOFT_LIMIT_S = 5


def children(pid: int) -> list[int]:
    """Ids of the processes whose parent is `pid`, from /proc: no procps (pgrep) needed."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name may hold spaces and parentheses: the fields after its last ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def long_speech(speech_wav) -> bytes:
    """LONG_AUDIO_S of speech: long enough to still be running well after it starts."""
    x, rate = audio.load(speech_wav)
    x = np.tile(audio.to_mono(x), int(np.ceil(LONG_AUDIO_S * rate / x.shape[-1])))
    return audio.to_wav_bytes(x[: LONG_AUDIO_S * rate], rate)


def submit_spline(store: JobStore, data: bytes, settings: Settings, celery: Celery) -> str:
    """Submit a spline simulate job at x4 as the web does; its id."""
    return submit(
        store,
        data,
        filename="speech.wav",
        mode="simulate",
        scale=4,
        model="spline",
        settings=settings,
        celery=celery,
    )


def submit_and_wait_until_running(
    store: JobStore, data: bytes, settings: Settings, celery: Celery
) -> str:
    """Submit a simulate job as the web does and return its id once a worker has started it."""
    job_id = submit_spline(store, data, settings, celery)
    deadline = time.monotonic() + HANG_S
    while store.status(job_id)["state"] != "running":
        assert time.monotonic() < deadline, "no worker started the job"
        time.sleep(0.01)
    return job_id


def test_a_job_whose_worker_is_killed_finishes_on_another(open_database, long_speech, tmp_path):
    url, client, settings, store, celery = open_database(
        "worker-killed", visibility_timeout_s=VISIBILITY_S
    )
    env = {
        "WORKER_CHECKPOINT": "spline",
        "OMP_NUM_THREADS": "1",
        "BROKER_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
    }
    data = long_speech

    first = WorkerProcess(url, tmp_path / "first.log", name="first", env=env).start()
    try:
        job_id = submit_and_wait_until_running(store, data, settings, celery)
        first.kill()
    finally:
        if first.process.poll() is None:
            first.kill()
    # The kill landed mid-job: nothing was finished or acknowledged. The message is still in Redis:
    # unacknowledged, or back on its queue (90 s of audio: the long one) if its visibility timeout
    # already ran out.
    assert store.status(job_id)["state"] == "running"
    assert client.hlen("unacked") + queued_jobs(client) == 1

    second = WorkerProcess(url, tmp_path / "second.log", name="second", env=env).start()
    try:
        status = wait_for_job(store, job_id, timeout_s=HANG_S)
    finally:
        second.stop()

    assert status["state"] == "done", status["error"]
    assert "result.json" in status["files"] and "superres.wav" in status["files"]
    assert status["timings"]["audio_s"] == pytest.approx(LONG_AUDIO_S, abs=0.01)
    record = json.loads(store.file(job_id, "result.json"))
    assert record["attempt"] == 2
    assert f"[{job_id}] received" in second.log()


def test_a_job_over_the_time_limit_fails_readably_and_the_worker_goes_on(
    open_database, speech_wav, tmp_path
):
    url, _, settings, store, celery = open_database("time-limit")
    env = {
        "WORKER_CHECKPOINT": "spline",
        "OMP_NUM_THREADS": "1",
        "TASK_SOFT_TIME_LIMIT_S": str(SOFT_LIMIT_S),
        "TASK_TIME_LIMIT_S": "60",
    }
    speech, rate = audio.load(speech_wav)
    speech = audio.to_mono(speech)
    # Ten minutes through the TFiLM net takes about 30 s here, a half second through spline well
    # under 0.5 s: each is five times or more from the limit, whichever way the machine drifts.
    ten_minutes = np.tile(speech, int(np.ceil(600 * rate / speech.size)))[: 600 * rate]
    half_second = speech[: rate // 2]
    job = {"mode": "simulate", "scale": 4, "settings": settings, "celery": celery}
    worker = WorkerProcess(url, tmp_path / "limited.log", name="limited", env=env).start()
    try:
        slow = submit(
            store,
            audio.to_wav_bytes(ten_minutes, rate),
            filename="long.wav",
            model="tfilm-x4",
            **job,
        )
        status = wait_for_job(store, slow, timeout_s=HANG_S)
        assert status["state"] == "failed"
        assert (
            status["error"] == f"the job took longer than {SOFT_LIMIT_S:g} s, the limit for one job"
        )
        assert "result.json" not in status["files"]

        # The same worker takes the next job and finishes it: the limit ended a job, not the worker.
        quick = submit(
            store, audio.to_wav_bytes(half_second, rate), filename="s.wav", model="spline", **job
        )
        status = wait_for_job(store, quick, timeout_s=HANG_S)
        assert status["state"] == "done", status["error"]
        assert worker.process.poll() is None
    finally:
        worker.stop()


def test_a_pool_child_killed_mid_job_is_replaced_and_the_job_rerun(
    open_database, long_speech, tmp_path
):
    url, _, settings, store, celery = open_database("pool-child")
    env = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}
    worker = WorkerProcess(url, tmp_path / "child.log", name="child", env=env).start()
    try:
        job_id = submit_and_wait_until_running(store, long_speech, settings, celery)
        # As the kernel's OOM killer would: only the pool child dies, its parent lives on.
        (child,) = children(worker.process.pid)
        os.kill(child, signal.SIGKILL)

        status = wait_for_job(store, job_id, timeout_s=HANG_S)
    finally:
        worker.stop()

    assert status["state"] == "done", status["error"]
    assert store.meta(job_id)["attempts"] == 2
    assert "WorkerLostError" in worker.log()


def test_a_job_whose_worker_dies_is_requeued_by_the_sweep_not_the_visibility_timeout(
    open_database, long_speech, speech_wav, tmp_path
):
    """With the broker's 20-minute visibility timeout, only the heartbeat sweep brings it back."""
    url, client, settings, store, celery = open_database("worker-lost")
    assert settings.visibility_timeout_s >= 1200
    env = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}
    first = WorkerProcess(url, tmp_path / "first.log", name="first", env=env).start()
    try:
        job_id = submit_and_wait_until_running(store, long_speech, settings, celery)
        short = speech_wav.read_bytes()
        queued = [submit_spline(store, short, settings, celery) for _ in range(2)]
        first.kill()
        killed_at = time.monotonic()
    finally:
        if first.process.poll() is None:
            first.kill()

    # As the supervisor would: a worker starts again; it sweeps for jobs that lost theirs.
    second = WorkerProcess(url, tmp_path / "second.log", name="second", env=env).start()
    try:
        status = wait_for_job(store, job_id, timeout_s=HANG_S)
        back_after_s = time.monotonic() - killed_at
        others = [wait_for_job(store, other, timeout_s=HANG_S) for other in queued]
    finally:
        second.stop()

    assert status["state"] == "done", status["error"]
    assert all(other["state"] == "done" for other in others)
    assert f"job {job_id} lost its worker; requeued" in second.log()
    assert store.meta(job_id)["attempts"] == 2
    assert client.scard("superres:running") == 0  # nothing left marked running
    print(f"done {back_after_s:.1f} s after the kill")


def test_only_one_sweeper_requeues_a_job_and_a_live_one_is_left_alone(open_database, speech_wav):
    _, client, settings, store, celery = open_database("worker-lost")
    from worker import tasks

    job_id = submit_spline(store, speech_wav.read_bytes(), settings, celery)
    client.delete("celery")  # as if a worker had taken the message
    store.update(job_id, lambda status: status.update(state="running"))
    store.beat(job_id, "elsewhere:1", ttl_s=60)
    assert tasks.sweep(store, celery) == []  # its worker is alive

    client.delete("superres:alive:" + job_id)  # ... and now its heartbeat lapsed
    assert tasks.sweep(store, celery) == [job_id]
    assert tasks.sweep(store, celery) == []  # requeued once, by one sweeper
    assert store.status(job_id)["state"] == "queued"
    assert client.llen("celery") == 1


def test_a_redis_stall_is_weather_every_job_ends_done(long_speech, speech_wav, tmp_path):
    """Redis SIGSTOPped for 15 s while a job runs: the worker waits it out, nothing fails."""
    with RedisServer(tmp_path / "redis") as server:
        settings = Settings(redis_url=server.url, checkpoint="spline")
        store = JobStore(redis.Redis.from_url(server.url), settings.job_ttl_s)
        celery = make_celery(settings)
        env = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}
        worker = WorkerProcess(server.url, tmp_path / "stall.log", name="stall", env=env).start()
        try:
            job_id = submit_and_wait_until_running(store, long_speech, settings, celery)
            queued = [
                submit_spline(store, speech_wav.read_bytes(), settings, celery) for _ in range(2)
            ]
            server.process.send_signal(signal.SIGSTOP)
            time.sleep(STALL_S)
            server.process.send_signal(signal.SIGCONT)
            finals = [wait_for_job(store, j, timeout_s=HANG_S) for j in [job_id, *queued]]
        finally:
            server.process.send_signal(signal.SIGCONT)
            worker.stop()
            celery.close()
    assert [f["state"] for f in finals] == ["done"] * 3, [f["error"] for f in finals]


def test_a_short_job_overtakes_a_wall_of_long_ones(open_database, speech_wav, tmp_path):
    """One worker, three long jobs queued, then a short one: it runs next, not last."""
    url, _, settings, store, celery = open_database("short-long", long_job_s=30.0)
    speech, rate = audio.load(speech_wav)
    speech = audio.to_mono(speech)
    long_audio = np.tile(speech, int(np.ceil(40 * rate / speech.size)))[: 40 * rate]
    job = {
        "mode": "simulate",
        "scale": 4,
        "model": "spline",
        "settings": settings,
        "celery": celery,
    }
    long_ids = [
        submit(store, audio.to_wav_bytes(long_audio, rate), filename="l.wav", **job)
        for _ in range(3)
    ]
    short_id = submit(store, speech_wav.read_bytes(), filename="s.wav", **job)
    env = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}
    worker = WorkerProcess(url, tmp_path / "order.log", name="order", env=env).start()
    try:
        finished = {j: wait_for_job(store, j, timeout_s=HANG_S) for j in [short_id, *long_ids]}
    finally:
        worker.stop()
    assert all(f["state"] == "done" for f in finished.values())
    ended = {j: json.loads(store.file(j, "result.json"))["timings"] for j in finished}
    started = {j: store.meta(j)["created_at"] + ended[j]["queued_s"] for j in finished}
    order = sorted(finished, key=started.get)
    # The worker started on a long one before the short one arrived; the short one came next.
    assert order.index(short_id) <= 1, [started[j] for j in order]
