"""What /healthz's "ok" promises, process by process: a pool child's ready key lives only while its
Celery main process consumes the queue, and the next worker on a host forgets a dead one's key.
(`tests/test_launcher.py` checks the promise itself through `make run`'s launcher.)"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest
import redis

from worker import tasks
from worker.config import Settings
from worker.jobstore import mark_ready, ready_workers
from worker.local import REPO, RedisServer

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


def test_a_zombie_counts_as_gone(private_redis):
    """A killed worker's child reparented to a pid 1 that does not reap stays a zombie: signal 0
    still reaches it, but it takes no job."""
    settings, client = private_redis
    zombie = subprocess.Popen(["true"])  # not waited for: a zombie once it exits
    stat = f"/proc/{zombie.pid}/stat"
    wait_until(lambda: open(stat).read().rsplit(")", 1)[1].split()[0] == "Z")
    mark_ready(client, f"{socket.gethostname()}:{zombie.pid}", {}, 60)
    try:
        tasks.forget_dead_workers(settings)
        assert ready_workers(client) == {}
    finally:
        zombie.wait()


# A main process that forks one pool child whose heartbeat says it consumes, then waits.
ORPHAN_SCRIPT = """
import os, sys, time
from types import SimpleNamespace
from worker import tasks
from worker.config import Settings
child = os.fork()
if child == 0:
    tasks._heartbeat(Settings(redis_url=sys.argv[1], checkpoint="spline"), {}, SimpleNamespace(value=True))
    os._exit(0)
print(child, flush=True)
time.sleep(600)
"""


def test_a_child_whose_main_process_is_killed_takes_its_ready_key_back(private_redis):
    settings, client = private_redis
    main = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, settings.redis_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(main.stdout.readline())
    try:
        worker = f"{socket.gethostname()}:{child}"
        wait_until(lambda: worker in ready_workers(client))
        main.kill()  # SIGKILL: `consuming` is never cleared
        main.wait()
        # Well before the key would lapse (READY_TTL_S) and before a restarted worker is ready;
        # an orphan that kept refreshing its key would keep it for good.
        deadline = time.monotonic() + tasks.HEARTBEAT_S
        while worker in ready_workers(client):
            assert time.monotonic() < deadline, "the orphan still says it is ready"
            time.sleep(0.01)
    finally:
        main.kill()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
