"""The `upsample(job_id)` task: runs a stored job and records how it ended, never as a traceback."""

from __future__ import annotations

from functools import cache

import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.utils.log import get_task_logger

from worker import pipeline
from worker.config import Settings
from worker.jobqueue import UPSAMPLE_TASK
from worker.jobs import resolve_model
from worker.jobstore import FINISHED, JobGone, JobStore

# A job whose worker died this many times is more likely the cause than the victim.
MAX_ATTEMPTS = 3
DEFAULT_SCALE = 4

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
    """Load the default model (and slow imports) now, so no job waits for them."""
    try:
        entry = resolve_model(None, DEFAULT_SCALE, settings)
        pipeline.upsampler(entry["name"], DEFAULT_SCALE, settings.device)
        pipeline.warm_up()
    except Exception:
        log.exception("could not preload the default model; jobs will load it when they need it")
