"""Error handlers: /api/ and /healthz answer JSON, never an HTML page or a traceback."""

from __future__ import annotations

import redis
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

JSON_PREFIXES = ("/api/", "/healthz")


def wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def register(app: Flask) -> None:
    """Install app-wide handlers: routing errors (404/405) never reach a blueprint's handlers."""

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if not wants_json():
            return error
        response = jsonify(error=_message(error))
        response.status_code = error.code or 500
        # 405 must still say which methods would have worked.
        for header in ("Allow", "Retry-After"):
            if header in error.get_response().headers:
                response.headers[header] = error.get_response().headers[header]
        return response

    @app.errorhandler(redis.RedisError)
    def store_unreachable(error: redis.RedisError):
        # A job is not lost while Redis is away: say so, so clients poll again instead of giving up.
        app.logger.warning("Redis error on %s %s: %s", request.method, request.path, error)
        if not wants_json():
            return ServiceUnavailable()
        response = jsonify(error="the job store is not reachable right now; try again shortly")
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json():
            return InternalServerError()
        return jsonify(error="internal error: the server could not handle this request"), 500


def _message(error: HTTPException) -> str:
    if error.code == 413:
        # The request limit carries form overhead; the file limit is the number a person can act on.
        limit = min(
            request.max_content_length or 0, current_app.config["WORKER_SETTINGS"].max_bytes
        )
        return f"the upload is too large: the limit is {megabytes(limit)}"
    return error.description or error.name


def megabytes(n_bytes: int) -> str:
    """Decimal megabytes, like the worker's messages; small limits keep their digits."""
    return f"{n_bytes / 1e6:.3g} MB"
