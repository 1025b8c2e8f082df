"""Flask app factory: the page, the JSON API and the health check, on the worker's job store."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response

from webapp import api, errors, pages
from webapp.config import load_config
from webapp.limits import init_limits
from webapp.store import celery_init_app

PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`templates` or `static`: inside the package once installed, beside it in the source tree."""
    installed = PACKAGE / name
    return installed if installed.is_dir() else PACKAGE.parent / name


def create_app(config: Mapping | None = None) -> Flask:
    """The app, configured from the environment and then from `config` (tests pass TESTING etc.)."""
    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
    )
    app.config.update(load_config(os.environ))
    app.config.update(config or {})
    if not app.config.get("SECRET_KEY"):
        if not app.testing:
            raise RuntimeError(
                "SECRET_KEY is not set: export a long random value, e.g. "
                "SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
            )
        app.config["SECRET_KEY"] = "test only"
    # The worker settings carry the Redis URL that `submit` enqueues on: keep it the app's.
    app.config["WORKER_SETTINGS"] = dataclasses.replace(
        app.config["WORKER_SETTINGS"], redis_url=app.config["REDIS_URL"]
    )
    celery_init_app(app)
    init_limits(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    errors.register(app)
    app.after_request(security_headers)
    return app


# Everything the page needs comes from this origin; recordings play from blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
