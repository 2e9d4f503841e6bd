"""The RQ worker PlanMan runs: ``rq worker --worker-class planman.worker.PlanManWorker``.

RQ forks a fresh work-horse for every job, so a job would otherwise import
PlanMan and build the Flask app from scratch each time (over a second per
job). This worker builds the app once, in the parent, before it forks; each
work-horse inherits it warm and only opens its own database connections."""
from __future__ import annotations

from rq.worker import Worker


class PlanManWorker(Worker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from planman import jobs

        jobs.warm_up()
