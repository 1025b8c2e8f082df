"""The `upsample(job_id)` task: runs a stored job and records how it ended, never as a traceback."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from functools import cache
from pathlib import Path

import numpy as np
import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.utils.log import get_task_logger

from model import registry
from worker import pipeline
from worker.config import Settings
from worker.jobqueue import UPSAMPLE_TASK
from worker.jobs import resolve_model
from worker.jobstore import (
    FINISHED,
    JobGone,
    JobStore,
    forget_ready,
    mark_ready,
    patient_client,
    ready_workers,
)

# A job whose worker died this many times is more likely the cause than the victim.
MAX_ATTEMPTS = 3
# A ready process refreshes its key every HEARTBEAT_S; a dead one stops counting after READY_TTL_S.
HEARTBEAT_S = 5.0
READY_TTL_S = 15.0
# How often a pool child looks whether its main process has started or stopped consuming.
WATCH_S = 0.05
# A running job's heartbeat lapses JOB_ALIVE_TTL_S after its worker died; every worker looks for
# such jobs every SWEEP_S and requeues them: back within a minute of the death, whatever killed it.
JOB_HEARTBEAT_S = 5.0
JOB_ALIVE_TTL_S = 20.0
SWEEP_S = 10.0


def worker_id() -> str:
    """This process (a pool child, after the fork) as heartbeats name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


log = get_task_logger(__name__)
# What a process says about itself, outside any task (Celery's task logger would print ???[???]).
ready_log = logging.getLogger("worker.ready")


@cache
def job_store(settings: Settings) -> JobStore:
    """This process's job store on `settings.redis_url` (created after fork, on first use)."""
    return JobStore(patient_client(settings.redis_url), settings.job_ttl_s)


def fail(store: JobStore, job_id: str, message: str) -> None:
    """Mark the job failed with `message`, unless it already ended (or expired)."""

    def failed(status: dict) -> None:
        if status["state"] not in FINISHED:
            status.update(state="failed", error=message)
            status["progress"]["stage"] = "failed"

    try:
        store.update(job_id, failed)
    except JobGone:
        log.warning("job %s expired before its failure could be recorded: %s", job_id, message)


def too_slow(limit_s: float) -> str:
    return f"the job took longer than {limit_s:g} s, the limit for one job"


class UpsampleTask(Task):
    """Records a failure the task body could not: the hard time limit, handled in the parent."""

    @property
    def settings(self) -> Settings:
        """The settings of the app running this task (`worker.jobqueue.make_celery`)."""
        return self.app.settings

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id = args[0] if args else kwargs["job_id"]
        if isinstance(exc, TimeLimitExceeded):
            message = too_slow(self.settings.time_limit_s)
        else:
            message = "the worker hit an internal error while processing this audio"
        fail(job_store(self.settings), job_id, message)


@shared_task(name=UPSAMPLE_TASK, base=UpsampleTask, bind=True)
def upsample(self: UpsampleTask, job_id: str) -> str:
    """Run job `job_id` from the job store; return the state it ended in."""
    settings = self.settings
    store = job_store(settings)
    status = store.status(job_id)
    if status is None:
        log.warning("job %s has expired or never existed", job_id)
        return "gone"
    if status["state"] in FINISHED:
        # A redelivered copy of a job that already ended (its ack was lost with its worker).
        return status["state"]
    if status["state"] == "running" and running_elsewhere(store.owner(job_id)):
        # A second copy (a sweep's requeue and the broker's redelivery): one run at a time.
        return "running elsewhere"
    meta = store.update_meta(job_id, lambda m: m.update(attempts=m["attempts"] + 1))
    if meta["attempts"] > MAX_ATTEMPTS:
        fail(store, job_id, f"workers stopped {MAX_ATTEMPTS} times while processing this audio")
        return "failed"
    try:
        with JobHeartbeat(store, job_id):
            pipeline.run(store, job_id, settings)
    except JobGone:
        log.warning("job %s expired while it ran", job_id)
        return "gone"
    except pipeline.JobFailed as err:
        fail(store, job_id, str(err))
    except redis.RedisError:
        # Never a failed job for Redis weather: the sweep requeues it once Redis answers.
        log.warning("Redis failed under job %s; it will be requeued", job_id, exc_info=True)
        return "handed back"
    except SoftTimeLimitExceeded:
        fail(store, job_id, too_slow(settings.soft_time_limit_s))
    except Exception:
        log.exception("job %s failed", job_id)
        fail(store, job_id, "the worker hit an internal error while processing this audio")
    return store.status(job_id)["state"]


def running_elsewhere(owner: str | None) -> bool:
    """Whether a job's heartbeat names a worker other than this one that may still be alive.

    On this host a dead process is seen at once (its pool child was killed, say), so its job is
    taken over without waiting for the heartbeat to lapse.
    """
    return owner is not None and owner != worker_id() and not gone(owner)


