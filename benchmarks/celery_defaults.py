"""The app's Celery worker with Celery's default delivery settings, for comparison.

    celery -A benchmarks.celery_defaults:celery worker

Celery acknowledges a message when the task starts and takes four messages
per pool process at a time, unless told otherwise. config.py tells it
otherwise (acks_late, prefetch 1) so that a restart loses no task; this is
the figure those settings are measured against.
"""
from wsgi import celery

celery.conf.update(task_acks_late=False, task_reject_on_worker_lost=False,
                   worker_prefetch_multiplier=4)
