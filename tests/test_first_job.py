"""What /healthz's "ok" promises, process by process: a pool child's ready key lives only while its
Celery main process consumes the queue, and the next worker on a host forgets a dead one's key.
(`tests/test_launcher.py` checks the promise itself through `make run`'s launcher.)"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from types import SimpleNamespace

import pytest
import redis

from worker import tasks
from worker.config import Settings
from worker.jobstore import mark_ready, ready_workers
from worker.local import RedisServer

from .waits import HANG_S


@pytest.fixture
def private_redis(tmp_path):
    """Settings on a redis-server of this test's own (ready keys are server-wide), and a client."""
    with RedisServer(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        yield Settings(redis_url=server.url, checkpoint="spline"), client
        client.close()


def wait_until(condition) -> None:
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert time.monotonic() < deadline, "still not so after a hang's worth of waiting"
        time.sleep(0.01)


def test_a_child_is_ready_only_while_its_main_process_consumes(private_redis):
    settings, client = private_redis
    consuming = SimpleNamespace(value=False)  # what `worker.celery_app.consuming` is to a child
    heartbeat = threading.Thread(
        target=tasks._heartbeat, args=(settings, {"models": ["spline"]}, consuming), daemon=True
    )
    heartbeat.start()
    time.sleep(10 * tasks.WATCH_S)
    assert ready_workers(client) == {}  # models loaded, but no consumer: a job would wait

    consuming.value = True
    wait_until(lambda: tasks.worker_id() in ready_workers(client))

    consuming.value = False  # a warm shutdown: no new job is taken
    heartbeat.join(HANG_S)
    assert not heartbeat.is_alive()
    assert ready_workers(client) == {}


def test_a_starting_worker_forgets_the_ready_keys_of_dead_processes_on_its_host(private_redis):
    settings, client = private_redis
    dead = subprocess.Popen(["true"])
    dead.wait()
    alive, elsewhere = tasks.worker_id(), "another-host:1"
    for worker in (f"{socket.gethostname()}:{dead.pid}", alive, elsewhere):
        mark_ready(client, worker, {}, 60)

    tasks.forget_dead_workers(settings)

    assert sorted(ready_workers(client)) == sorted([alive, elsewhere])
