"""A small supervisor for `make run`: the Procfile's processes, each restarted when it dies, stopped
in order (web and worker first, Redis last) on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

# A process that dies within this long of its start counts as failing to start: its restarts back
# off (1, 2, 4 ... up to MAX_BACKOFF_S seconds) so a broken one does not spin.
QUICK_DEATH_S = 30.0
MAX_BACKOFF_S = 30.0
# How long each process may take to stop on TERM before harsher signals.
STOP_GRACE_S = {"web": 10.0, "worker": 30.0, "redis": 20.0}
STOP_ORDER = ("web", "worker", "redis")


def read_procfile(path: Path) -> dict[str, str]:
    """{name: shell command} from `name: command` lines (comments and blank lines skipped)."""
    commands = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


@dataclass
class Child:
    """One supervised process: its command, the running process and its restart bookkeeping."""

    name: str
    command: str
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Start `names` from the Procfile's `commands` with `env`; keep them running until stopped.

    Each process runs in a session of its own, so the terminal's Ctrl-C reaches only the
    supervisor, which then stops them in STOP_ORDER. `ready(name)` is called after starting each
    one and may block until it serves (Redis must answer before the others start).
    """

    def __init__(self, commands: dict[str, str], names: list[str], env: dict, cwd: Path, ready):
        self.children = [Child(name, commands[name]) for name in names]
        self.env, self.cwd, self.ready = env, cwd, ready
        self.stopping = threading.Event()

    def log(self, name: str, message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {name:<8} | {message}", flush=True)

    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            ["/bin/sh", "-c", f"exec {child.command}"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child.started_at, child.restart_at = time.monotonic(), None
        threading.Thread(target=self._relay, args=(child, child.process), daemon=True).start()
        self.log("system", f"{child.name} started (pid {child.process.pid})")

    def _relay(self, child: Child, process: subprocess.Popen) -> None:
        """Copy a child's output to ours, each line under its name, as honcho did."""
        for raw in process.stdout:
            self.log(child.name, raw.decode(errors="replace").rstrip())

    def run(self) -> int:
        """Start everything, then restart whatever dies, until SIGINT or SIGTERM; stop in order."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for child in self.children:
            self.start(child)
            self.ready(child.name)
        while not self.stopping.wait(0.2):
            now = time.monotonic()
            for child in self.children:
                if child.restart_at is None and child.process.poll() is not None:
                    self._schedule_restart(child, now)
                elif child.restart_at is not None and now >= child.restart_at:
                    child.restarts += 1
                    self.start(child)
                    self.ready(child.name)
        self.stop()
        return 0

    def _schedule_restart(self, child: Child, now: float) -> None:
        quick = now - child.started_at < QUICK_DEATH_S
        child.quick_deaths = child.quick_deaths + 1 if quick else 0
        delay = min(MAX_BACKOFF_S, 2.0 ** max(0, child.quick_deaths - 1)) if quick else 0.5
        child.restart_at = now + delay
        self.log(
            "system",
            f"{child.name} exited ({describe(child.process.returncode)}); restarting in {delay:g} s",
        )

    def stop(self) -> None:
        """TERM each process (the Celery main process only: a warm shutdown that hands its job
        back), web and worker first, Redis last; QUIT, then KILL, what outlives its grace."""
        by_name = {child.name: child for child in self.children}
        for name in [n for n in STOP_ORDER if n in by_name]:
            process = by_name[name].process
            if process is None or process.poll() is not None:
                continue
            self.log("system", f"stopping {name}")
            process.send_signal(signal.SIGTERM)
            if not wait(process, STOP_GRACE_S.get(name, 10.0)) and name == "worker":
                # Celery's cold shutdown: the running job is dropped unacknowledged, so the broker
                # (or the heartbeat sweep) gives it to the next worker.
                process.send_signal(signal.SIGQUIT)
                wait(process, 10.0)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.log("system", f"{name} stopped ({describe(process.returncode)})")


def wait(process: subprocess.Popen, timeout_s: float) -> bool:
    """Whether `process` ended within `timeout_s`."""
    try:
        process.wait(timeout_s)
        return True
    except subprocess.TimeoutExpired:
        return False


def describe(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"exit {returncode}"
