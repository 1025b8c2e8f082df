"""The Redis connection and job store that the views share, created once per app on first use."""

from __future__ import annotations

import redis
from flask import current_app

from worker.jobstore import JobStore


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
