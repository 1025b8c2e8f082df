"""Predict latency through the HTTP API of the real launcher: cold starts, then warm jobs.

    .venv/bin/python scripts/latency.py                     # 3 starts, 10 x 5 s simulate x4
    .venv/bin/python scripts/latency.py --jobs 20 --model spline

Runs `python -m worker.serve` as `make run` does (the Procfile's gunicorn and Celery worker, and
the embedded Redis keeping its data in one state folder, SUPERRES_VAR), as a real HTTP client:
1. `--runs` times in a row on the same state folder, as a person stops `make run` with Ctrl-C and
   starts it again: polls /healthz until it says "ok" and at once submits one job: how long that
   job waited in the queue (a worker that answers the health check must already take jobs);
2. in the last run, submits `--jobs` jobs one after another, each polled every 20 ms until done:
   the median time from submit to done, and the part of it that is not the model's own time
   (queue, upload, decoding, scoring, drawing, storing, polling), which depends least on the
   machine's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import audio  # noqa: E402
from worker.local import REPO, free_port  # noqa: E402

SPEECH = REPO / "tests" / "data" / "speech_16k.wav"
POLL_S = 0.02


def speech_clip(seconds: float) -> bytes:
    """`seconds` of the test speech (repeated if needed) as 16 kHz WAV bytes."""
    x, rate = audio.load(SPEECH)
    x = audio.to_mono(x)
    n = int(seconds * rate)
    return audio.to_wav_bytes(np.tile(x, int(np.ceil(n / len(x))))[:n], rate)


def get_json(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read() or b"{}")


def post_job(base: str, data: bytes, fields: dict) -> dict:
    """POST /api/jobs as the page does (multipart), returning the JSON answer."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="speech.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{base}/api/jobs",
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def run_job(base: str, data: bytes, fields: dict, timeout: float) -> tuple[float, dict]:
    """Submit one job and poll it to the end: (seconds from submit to done, final status)."""
    started = time.perf_counter()
    url = base + post_job(base, data, fields)["status_url"]
    while True:
        status = get_json(url)
        if status.get("state") in ("done", "failed"):
            return time.perf_counter() - started, status
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"job still {status.get('state')} after {timeout:g} s")
        time.sleep(POLL_S)


def start_service(redis_url: str, port: int, log: Path) -> subprocess.Popen:
    """`python -m worker.serve` on the Redis at `redis_url` (its own process group)."""
    env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "SECRET_KEY": "latency"}
    return _launch(env, log, "w")


def start_make_run(var: Path, port: int, redis_port: int, log: Path) -> subprocess.Popen:
    """`python -m worker.serve` as `make run` starts it: no REDIS_URL (the embedded Redis, its data
    and secrets in `var`), on its own ports."""
    env = {
        **os.environ,
        "SUPERRES_VAR": str(var),
        "PORT": str(port),
        "EMBEDDED_REDIS_PORT": str(redis_port),
    }
    env.pop("REDIS_URL", None)
    env.pop("SECRET_KEY", None)
    return _launch(env, log, "a")


def _launch(env: dict, log: Path, mode: str) -> subprocess.Popen:
    """The launcher in its own process group, its output to `log` (opened with `mode`)."""
    with open(log, mode) as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker.serve"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_service(service: subprocess.Popen) -> None:
    """Ctrl-C, as a person stops `make run`, and wait for the ordered stop."""
    service.send_signal(signal.SIGINT)
    service.wait(120)


def wait_until_ok(base: str, timeout: float) -> float:
    """Seconds until /healthz says "ok"."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        try:
            if get_json(f"{base}/healthz").get("status") == "ok":
                return time.perf_counter() - started
        except OSError:
            pass  # gunicorn not listening yet
        time.sleep(0.05)
    raise TimeoutError(f"/healthz never said ok within {timeout:g} s")


def cold_start(
    var: Path, redis_port: int, log: Path, job: tuple[bytes, dict], jobs: int, timeout: float
) -> tuple[dict, list[tuple[float, dict]]]:
    """Start the service, send one job as soon as /healthz says ok, then `jobs` more one after
    another; stop it. (How the start went, the later jobs' rows.)"""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    service = start_make_run(var, port, redis_port, log)
    try:
        ready_s = wait_until_ok(base, timeout)
        _, first = run_job(base, *job, timeout)
        rows = [run_job(base, *job, timeout) for _ in range(jobs)]
    finally:
        stop_service(service)
    row = {
        "healthz_ok_after_s": round(ready_s, 2),
        "first_job_queued_s": first["timings"]["queued_s"],
        "first_job_state": first["state"],
    }
    return row, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="starts in a row on one state folder")
    parser.add_argument("--jobs", type=int, default=10, help="warm jobs in the last run")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--scale", default="4")
    parser.add_argument("--model", default="", help="a shipped name; default: the default model")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--log", type=Path, help="keep the launcher's output here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    fields = {"mode": "simulate", "scale": args.scale, "model": args.model}
    data = speech_clip(args.seconds)

    with tempfile.TemporaryDirectory(prefix="latency-") as tmp:
        var, redis_port = Path(tmp) / "var", free_port()
        log = args.log or Path(tmp) / "service.log"
        starts = []
        for run in range(1, args.runs + 1):
            jobs = args.jobs if run == args.runs else 0
            row, rows = cold_start(var, redis_port, log, (data, fields), jobs, args.timeout)
            starts.append(row)
    failed = [s for _, s in rows if s["state"] != "done"]
    failed += [row for row in starts if row["first_job_state"] != "done"]
    result = {"model": args.model or "default", "audio_s": args.seconds, "starts": starts}
    if rows:
        totals = np.array([t for t, _ in rows])
        models = np.array([s["timings"]["model_s"] for _, s in rows])
        result.update(
            model=rows[0][1]["params"]["model"],
            jobs=args.jobs,
            submit_to_done_median_s=round(float(np.median(totals)), 3),
            model_median_s=round(float(np.median(models)), 3),
            beyond_model_median_s=round(float(np.median(totals - models)), 3),
        )
    result["failed"] = len(failed)
    print(json.dumps(result, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
