"""A short job sent behind a wall of long ones, on one worker: how long until it is done.

    .venv/bin/python scripts/short_behind_long.py          # ten 10-minute jobs, then a 5 s one

Starts a private redis-server and `python -m worker.serve` on it (one worker, the default
models), submits `--long` jobs of `--long-seconds` of speech in simulate mode at x4, then one
of `--short-seconds`, and prints the short job's time from submit to done, and how many long
jobs were done by then, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latency import get_json, post_job, speech_clip, start_service, wait_until_ok  # noqa: E402

from worker.local import RedisServer, free_port  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=10)
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--short-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    fields = {"mode": "simulate", "scale": "4", "model": ""}
    long_audio, short_audio = speech_clip(args.long_seconds), speech_clip(args.short_seconds)
    # One client sends everything here: lift the per-client limits for this check.
    os.environ.update(MAX_CLIENT_AUDIO_S="1e9", SUBMIT_RATE_LIMIT="1000 per minute")
    with tempfile.TemporaryDirectory(prefix="order-") as tmp, RedisServer(Path(tmp)) as redis:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        service = start_service(redis.url, port, Path(tmp) / "service.log")
        try:
            wait_until_ok(base, 300)
            long_urls = [post_job(base, long_audio, fields)["status_url"] for _ in range(args.long)]
            started = time.perf_counter()
            short_url = post_job(base, short_audio, fields)["status_url"]
            while (status := get_json(base + short_url)).get("state") not in ("done", "failed"):
                time.sleep(0.05)
            waited = time.perf_counter() - started
            long_done = sum(get_json(base + u).get("state") == "done" for u in long_urls)
        finally:
            os.killpg(service.pid, signal.SIGINT)
            service.wait(120)
    print(
        json.dumps(
            {
                "short_state": status["state"],
                "short_submit_to_done_s": round(waited, 1),
                "short_queued_s": status["timings"]["queued_s"],
                "long_jobs_done_by_then": long_done,
                "long_jobs": args.long,
                "model": status["params"]["model"],
            },
            indent=2,
        )
    )
    return 0 if status["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
