"""Jobs in Redis: one hash per job holds its status JSON, bookkeeping and files, under one TTL."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import redis

FILE_NAMES = (
    "input",
    "lowres.wav",
    "superres.wav",
    "reference.wav",
    "spectrogram.png",
    "result.json",
)
STATES = ("queued", "running", "done", "failed")
FINISHED = ("done", "failed")
TIMING_KEYS = (
    "queued_s",
    "processing_s",
    "audio_s",
    "realtime_factor",
    "model_s",
    "model_realtime_factor",
    "device",
)

# What a job was asked to do, as its status shows it; the worker reads the same.
PARAMS = ("mode", "scale", "model", "auto", "output_rate")
KEY_PREFIX = "superres:job:"
# One key per worker process that has loaded its models and whose Celery main process consumes
# the queue: a job sent now starts at once (`mark_ready`, `worker.tasks.preload`).
READY_PREFIX = "superres:ready:"
# While a job runs, its worker keeps `superres:alive:<id>` (naming itself) from lapsing, and the
# job stays in the RUNNING set; a job in the set whose key lapsed lost its worker (`sweep`).
ALIVE_PREFIX = "superres:alive:"
RUNNING_SET = "superres:running"
REQUEUE_PREFIX = "superres:requeue:"
# Per sender: the unfinished jobs it sent and their seconds of audio (`hold`, `held_audio_s`).
CLIENT_PREFIX = "superres:client:"
STATUS_FIELD = b"status"
META_FIELD = b"meta"


# A worker waits out a Redis stall this long (at least) before a job store call gives up.
STALL_S = 90.0


def patient_client(url: str) -> redis.Redis:
    """A Redis client for workers: each call retries with backoff through a stall or a restart
    of Redis of at least STALL_S (redis-py's own default gives up after a few seconds), so the
    weather of a paused or restarting Redis never turns into a failed job."""
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    backoff = ExponentialBackoff(cap=5.0, base=0.2)
    # Each try waits up to its 10 s socket timeout, then the backoff: 12 tries outlast STALL_S.
    retries = 12
    return redis.Redis.from_url(
        url,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(backoff, retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


class JobGone(LookupError):
    """The job does not exist (never created, or expired)."""


def _key(job_id: str) -> str:
    return KEY_PREFIX + job_id


def _file_field(name: str) -> bytes:
    if name not in FILE_NAMES:
        raise ValueError(f"unknown job file {name!r}; jobs have {', '.join(FILE_NAMES)}")
    return b"file:" + name.encode()


class JobStore:
    """Status, bookkeeping and files of each job in one Redis hash, so one TTL covers them all.

    Any machine with the Redis URL can read and write a job: workers need no shared disk. Every
    write refreshes the TTL, so a finished job stays downloadable for `ttl_s` after it finishes.
    The status is the JSON the API serves; `meta` holds what only the worker needs (times,
    filename, delivery attempts).
    """

    def __init__(self, client: redis.Redis, ttl_s: int):
        self.redis = client
        self.ttl_s = int(ttl_s)

    def create(self, input_bytes: bytes, params: dict) -> str:
        """Store the upload and a `queued` status; return the new job id."""
        job_id = secrets.token_urlsafe(16)
        status = {
            "id": job_id,
            "state": "queued",
            "progress": {"stage": "queued", "percent": 0.0},
            "error": None,
            "params": {k: params.get(k) for k in PARAMS},
            "input": params.get("input"),
            "timings": dict.fromkeys(TIMING_KEYS),
            "metrics": None,
            "warnings": [],
            "files": ["input"],
        }
        meta = {"created_at": time.time(), "filename": params.get("filename"), "attempts": 0}
        key = _key(job_id)
        pipe = self.redis.pipeline()
        pipe.hset(
            key,
            mapping={
                STATUS_FIELD: json.dumps(status),
                META_FIELD: json.dumps(meta),
                _file_field("input"): bytes(input_bytes),
            },
        )
        pipe.expire(key, self.ttl_s)
        pipe.execute()
        return job_id

    def status(self, job_id: str) -> dict | None:
        """The job's status dict, or None for an unknown or expired job."""
        raw = self.redis.hget(_key(job_id), STATUS_FIELD)
        return None if raw is None else json.loads(raw)

    def meta(self, job_id: str) -> dict | None:
        """The worker's bookkeeping for the job (created_at, filename, attempts), or None."""
        raw = self.redis.hget(_key(job_id), META_FIELD)
        return None if raw is None else json.loads(raw)

    def file(self, job_id: str, name: str) -> bytes | None:
        """The bytes of one of FILE_NAMES, or None when the job has no such file (yet)."""
        if name not in FILE_NAMES:
            return None
        return self.redis.hget(_key(job_id), _file_field(name))

    def delete(self, job_id: str) -> None:
        """Forget a job and its files (one that could not be enqueued)."""
        self.redis.delete(_key(job_id))

    def update(self, job_id: str, change: Callable[[dict], None]) -> dict:
        """Apply `change` to the status in place, atomically; return the new status.

        Raises JobGone when the job has expired, so a late worker never resurrects it.
        """
        return self._modify(job_id, STATUS_FIELD, change)

    def update_meta(self, job_id: str, change: Callable[[dict], None]) -> dict:
        """Apply `change` to the bookkeeping in place, atomically; return it."""
        return self._modify(job_id, META_FIELD, change)

    def put_file(self, job_id: str, name: str, data: bytes) -> None:
        """Store an output and list it in the status's `files`."""
        field = _file_field(name)

        def write(pipe: redis.client.Pipeline) -> None:
            status = self._read(pipe, job_id, STATUS_FIELD)
            if name not in status["files"]:
                status["files"].append(name)
            pipe.multi()
            pipe.hset(_key(job_id), mapping={field: bytes(data), STATUS_FIELD: json.dumps(status)})
            pipe.expire(_key(job_id), self.ttl_s)

        self.redis.transaction(write, _key(job_id))

    def hold(self, client: str, job_id: str, audio_s: float) -> None:
        """Count `audio_s` against `client` until job `job_id` finishes."""
        pipe = self.redis.pipeline()
        pipe.hset(CLIENT_PREFIX + client, job_id, audio_s)
        pipe.expire(CLIENT_PREFIX + client, self.ttl_s)
        pipe.execute()

    def held_audio_s(self, client: str) -> float:
        """Seconds of audio `client` has waiting or running; finished and expired jobs are let go."""
        key = CLIENT_PREFIX + client
        held = {k.decode(): float(v) for k, v in self.redis.hgetall(key).items()}
        finished = [
            job_id
            for job_id in held
            if (status := self.status(job_id)) is None or status["state"] in FINISHED
        ]
        if finished:
            self.redis.hdel(key, *finished)
        return sum(seconds for job_id, seconds in held.items() if job_id not in finished)

    def beat(self, job_id: str, worker: str, ttl_s: float) -> None:
        """`worker` is running `job_id` and says so for another `ttl_s` seconds."""
        pipe = self.redis.pipeline()
        pipe.set(ALIVE_PREFIX + job_id, worker, ex=max(1, round(ttl_s)))
        pipe.sadd(RUNNING_SET, job_id)
        pipe.execute()

    def owner(self, job_id: str) -> str | None:
        """The worker whose heartbeat for `job_id` is still alive, or None."""
        raw = self.redis.get(ALIVE_PREFIX + job_id)
        return raw.decode() if raw else None

    def drop_heartbeat(self, job_id: str) -> None:
        """Let `job_id`'s heartbeat lapse now while it stays marked running: the next sweep
        requeues it."""
        self.redis.delete(ALIVE_PREFIX + job_id)

    def stopped_running(self, job_id: str) -> None:
        """The job's worker is done with it (finished, failed, or handed it back)."""
        pipe = self.redis.pipeline()
        pipe.delete(ALIVE_PREFIX + job_id)
        pipe.srem(RUNNING_SET, job_id)
        pipe.execute()

    def orphans(self) -> list[str]:
        """Jobs marked running whose worker's heartbeat has lapsed."""
        running = sorted(m.decode() for m in self.redis.smembers(RUNNING_SET))
        if not running:
            return []
        alive = self.redis.mget([ALIVE_PREFIX + job_id for job_id in running])
        return [job_id for job_id, key in zip(running, alive, strict=True) if key is None]

    def claim(self, job_id: str, ttl_s: float) -> bool:
        """True for the one caller (of all workers) that may requeue `job_id` in the next `ttl_s`."""
        return bool(self.redis.set(REQUEUE_PREFIX + job_id, b"1", nx=True, ex=max(1, round(ttl_s))))

    def _modify(self, job_id: str, field: bytes, change: Callable[[dict], None]) -> dict:
        def write(pipe: redis.client.Pipeline) -> dict:
            value = self._read(pipe, job_id, field)
            change(value)
            pipe.multi()
            pipe.hset(_key(job_id), field, json.dumps(value))
            pipe.expire(_key(job_id), self.ttl_s)
            return value

        return self.redis.transaction(write, _key(job_id), value_from_callable=True)

    @staticmethod
    def _read(pipe: redis.client.Pipeline, job_id: str, field: bytes) -> dict:
        raw = pipe.hget(_key(job_id), field)
        if raw is None:
            raise JobGone(f"job {job_id} does not exist or has expired")
        return json.loads(raw)


def mark_ready(client: redis.Redis, worker: str, info: dict, ttl_s: float) -> None:
    """Say that `worker` (host:pid) can take a job now; unless refreshed, it lapses after `ttl_s`,
    so a process that died stops counting within that time."""
    client.set(READY_PREFIX + worker, json.dumps(info), ex=max(1, round(ttl_s)))


def forget_ready(client: redis.Redis, worker: str) -> None:
    """`worker` takes no more jobs (it stopped consuming, or it is gone)."""
    client.delete(READY_PREFIX + worker)


def ready_workers(client: redis.Redis) -> dict[str, dict]:
    """The worker processes whose ready key is alive, by name."""
    keys = sorted(client.scan_iter(match=READY_PREFIX + "*", count=1000))
    values = client.mget(keys) if keys else []
    prefix = len(READY_PREFIX)
    return {k.decode()[prefix:]: json.loads(v) for k, v in zip(keys, values, strict=True) if v}
