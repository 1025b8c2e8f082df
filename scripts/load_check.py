"""Load check: submit N jobs of S seconds at once to real workers; report throughput and p95 latency.

    .venv/bin/python scripts/load_check.py                      # 20 x 5 s, spline, 1 worker
    .venv/bin/python scripts/load_check.py --model audiounet-x4 --concurrency 2

Starts a private redis-server and the Celery workers itself (or uses --redis-url and the workers
already on it with --external-workers), submits through `worker.jobs.submit` like the web does,
and exits non-zero unless every job ends `done`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis

from model import audio
from worker.config import Settings
from worker.jobqueue import make_celery
from worker.jobs import submit
from worker.jobstore import FINISHED, JobStore
from worker.local import REPO, RedisServer, WorkerProcess, wait_for_job

SPEECH = REPO / "tests" / "data" / "speech_16k.wav"


def speech_clip(seconds: float) -> bytes:
    """`seconds` of the test speech (repeated if needed) as 16 kHz WAV bytes."""
    x, rate = audio.load(SPEECH)
    x = audio.to_mono(x)
    n = int(seconds * rate)
    return audio.to_wav_bytes(np.tile(x, int(np.ceil(n / len(x))))[:n], rate)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0, help="audio length of each job")
    parser.add_argument("--mode", choices=["simulate", "enhance"], default="simulate")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--model", default="spline", help="'spline' or a shipped model name")
    parser.add_argument("--workers", type=int, default=1, help="worker processes to start")
    parser.add_argument("--concurrency", type=int, default=1, help="pool children per worker")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument(
        "--external-workers", action="store_true", help="start no workers: use those on --redis-url"
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for all jobs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="load-check-")))
        url = args.redis_url or stack.enter_context(RedisServer(tmp / "redis")).url
        if not args.external_workers:
            for i in range(args.workers):
                worker = WorkerProcess(
                    url,
                    tmp / f"worker{i}.log",
                    name=f"load{i}",
                    concurrency=args.concurrency,
                    env={"WORKER_CHECKPOINT": args.model},
                ).start()
                stack.callback(worker.stop)
        return run(args, url)


def run(args: argparse.Namespace, url: str) -> int:
    settings = Settings(redis_url=url, checkpoint=args.model)
    store = JobStore(redis.Redis.from_url(url), settings.job_ttl_s)
    data = speech_clip(args.seconds)
    job = {"filename": "load.wav", "mode": args.mode, "scale": args.scale, "model": args.model}

    # One job first, so the timed run measures steady state rather than model loading.
    celery = make_celery(settings)
    warm = wait_for_job(
        store, submit(store, data, settings=settings, celery=celery, **job), args.timeout
    )
    print(f"warm-up job: {warm['state']} on {warm['timings']['device']}")

    start = time.monotonic()
    submitted = {
        submit(store, data, settings=settings, celery=celery, **job): time.monotonic()
        for _ in range(args.jobs)
    }
    finished: dict[str, tuple[float, dict]] = {}
    while len(finished) < len(submitted) and time.monotonic() - start < args.timeout:
        for job_id in submitted.keys() - finished.keys():
            status = store.status(job_id)
            if status and status["state"] in FINISHED:
                finished[job_id] = (time.monotonic(), status)
        time.sleep(0.05)
    return report(args, start, submitted, finished)


def report(args, start: float, submitted: dict, finished: dict) -> int:
    done = [s for _, s in finished.values() if s["state"] == "done"]
    failed = [s for _, s in finished.values() if s["state"] == "failed"]
    latencies = np.array([t - submitted[job_id] for job_id, (t, _) in finished.items()])
    wall = max((t for t, _ in finished.values()), default=time.monotonic()) - start
    audio_s = sum(s["timings"]["audio_s"] for s in done)
    processing = np.array([s["timings"]["processing_s"] for s in done])
    workers = "external" if args.external_workers else f"{args.workers} x -c {args.concurrency}"
    print(
        f"jobs: {args.jobs} x {args.seconds:g} s {args.mode} x{args.scale}, model {args.model}, "
        f"workers {workers}"
    )
    print(f"done {len(done)}, failed {len(failed)}, unfinished {args.jobs - len(finished)}")
    for status in failed[:3]:
        print(f"  failed: {status['error']}")
    if len(latencies):
        print(f"wall time: {wall:.2f} s")
        print(f"throughput: {audio_s / wall:.1f} s of audio per wall second (x real time)")
        print(
            f"latency (submit -> done): p50 {np.percentile(latencies, 50):.2f} s, "
            f"p95 {np.percentile(latencies, 95):.2f} s, max {latencies.max():.2f} s"
        )
    if len(processing):
        print(f"processing per job: mean {processing.mean():.2f} s")
    return 0 if len(done) == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
