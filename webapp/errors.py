"""Error handlers: /api/ and /healthz answer JSON, never an HTML page or a traceback."""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

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

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if not wants_json():
            return InternalServerError()
        return jsonify(error="internal error: the server could not handle this request"), 500


def _message(error: HTTPException) -> str:
    if error.code == 413:
        limit = request.max_content_length
        if limit:
            return f"the upload is too large: the limit is {limit / 1e6:.0f} MB"
    return error.description or error.name
