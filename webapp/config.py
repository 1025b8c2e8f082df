"""Web settings from the environment, with upload and duration limits taken from the worker's."""

from __future__ import annotations

import os
from collections.abc import Mapping

from worker.config import Settings

# Multipart framing (boundaries, part headers, the small form fields) rides on top of the audio
# bytes, so the request limit sits a little above the worker's file limit: a file at the limit
# then gets the worker's precise message instead of a bare "request too large".
FORM_OVERHEAD_BYTES = 64 * 1024
DEFAULT_MAX_RECORD_S = 30.0


def load_config(environ: Mapping[str, str] = os.environ) -> dict:
    """Flask config keys read from `environ`; SECRET_KEY stays None when unset (checked later)."""
    settings = Settings.from_env(environ)
    max_content = environ.get("MAX_CONTENT_LENGTH")
    max_record = environ.get("MAX_RECORD_S")
    return {
        "SECRET_KEY": environ.get("SECRET_KEY") or None,
        "REDIS_URL": settings.redis_url,
        "MAX_CONTENT_LENGTH": (
            int(max_content) if max_content else settings.max_bytes + FORM_OVERHEAD_BYTES
        ),
        "MAX_RECORD_S": (
            float(max_record) if max_record else min(DEFAULT_MAX_RECORD_S, settings.max_seconds)
        ),
        "WORKER_SETTINGS": settings,
        # Other sites whose pages may submit jobs from a browser (scheme://host[:port], comma
        # separated); the page's own origin always may.
        "ALLOWED_ORIGINS": [o.strip() for o in environ.get("ALLOWED_ORIGINS", "").split(",") if o],
        # Submissions per client (Flask-Limiter notation), and whether the client is the
        # address a reverse proxy names in X-Forwarded-For.
        "SUBMIT_RATE_LIMIT": environ.get("SUBMIT_RATE_LIMIT", "30 per minute"),
        "TRUST_PROXY": environ.get("TRUST_PROXY", "").lower() in ("1", "true", "yes"),
    }
