"""The RQ worker PlanMan runs: ``rq worker --worker-class planman.worker.PlanManWorker``.

RQ forks a fresh work-horse for every job, so a job would otherwise import
PlanMan and build the Flask app from scratch each time (over a second per
job). This worker builds the app once, in the parent, before it forks; each
work-horse inherits it warm and only opens its own database connections.
It also sends heartbeats more often than RQ's default while a job runs, so a
push whose whole worker died is told apart from a slow one within seconds."""
from __future__ import annotations

from rq.worker import Worker


class PlanManWorker(Worker):
    def __init__(self, *args, **kwargs):
        from planman import jobs

        # Frequent heartbeats while a job runs, so a killed worker's push reads
        # "interrupted, Retry" within about half a minute (push.reconcile_lost).
        kwargs["job_monitoring_interval"] = min(kwargs.get("job_monitoring_interval") or jobs.HEARTBEAT_SECONDS,
                                                jobs.HEARTBEAT_SECONDS)
        super().__init__(*args, **kwargs)
        jobs.warm_up()
