"""The JSON API: submit a job, poll its status, fetch its files, list the shipped models."""

from __future__ import annotations

import io
import re
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, jsonify, request, send_file, url_for
from werkzeug.exceptions import BadRequest

from model.registry import available_models
from webapp.limits import limiter
from webapp.store import job_queue, job_store
from worker.jobs import AUTO, MODES, OUTPUT_RATES, JobRejected, submit
from worker.jobstore import FILE_NAMES

bp = Blueprint("api", __name__, url_prefix="/api")

# secrets.token_urlsafe output; anything else is refused before it can reach a Redis key.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SCALE = re.compile(r"[0-9]{1,3}")

CONTENT_TYPES = {
    "lowres.wav": "audio/wav",
    "superres.wav": "audio/wav",
    "reference.wav": "audio/wav",
    "spectrogram.png": "image/png",
    "result.json": "application/json",
}
# The original upload keeps whatever format the person sent; its first bytes say which.
MAGIC_TYPES = (
    (b"RIFF", "audio/wav"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
    (b"\xff\xfb", "audio/mpeg"),
    (b"\xff\xf3", "audio/mpeg"),
    (b"\xff\xf2", "audio/mpeg"),
)


@bp.post("/jobs")
@limiter.limit(lambda: current_app.config["SUBMIT_RATE_LIMIT"])
def create_job():
    if not _origin_allowed():
        return jsonify(error="jobs may not be submitted from another site's page"), 403
    upload = request.files.get("audio")
    if upload is None:
        raise BadRequest("no audio: send the file in the multipart field 'audio'")
    mode = request.form.get("mode", "simulate")
    # Enhance mode's input is low-res already: by default its own bandwidth picks the model.
    scale_text = request.form.get("scale") or (AUTO if mode == "enhance" else "4")
    if scale_text != AUTO and not SCALE.fullmatch(scale_text):
        raise BadRequest(
            f"scale must be 'auto' or a whole number such as 2 or 4, not {scale_text[:20]!r}"
        )
    try:
        job_id = submit(
            job_store(),
            upload.read(),
            filename=(upload.filename or "audio")[:200],
            mode=mode,
            scale=scale_text if scale_text == AUTO else int(scale_text),
            model=request.form.get("model") or None,
            output_rate=request.form.get("output_rate") or "model",
            client=request.remote_addr,
            settings=current_app.config["WORKER_SETTINGS"],
            celery=job_queue(),
        )
    except JobRejected as rejected:
        headers = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after else {}
        return jsonify(error=str(rejected)), rejected.http_status, headers
    status_url = url_for("api.job_status", job_id=job_id)
    return jsonify(id=job_id, status_url=status_url), 202, {"Location": status_url}


@bp.get("/jobs/<job_id>")
def job_status(job_id: str):
    status = _status_or_404(job_id)
    status["files"] = {
        name: url_for("api.job_file", job_id=job_id, name=name) for name in status.get("files", [])
    }
    return jsonify(status), 200, {"Cache-Control": "no-store"}


@bp.get("/jobs/<job_id>/files/<name>")
def job_file(job_id: str, name: str):
    if name not in FILE_NAMES:
        abort(404, description=f"no file called {name[:40]!r}; jobs have {', '.join(FILE_NAMES)}")
    _check_id(job_id)
    data = job_store().file(job_id, name)
    if data is None:
        abort(404, description=f"job has no {name} (unknown job, not finished, or expired)")
    response = send_file(
        io.BytesIO(data),
        mimetype=CONTENT_TYPES.get(name) or _sniff(data),
        as_attachment=request.args.get("download") == "1",
        download_name=f"{job_id[:8]}-{name}",
        etag=f"{job_id}-{name}",
        max_age=3600,
    )
    # A job's files belong to whoever holds its id: browsers may cache them, shared caches not.
    response.cache_control.public = False
    response.cache_control.private = True
    return response


@bp.get("/models")
def models():
    settings = current_app.config["WORKER_SETTINGS"]
    shipped = [{k: v for k, v in m.items() if k != "path"} for m in available_models()]
    return jsonify(
        models=shipped,
        scales=sorted({m["scale"] for m in shipped}),
        modes=list(MODES),
        output_rates=list(OUTPUT_RATES),
        max_bytes=settings.max_bytes,
        max_seconds=settings.max_seconds,
    )


def _origin_allowed() -> bool:
    """A browser names the page a request comes from (Origin); scripts and curl send none. Only
    this site's own page, and the ALLOWED_ORIGINS setting's, may make a browser submit a job: a
    form on another site could otherwise spend this service's workers with its visitors' uploads."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    # Host only: behind a TLS proxy the page is https while this process sees http.
    return urlsplit(origin).netloc == request.host or origin in current_app.config.get(
        "ALLOWED_ORIGINS", []
    )


def _check_id(job_id: str) -> None:
    if not JOB_ID.fullmatch(job_id):
        abort(404, description="no such job")


def _status_or_404(job_id: str) -> dict:
    _check_id(job_id)
    status = job_store().status(job_id)
    if status is None:
        abort(404, description="no such job (unknown, or expired)")
    return status


def _sniff(data: bytes) -> str:
    kinds = (kind for magic, kind in MAGIC_TYPES if data.startswith(magic))
    return next(kinds, "application/octet-stream")