def gone(worker: str) -> bool:
    """Whether `worker` (host:pid) names a process of this host that no longer exists; one on
    another host cannot be seen from here, and never counts as gone."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return True
    except PermissionError:
        return False  # alive, another user's
    # A zombie answers signal 0 too: a killed worker's child, reparented to a pid 1 that does not
    # reap (a container's shell), stays one for good.
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class JobHeartbeat:
    """While a job runs: keep its alive key fresh from a thread, and clear it when the job ends."""

    def __init__(self, store: JobStore, job_id: str):
        self.store, self.job_id = store, job_id
        self.stopped = threading.Event()

    def __enter__(self) -> JobHeartbeat:
        self.store.beat(self.job_id, worker_id(), JOB_ALIVE_TTL_S)
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, exc_type, *_) -> None:
        self.stopped.set()
        try:
            if exc_type is not None and issubclass(exc_type, redis.RedisError):
                # Redis failed under the job: the sweep hands it to a worker once Redis answers.
                self.store.drop_heartbeat(self.job_id)
            else:
                self.store.stopped_running(self.job_id)
        except redis.RedisError:
            log.warning("could not clear the heartbeat of job %s; it will lapse", self.job_id)

    def _run(self) -> None:
        while not self.stopped.wait(JOB_HEARTBEAT_S):
            try:
                self.store.beat(self.job_id, worker_id(), JOB_ALIVE_TTL_S)
            except redis.RedisError:
                log.warning("could not refresh the heartbeat of job %s; retrying", self.job_id)


def sweep(store: JobStore, app) -> list[str]:
    """Requeue every job whose worker died mid-run (its heartbeat lapsed); the ids requeued.

    All workers sweep; a claim with a short TTL lets one of them requeue each job. A requeued job
    starts again from its input, as a redelivered one does.
    """
    requeued = []
    for job_id in store.orphans():
        if not store.claim(job_id, JOB_ALIVE_TTL_S):
            continue
        status = store.status(job_id)
        if status is not None and status["state"] not in FINISHED and store.owner(job_id) is None:
            store.update(job_id, _requeued)
            app.send_task(UPSAMPLE_TASK, args=[job_id], task_id=job_id, ignore_result=True)
            requeued.append(job_id)
            log.warning("job %s lost its worker; requeued", job_id)
        store.stopped_running(job_id)
    return requeued


def _requeued(status: dict) -> None:
    status.update(state="queued", progress={"stage": "requeued", "percent": 0.0})


def _sweeper(settings: Settings, app) -> None:
    store = job_store(settings)
    while True:
        time.sleep(SWEEP_S)
        try:
            sweep(store, app)
        except redis.RedisError:
            log.warning("could not sweep for jobs that lost their worker; retrying")
        except Exception:
            log.exception("the sweep for jobs that lost their worker failed; retrying")


def preload(settings: Settings, consuming) -> None:
    """Load the default model of each shipped scale (and slow imports) and run one warm-up pass
    each, then keep this process's ready key while `consuming.value` (its main process consumes
    the queue), so `/healthz` says "ok" only while a job sent starts at once."""
    loaded = []
    try:
        for scale in sorted({m["scale"] for m in registry.available_models()}):
            entry = resolve_model(None, scale, settings)
            up = pipeline.upsampler(entry["name"], scale, settings.device)
            up(np.zeros((1, up.input_rate // 2), dtype=np.float32))  # one warm-up pass
            loaded.append(entry["name"])
        pipeline.warm_up()
    except Exception:
        ready_log.exception(
            "could not preload the default models; jobs will load them when they need it"
        )
    ready_log.info("models loaded: %s", ", ".join(loaded) or "none")
    info = {"models": loaded, "pid": os.getpid()}
    threading.Thread(target=_heartbeat, args=(settings, info, consuming), daemon=True).start()
    threading.Thread(target=_sweeper, args=(settings, upsample.app), daemon=True).start()


def _heartbeat(settings: Settings, info: dict, consuming) -> None:
    """Say this process is ready once its main process consumes the queue, refresh that every
    HEARTBEAT_S, and take it back as soon as the main process stops consuming (a warm shutdown) or
    is gone (killed outright: this child's parent changes), within WATCH_S.

    The pool child loads its models while the main process connects to the broker; a key written
    before the main process consumes would have /healthz say "ok" while a job sent waits.
    """
    worker, main = worker_id(), os.getppid()
    client = job_store(settings).redis

    def taking_jobs() -> bool:
        # A main process killed outright never clears `consuming`; its orphan sees a new parent.
        return consuming.value and os.getppid() == main

    _wait_until(lambda: consuming.value or os.getppid() != main)
    info = {**info, "since": time.time()}
    announced = False
    while taking_jobs():
        try:
            mark_ready(client, worker, info, READY_TTL_S)
            if not announced:
                ready_log.info("ready: %s takes jobs now", worker)
                announced = True
        except redis.RedisError:
            ready_log.warning("could not refresh the ready key of %s; retrying", worker)
        _wait_until(lambda: not taking_jobs(), HEARTBEAT_S)
    try:
        forget_ready(client, worker)
    except redis.RedisError:
        ready_log.warning("could not delete the ready key of %s; it will lapse", worker)


def _wait_until(condition, timeout_s: float = float("inf")) -> None:
    """Sleep until `condition()` holds, looking every WATCH_S, or until `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(WATCH_S)


def forget_dead_workers(settings: Settings) -> None:
    """Delete the ready keys of this host's worker processes that no longer exist.

    A worker killed outright (SIGKILL, OOM) leaves its key for up to READY_TTL_S; the supervisor
    restarts it within a second or two, and its new main process calls this before its pool
    starts, so /healthz stops saying "ok" for a worker that cannot take the job.
    """
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        for worker in ready_workers(client):
            if gone(worker):
                forget_ready(client, worker)
                ready_log.info("forgot the ready key of %s, which is gone", worker)
    except redis.RedisError:
        ready_log.warning("could not look for the ready keys of dead workers; they will lapse")
    finally:
        client.close()
