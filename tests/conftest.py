"""Shared fixtures: a private redis-server, a real Celery worker process on it, the speech clip."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.local import RedisServer, WorkerProcess

SPEECH_WAV = Path(__file__).parent / "data" / "speech_16k.wav"

# The spline baseline needs no trained weights and almost no CPU: the tests check the plumbing.
TEST_WORKER_ENV = {"WORKER_CHECKPOINT": "spline", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> str:
    """URL of a redis-server started for this test session on a free port (no persistence)."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def celery_worker(redis_url, tmp_path_factory) -> WorkerProcess:
    """A real `celery worker` (prefork, one child) consuming jobs from `redis_url`."""
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    worker = WorkerProcess(redis_url, log, name="session", env=TEST_WORKER_ENV).start()
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    """7.5 s of real speech, 16 kHz mono 16-bit WAV."""
    return SPEECH_WAV
