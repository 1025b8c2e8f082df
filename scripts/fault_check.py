"""Fault check: what an operator's accidents do to `make run` and the jobs in it, timed.

    .venv/bin/python scripts/fault_check.py            # spline jobs of 300 s of speech

Starts `python -m worker.serve` with its own state folder (embedded Redis), then, each with a job
running: SIGKILLs the Celery main process, SIGSTOPs Redis for 15 s, SIGKILLs Redis, and presses
Ctrl-C and starts again. Prints how long each job took to end `done` after the fault (or after
the restart) as JSON; exits non-zero if any job did not end `done`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latency import get_json, post_job  # noqa: E402

from model import audio  # noqa: E402
from worker.local import REPO, free_port  # noqa: E402

SPEECH = REPO / "tests" / "data" / "speech_16k.wav"
JOB = {"mode": "simulate", "scale": "4", "model": "spline"}


class Service:
    def __init__(self, var: Path, port: int, redis_port: int):
        self.var, self.port, self.redis_port = var, port, redis_port
        self.base = f"http://127.0.0.1:{port}"

    def start(self) -> Service:
        env = {
            **os.environ,
            "SUPERRES_VAR": str(self.var),
            "PORT": str(self.port),
            "EMBEDDED_REDIS_PORT": str(self.redis_port),
            "WORKER_CHECKPOINT": "spline",
        }
        env.pop("REDIS_URL", None)
        log = open(self.var.parent / "service.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.serve"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        return self

    def ok(self) -> bool:
        try:
            return get_json(f"{self.base}/healthz").get("status") == "ok"
        except OSError:
            return False

    def wait_ok(self) -> float:
        started = time.monotonic()
        while not self.ok():
            time.sleep(0.1)
        return time.monotonic() - started

    def child(self, word: str) -> int:
        out = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.process.pid)],
            text=True,
            capture_output=True,
        ).stdout
        return next(int(line.split()[0]) for line in out.splitlines() if word in line)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(120)


def state(service: Service, url: str) -> str | None:
    try:
        return get_json(service.base + url).get("state")
    except OSError:
        return None


def wait_state(service: Service, url: str, states: tuple[str, ...]) -> tuple[str, float]:
    started = time.monotonic()
    while (current := state(service, url)) not in states:
        time.sleep(0.05)
    return current, time.monotonic() - started


def main() -> int:
    x, rate = audio.load(SPEECH)
    x = audio.to_mono(x)
    data = audio.to_wav_bytes(np.tile(x, int(np.ceil(300 * rate / x.size)))[: 300 * rate], rate)
    results = {}
    with tempfile.TemporaryDirectory(prefix="fault-check-") as tmp:
        service = Service(Path(tmp) / "var", free_port(), free_port()).start()
        results["ready_after_start_s"] = round(service.wait_ok(), 2)

        def with_job(fault) -> dict:
            url = post_job(service.base, data, JOB)["status_url"]
            wait_state(service, url, ("running", "done"))
            fault()
            end, seconds = wait_state(service, url, ("done", "failed"))
            return {"state": end, "done_after_fault_s": round(seconds, 1)}

        results["worker_main_sigkill"] = with_job(
            lambda: os.kill(service.child("celery"), signal.SIGKILL)
        )

        def stall():
            redis_pid = service.child("redis-server")
            os.kill(redis_pid, signal.SIGSTOP)
            time.sleep(15)
            os.kill(redis_pid, signal.SIGCONT)

        results["redis_sigstop_15s"] = with_job(stall)
        results["redis_sigkill"] = with_job(
            lambda: os.kill(service.child("redis-server"), signal.SIGKILL)
        )

        url = post_job(service.base, data, JOB)["status_url"]
        wait_state(service, url, ("running", "done"))
        service.stop()
        service = Service(service.var, service.port, service.redis_port).start()
        ready = service.wait_ok()
        end, seconds = wait_state(service, url, ("done", "failed"))
        results["ctrl_c_then_restart"] = {
            "state": end,
            "ready_after_restart_s": round(ready, 1),
            "done_after_ready_s": round(seconds, 1),
        }
        service.stop()
    print(json.dumps(results, indent=2))
    ends = [v["state"] for v in results.values() if isinstance(v, dict)]
    return 0 if all(e == "done" for e in ends) else 1


if __name__ == "__main__":
    sys.exit(main())
