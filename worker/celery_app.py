"""The worker's Celery app, configured from the environment: `celery -A worker.celery_app worker`.

Only the worker command line imports this module. The web process makes its own app from its
Flask config (`webapp.store.celery_init_app`), and tests make theirs from the settings they use.
"""

from __future__ import annotations

import ctypes
import multiprocessing

from celery.signals import (
    celeryd_after_setup,
    worker_process_init,
    worker_ready,
    worker_shutting_down,
)

from worker import tasks
from worker.config import Settings
from worker.jobqueue import make_celery

app = make_celery(Settings.from_env())

# Whether the main process consumes the queue, in memory its pool children share (they are forked
# after this module is imported): a child says it is ready only while this is true.
consuming = multiprocessing.get_context("fork").RawValue(ctypes.c_bool, False)


@celeryd_after_setup.connect
def forget_dead_workers(**_) -> None:
    """The main process, once it logs and before its pool starts: a killed predecessor's ready key
    must not keep /healthz "ok" while this worker is still loading."""
    tasks.forget_dead_workers(app.settings)


@worker_process_init.connect
def load_default_model(**_) -> None:
    """Each pool child loads the default model (and slow imports) as it starts: no job waits."""
    tasks.preload(app.settings, consuming)


@worker_ready.connect
def start_consuming(**_) -> None:
    """Sent in the main process once its consumer has subscribed to the queues."""
    consuming.value = True


@worker_shutting_down.connect
def stop_consuming(**_) -> None:
    """A warm or cold shutdown takes no new job: the children take their ready keys back."""
    consuming.value = False
