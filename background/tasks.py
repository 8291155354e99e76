"""The tasks that jobs run: the demonstration process and the Monte-Carlo integration."""
import time

from celery import Task, shared_task
from flask import current_app

from background.jobs import report_progress


@shared_task(bind=True)
def async_process(self: Task, steps: int) -> dict[str, int]:
    """Work through steps, one every ASYNC_STEP_SECONDS, reporting progress after each."""
    seconds = current_app.config["ASYNC_STEP_SECONDS"]
    report_progress(self.request.id, 0, steps)
    for step in range(1, steps + 1):
        time.sleep(seconds)
        report_progress(self.request.id, step, steps)
    return {"steps": steps}


# Inputs are bounded (size, expression length and depth) so that a job takes
# seconds; the limits stop one that somehow does not.
@shared_task(soft_time_limit=60, time_limit=75)
def integrate(f: str, a: float, b: float, c: float, d: float, size: int,
              seed: int | None = None) -> dict[str, float | int]:
    """Estimate the area under f inside [a, b] x [c, d] by Monte-Carlo sampling."""
    # Imported here, not at the top: the web process imports this module too, and
    # NumPy would cost each of its processes about 10 MiB that it never uses.
    from background.montecarlo import estimate_area
    return estimate_area(f, a, b, c, d, size, seed)
