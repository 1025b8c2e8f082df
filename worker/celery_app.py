"""The worker's Celery app, configured from the environment: `celery -A worker.celery_app worker`.

Only the worker command line imports this module. The web process makes its own app from its
Flask config (`webapp.store.celery_init_app`), and tests make theirs from the settings they use.
"""

from __future__ import annotations

from celery.signals import worker_process_init

from worker import tasks
from worker.config import Settings
from worker.jobqueue import make_celery

app = make_celery(Settings.from_env())


@worker_process_init.connect
def load_default_model(**_) -> None:
    """Each pool child loads the default model (and slow imports) as it starts: no job waits."""
    tasks.preload(app.settings)
