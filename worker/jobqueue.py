"""The Celery app that carries jobs on Redis, made from the Settings it is given."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from worker.config import Settings

UPSAMPLE_TASK = "worker.tasks.upsample"
# Short jobs and long ones (over Settings.long_job_s of audio) wait in separate queues; a worker
# takes from the short queue first, so a short job is never stuck behind a wall of long ones.
SHORT_QUEUE, LONG_QUEUE = "celery", "long"


def queued_jobs(client) -> int:
    """How many jobs wait in the broker (a redis.Redis on its URL), short and long together."""
    return client.llen(SHORT_QUEUE) + client.llen(LONG_QUEUE)


class JobQueue(Celery):
    """A Celery app that keeps the Settings it was made from: its tasks read their limits there."""

    settings: Settings


def make_celery(settings: Settings) -> JobQueue:
    """A Celery app whose broker and result backend are `settings.redis_url`.

    Late acks + reject-on-worker-lost + prefetch 1 mean a message leaves Redis only after its job
    has finished: a worker killed mid-job leaves it to be redelivered to another one.
    """
    # Sweep for abandoned messages often enough that a short visibility timeout (tests) is honoured.
    restore_interval = min(60.0, max(1.0, settings.visibility_timeout_s / 4))
    app = JobQueue("superres", include=["worker.tasks"])
    app.settings = settings
    app.conf.update(
        broker_url=settings.redis_url,
        result_backend=settings.redis_url,
        result_expires=settings.job_ttl_s,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": restore_interval,
            "unacked_restore_throttle": 1,
            # A worker killed while holding the restore lock must not block restores for long.
            "unacked_mutex_expire": int(min(300, max(5, settings.visibility_timeout_s))),
            # Poll the queues in the order of task_queues, not round robin.
            "queue_order_strategy": "priority",
        },
        task_queues=(Queue(SHORT_QUEUE), Queue(LONG_QUEUE)),
        task_default_queue=SHORT_QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.soft_time_limit_s,
        task_time_limit=settings.time_limit_s,
        # Children import torch and load the model at start; the 4 s default kills slow starters.
        worker_proc_alive_timeout=120.0,
    )
    return app
