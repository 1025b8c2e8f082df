"""The page a person uses, and the health check a supervisor or load balancer polls."""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify, render_template, url_for

from model.registry import available_models
from webapp.store import redis_client
from worker.jobqueue import queued_jobs
from worker.jobstore import ready_workers

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    settings = current_app.config["WORKER_SETTINGS"]
    models = [{k: v for k, v in m.items() if k != "path"} for m in available_models()]
    page_config = {
        "jobs_url": url_for("api.create_job"),
        "health_url": url_for("pages.healthz"),
        "models": models,
        "scales": sorted({m["scale"] for m in models}),
        "max_bytes": settings.max_bytes,
        "max_seconds": settings.max_seconds,
        "max_record_s": current_app.config["MAX_RECORD_S"],
        "ttl_hours": settings.job_ttl_s / 3600,
    }
    return render_template("index.html", page_config=page_config)


@bp.get("/healthz")
def healthz():
    """200 while Redis answers (jobs can be accepted), 503 when it does not; "ok" only while at
    least one worker process has loaded its models and can take a job at once.

    Workers say so with a key they keep while their Celery main process consumes the queue
    (`worker.tasks.preload`); while none does, the status is "starting" and a job waits in the
    queue. A busy worker still counts: its key lives on.
    """
    try:
        client = redis_client()
        client.ping()
        queued = queued_jobs(client)
        ready = ready_workers(client)
    except redis.RedisError as error:
        body = {"status": "error", "redis": {"ok": False, "error": str(error)}, "workers": None}
        return jsonify(body), 503
    return jsonify(
        status="ok" if ready else "starting",
        redis={"ok": True, "queued_jobs": queued},
        workers={"ok": bool(ready), "count": len(ready), "names": sorted(ready)},
    )
