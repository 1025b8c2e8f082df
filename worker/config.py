"""Worker and job settings read from the environment, shared by the web process and the workers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEVICES = ("auto", "cpu", "cuda")


class SettingsError(ValueError):
    """An environment variable holds a value the worker cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything a web process or a worker needs to share jobs: one Redis URL and the limits.

    `checkpoint` is the model a job runs when it names none ("spline", a shipped model name or a
    checkpoint path); None means the shipped default for the job's scale.
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 600.0
    job_ttl_s: int = 24 * 3600
    device: str = "auto"
    checkpoint: str | None = None
    soft_time_limit_s: float = 840.0
    time_limit_s: float = 900.0
    visibility_timeout_s: float = 1200.0
    # Admission: jobs waiting at once, seconds of audio one client may have waiting or running,
    # and the length above which a job goes to the queue that short jobs overtake.
    max_queued_jobs: int = 200
    max_client_audio_s: float = 1800.0
    long_job_s: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Settings from REDIS_URL, MAX_UPLOAD_BYTES, MAX_AUDIO_S, JOB_TTL_S, WORKER_DEVICE,
        WORKER_CHECKPOINT, TASK_SOFT_TIME_LIMIT_S, TASK_TIME_LIMIT_S, BROKER_VISIBILITY_TIMEOUT_S,
        MAX_QUEUED_JOBS, MAX_CLIENT_AUDIO_S, LONG_JOB_S.
        """
        default = cls()
        time_limit = _number(environ, "TASK_TIME_LIMIT_S", default.time_limit_s)
        settings = cls(
            redis_url=environ.get("REDIS_URL") or default.redis_url,
            max_bytes=int(_number(environ, "MAX_UPLOAD_BYTES", default.max_bytes)),
            max_seconds=_number(environ, "MAX_AUDIO_S", default.max_seconds),
            job_ttl_s=int(_number(environ, "JOB_TTL_S", default.job_ttl_s)),
            device=environ.get("WORKER_DEVICE") or default.device,
            checkpoint=environ.get("WORKER_CHECKPOINT") or None,
            # The soft limit lets the task write a readable failure before the hard kill.
            soft_time_limit_s=_number(environ, "TASK_SOFT_TIME_LIMIT_S", time_limit * 14 / 15),
            time_limit_s=time_limit,
            # A message unacknowledged for this long is handed to another worker, so it must
            # outlast the longest job or a slow job would run twice.
            visibility_timeout_s=_number(environ, "BROKER_VISIBILITY_TIMEOUT_S", time_limit + 300),
            max_queued_jobs=int(_number(environ, "MAX_QUEUED_JOBS", default.max_queued_jobs)),
            max_client_audio_s=_number(environ, "MAX_CLIENT_AUDIO_S", default.max_client_audio_s),
            long_job_s=_number(environ, "LONG_JOB_S", default.long_job_s),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise SettingsError for values that cannot work together."""
        if self.device not in DEVICES:
            choices = ", ".join(DEVICES)
            raise SettingsError(f"WORKER_DEVICE must be one of {choices}, not {self.device!r}")
        if not 0 < self.soft_time_limit_s < self.time_limit_s:
            raise SettingsError("TASK_SOFT_TIME_LIMIT_S must be in (0, TASK_TIME_LIMIT_S)")
        for name in ("max_bytes", "max_seconds", "job_ttl_s", "visibility_timeout_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if not text:
        return float(default)
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {text!r}") from None
