"""The page a person uses, and the health check a supervisor or load balancer polls."""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify, render_template, url_for

from model.registry import available_models
from webapp.store import job_queue, redis_client

bp = Blueprint("pages", __name__)

# Celery's default queue: its length is how many jobs wait for a worker.
QUEUE_KEY = "celery"
WORKER_PING_TIMEOUT_S = 1.0


@bp.get("/")
def index():
    settings = current_app.config["WORKER_SETTINGS"]
    models = [{k: v for k, v in m.items() if k != "path"} for m in available_models()]
    page_config = {
        "jobs_url": url_for("api.create_job"),
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
    """200 while Redis answers (jobs can be accepted); 503 when it does not.

    No worker answering is reported but is not a failure of the web process: jobs wait in the
    queue until one starts. A worker busy on a job in a solo pool cannot answer the ping either.
    """
    try:
        client = redis_client()
        client.ping()
        queued = client.llen(QUEUE_KEY)
    except redis.RedisError as error:
        body = {"status": "error", "redis": {"ok": False, "error": str(error)}, "workers": None}
        return jsonify(body), 503
    replies = job_queue().control.ping(timeout=WORKER_PING_TIMEOUT_S)
    workers = sorted(name for reply in replies for name in reply)
    return jsonify(
        status="ok" if workers else "degraded",
        redis={"ok": True, "queued_jobs": queued},
        workers={"ok": bool(workers), "count": len(workers), "names": workers},
    )
