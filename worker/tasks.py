"""The `upsample(job_id)` task: runs a stored job and records how it ended, never as a traceback."""

from __future__ import annotations

import redis
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_process_init
from celery.utils.log import get_task_logger

from worker import pipeline
from worker.celery_app import SETTINGS, UPSAMPLE_TASK, app
from worker.jobs import resolve_model
from worker.jobstore import FINISHED, JobGone, JobStore

# A job whose worker died this many times is more likely the cause than the victim.
MAX_ATTEMPTS = 3
DEFAULT_SCALE = 4

log = get_task_logger(__name__)
_stores: dict[str, JobStore] = {}


def job_store() -> JobStore:
    """This process's job store on SETTINGS.redis_url (created after fork, on first use)."""
    if "store" not in _stores:
        client = redis.Redis.from_url(SETTINGS.redis_url, health_check_interval=30)
        _stores["store"] = JobStore(client, SETTINGS.job_ttl_s)
    return _stores["store"]


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

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id = args[0] if args else kwargs["job_id"]
        if isinstance(exc, TimeLimitExceeded):
            message = too_slow(SETTINGS.time_limit_s)
        else:
            message = "the worker hit an internal error while processing this audio"
        fail(job_store(), job_id, message)


@app.task(name=UPSAMPLE_TASK, base=UpsampleTask)
def upsample(job_id: str) -> str:
    """Run job `job_id` from the job store; return the state it ended in."""
    store = job_store()
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
        pipeline.run(store, job_id, SETTINGS)
    except JobGone:
        log.warning("job %s expired while it ran", job_id)
        return "gone"
    except pipeline.JobFailed as err:
        fail(store, job_id, str(err))
    except SoftTimeLimitExceeded:
        fail(store, job_id, too_slow(SETTINGS.soft_time_limit_s))
    except Exception:
        log.exception("job %s failed", job_id)
        fail(store, job_id, "the worker hit an internal error while processing this audio")
    return store.status(job_id)["state"]


@worker_process_init.connect
def load_default_model(**_) -> None:
    """Load the default model (and slow imports) as each child starts, so no job waits for them."""
    try:
        entry = resolve_model(None, DEFAULT_SCALE, SETTINGS)
        pipeline.upsampler(entry["name"], DEFAULT_SCALE, SETTINGS.device)
        pipeline.warm_up()
    except Exception:
        log.exception("could not preload the default model; jobs will load it when they need it")
