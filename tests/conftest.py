"""Shared fixtures: a private redis-server and its databases, a real Celery worker process on it,
job stores and settings per database, the speech clip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from worker.config import Settings
from worker.jobqueue import JobQueue, make_celery
from worker.jobstore import JobStore
from worker.local import RedisServer, WorkerProcess

SPEECH_WAV = Path(__file__).parent / "data" / "speech_16k.wav"

# The spline baseline needs no trained weights and almost no CPU: the tests check the plumbing.
TEST_WORKER_ENV = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}

# Every database of the session's redis-server that a test uses, and who uses it. One each, so
# a test that flushes or counts keys never meets another's jobs, and jobs meant to stay queued
# never reach a worker that is not theirs.
DATABASES = {
    "worker": 0,  # the session's Celery worker (`celery_worker`) takes the jobs queued here
    "worker-killed": 1,  # test_worker_fault: the workers it starts and SIGKILLs
    "time-limit": 2,  # test_worker_fault: a worker with a 5 s soft limit
    "jobstore": 3,  # test_jobstore
    "submit": 4,  # test_worker_submit: no worker, accepted jobs stay queued
    "pool-child": 5,  # test_worker_fault: a worker whose pool child is killed
    "worker-lost": 6,  # test_worker_fault: a killed worker's job requeued by the sweep
    "short-long": 8,  # test_worker_fault: short jobs overtake long ones
    "web": 7,  # test_web: API tests without a worker
}
# The job stores' TTL: short enough that a stray key soon goes, long enough for any test's job.
STORE_TTL_S = 600


def database_url(redis_url: str, name: str) -> str:
    """The URL of database `name` (a key of DATABASES) on the server at `redis_url`."""
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{DATABASES[name]}"))


class Database(NamedTuple):
    """One database of the session's redis-server, with spline settings, a job store and a Celery
    app on it."""

    url: str
    client: redis.Redis
    settings: Settings
    store: JobStore
    celery: JobQueue


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """URL of the "worker" database of a redis-server started for this test session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield database_url(server.url, "worker")


@pytest.fixture(scope="session")
def celery_worker(redis_url, tmp_path_factory) -> WorkerProcess:
    """A real `celery worker` (prefork, one child) consuming jobs from `redis_url`."""
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    worker = WorkerProcess(redis_url, log, name="session", env=TEST_WORKER_ENV).start()
    yield worker
    worker.stop()


@pytest.fixture
def open_database(redis_url) -> Callable[..., Database]:
    """open_database(name, **settings): database `name` of DATABASES, emptied, as a Database whose
    settings take the keyword overrides."""
    opened: list[Database] = []

    def open_(name: str, **overrides) -> Database:
        # Emptying the session worker's database would drop the queue bindings it consumes from.
        assert name != "worker", "the session worker's database is never emptied"
        url = database_url(redis_url, name)
        client = redis.Redis.from_url(url)
        client.flushdb()
        defaults = {"redis_url": url, "checkpoint": "spline", "job_ttl_s": STORE_TTL_S}
        settings = Settings(**{**defaults, **overrides})
        store = JobStore(client, settings.job_ttl_s)
        database = Database(url, client, settings, store, make_celery(settings))
        opened.append(database)
        return database

    yield open_
    for database in opened:
        database.celery.close()
        database.client.close()


@pytest.fixture
def database_name() -> str:
    """Which of DATABASES `database` opens: a module using it overrides this fixture."""
    pytest.fail("this module uses `database` (or store, settings, celery): define `database_name`")


@pytest.fixture
def database(open_database, database_name) -> Database:
    """This module's database (`database_name`), emptied."""
    return open_database(database_name)


@pytest.fixture
def settings(database) -> Settings:
    """Spline settings on this module's database."""
    return database.settings


@pytest.fixture
def store(database) -> JobStore:
    """A job store on this module's database."""
    return database.store


@pytest.fixture
def celery(database) -> JobQueue:
    """A Celery app that enqueues on this module's database."""
    return database.celery


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    """7.5 s of real speech, 16 kHz mono 16-bit WAV."""
    return SPEECH_WAV
