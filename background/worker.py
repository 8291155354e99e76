"""The worker's own settings, applied as it starts."""
from typing import Any

from celery.signals import celeryd_init

from config import from_env


@celeryd_init.connect
def configure_worker(conf: Any, **kwargs: Any) -> None:
    """Give the worker its own, patient broker settings before it connects.

    The web process bounds every broker wait to well under a second; a worker
    should wait out a broker restart instead. A worker always starts from the
    environment (celery -A wsgi:celery), so its settings are read from there.
    """
    conf.update(from_env()["CELERY_WORKER"])
