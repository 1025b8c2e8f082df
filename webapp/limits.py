"""Per-client submission limits (Flask-Limiter, counted in Redis so every web process shares them)."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

limiter = Limiter(get_remote_address, key_prefix="superres:limits")


def init_limits(app: Flask) -> None:
    """Count submissions per remote address in the app's Redis.

    Behind a reverse proxy every request comes from the proxy's address: with TRUST_PROXY the
    client is the one the proxy names in X-Forwarded-For (never trust that header otherwise:
    any client could write it and escape its limit).
    """
    if app.config.get("TRUST_PROXY"):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Redis away: the submission itself then answers 503, not the limiter a 500.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
