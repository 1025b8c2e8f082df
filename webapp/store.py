"""What the views share: the Celery app made with the Flask app, and the Redis connection and job
store, created once per app on first use."""

from __future__ import annotations

import redis
from celery import Celery
from flask import Flask, current_app

from worker.jobqueue import make_celery
from worker.jobstore import JobStore


def celery_init_app(app: Flask) -> Celery:
    """Make the Celery app that enqueues this app's jobs, from its WORKER_SETTINGS.

    Flask's "Background Tasks with Celery" pattern, sending only: the tasks run in the workers,
    which make their own app from the environment (`worker.celery_app`).
    """
    celery = make_celery(app.config["WORKER_SETTINGS"])
    app.extensions["celery"] = celery
    return celery


def job_queue() -> Celery:
    """This app's Celery app (`celery_init_app`)."""
    return current_app.extensions["celery"]


def redis_client() -> redis.Redis:
    """This app's Redis client; short timeouts so a dead Redis fails a request, not hangs it."""
    extensions = current_app.extensions
    if "redis" not in extensions:
        extensions["redis"] = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10
        )
    return extensions["redis"]


def job_store() -> JobStore:
    """The job store on this app's Redis, with the worker's TTL."""
    extensions = current_app.extensions
    if "jobstore" not in extensions:
        settings = current_app.config["WORKER_SETTINGS"]
        extensions["jobstore"] = JobStore(redis_client(), settings.job_ttl_s)
    return extensions["jobstore"]
