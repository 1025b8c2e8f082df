"""The `upsample(job_id)` task: runs a stored job and records how it ended, never as a traceback."""

from __future__ import annotations

import os
import socket
import threading
import time
from functools import cache

import numpy as np
import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.utils.log import get_task_logger

from worker import pipeline
from worker.config import Settings
from worker.jobqueue import UPSAMPLE_TASK
from worker.jobs import resolve_model
from worker.jobstore import FINISHED, JobGone, JobStore, mark_ready

# A job whose worker died this many times is more likely the cause than the victim.
MAX_ATTEMPTS = 3
DEFAULT_SCALE = 4
# A ready process refreshes its key every HEARTBEAT_S; a dead one stops counting after READY_TTL_S.
HEARTBEAT_S = 5.0
READY_TTL_S = 15.0

log = get_task_logger(__name__)


@cache
def job_store(settings: Settings) -> JobStore:
    """This process's job store on `settings.redis_url` (created after fork, on first use)."""
    client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
    return JobStore(client, settings.job_ttl_s)


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
    meta = store.update_meta(job_id, lambda m: m.update(attempts=m["attempts"] + 1))
    if meta["attempts"] > MAX_ATTEMPTS:
        fail(store, job_id, f"workers stopped {MAX_ATTEMPTS} times while processing this audio")
        return "failed"
    try:
        pipeline.run(store, job_id, settings)
    except JobGone:
        log.warning("job %s expired while it ran", job_id)
        return "gone"
    except pipeline.JobFailed as err:
        fail(store, job_id, str(err))
    except SoftTimeLimitExceeded:
        fail(store, job_id, too_slow(settings.soft_time_limit_s))
    except Exception:
        log.exception("job %s failed", job_id)
        fail(store, job_id, "the worker hit an internal error while processing this audio")
    return store.status(job_id)["state"]


def preload(settings: Settings) -> None:
    """Load the default models (and slow imports) and run one warm-up pass, then say this process
    is ready (`/healthz` is "ok" only while one is), so no job waits for them."""
    loaded = []
    try:
        for scale in sorted({2, DEFAULT_SCALE}):
            entry = resolve_model(None, scale, settings)
            up = pipeline.upsampler(entry["name"], scale, settings.device)
            up(np.zeros((1, up.input_rate // 2), dtype=np.float32))  # one warm-up pass
            loaded.append(entry["name"])
        pipeline.warm_up()
    except Exception:
        log.exception("could not preload the default models; jobs will load them when they need it")
    info = {"models": loaded, "pid": os.getpid(), "since": time.time()}
    threading.Thread(target=_heartbeat, args=(settings, info), daemon=True).start()


def _heartbeat(settings: Settings, info: dict) -> None:
    """Keep this process's ready key alive for as long as the process lives."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    client = job_store(settings).redis
    while True:
        try:
            mark_ready(client, worker, info, READY_TTL_S)
        except redis.RedisError:
            log.warning("could not refresh the ready key of %s; retrying", worker)
        time.sleep(HEARTBEAT_S)
