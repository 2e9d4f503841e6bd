"""What both benchmarks need: throwaway services (Redis, the Xero stand-in, rq
workers, gunicorn) in a temporary directory, an environment that points
PlanMan at them, and PASS/FAIL lines.

The process helpers are the test suite's own (tests/fixtures/services.py), so
the benchmarks start services exactly as the integration tests do."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.services import (  # noqa: E402
    BIN_DIR, SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Sandbox, ServiceProcess, free_port, redis_server_binary,
    start_process, wait_until, _http_answers,
)

TOKEN_KEY = "q5e1q7Qy6mMChQ0f1c8gRj0pH4jT0m0b2yXHcVYb8aY="


class Services:
    """Processes started for one benchmark run; ``stop()`` ends them all."""

    def __init__(self, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"planman-{name}-"))
        self.processes: list[ServiceProcess] = []
        self.env: dict[str, str] = {}
        self.worker_count = 0  # rq workers started so far

    def _start(self, name, argv, env=None) -> ServiceProcess:
        process = start_process(name, argv, self.dir / f"{name.replace(' ', '-')}.log", env=env or self.env)
        self.processes.append(process)
        return process

    def redis(self) -> str:
        import redis

        port = free_port()
        process = self._start("redis", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                        "--save", "", "--appendonly", "no", "--dir", str(self.dir)], env=os.environ.copy())
        client = redis.Redis(port=port)
        wait_until(client.ping, 10, "redis to answer", process)
        return f"redis://127.0.0.1:{port}/0"

    def sandbox(self, **environment) -> Sandbox:
        """The stand-ins, with ``environment`` (e.g. STANDINS_LATENCY) added to theirs."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **environment}
        process = self._start("standins", [sys.executable, "-m", "standins", "--port", str(port),
                                           "--db", str(self.dir / "standins.db")], env=env)
        wait_until(lambda: _http_answers(url), 30, "the stand-ins", process)
        return Sandbox(f"{url}/xero")

    def planman_env(self, *, redis_url: str, sandbox_url: str | None = None) -> dict:
        """PlanMan's settings for this run (also applied to this process, before the app is made)."""
        env = {
            "DATABASE_URL": f"sqlite:///{self.dir / 'planman.db'}",
            "REDIS_URL": redis_url,
            "SECRET_KEY": "benchmark-secret",
            "TOKEN_ENCRYPTION_KEY": TOKEN_KEY,
            "PUBLIC_BASE_URL": "http://127.0.0.1:5999",  # the stand-in accepts 127.0.0.1 redirect URIs
            "PLANMAN_INSTANCE_DIR": str(self.dir / "instance"),
            "RQ_QUEUE": "planman",
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
        }
        if sandbox_url is None:  # Xero configured but never called (pages only)
            env.update({"XERO_CLIENT_ID": "benchmark", "XERO_CLIENT_SECRET": "benchmark"})
        else:
            env.update({"XERO_CLIENT_ID": SANDBOX_CLIENT_ID, "XERO_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
                        "XERO_LOGIN_URL": sandbox_url, "XERO_IDENTITY_URL": sandbox_url, "XERO_API_URL": sandbox_url})
        os.environ.update(env)
        self.env = {**os.environ, **env}
        if "config" in sys.modules:  # already imported (the test helpers import it): read this run's settings
            import importlib

            importlib.reload(sys.modules["config"])
        return env

    def workers(self, n: int, *, interactive: int = 0) -> None:
        """``n`` workers on both queues (interactive first) and ``interactive``
        more on the interactive queue alone, as Production runs them."""
        from redis import Redis
        from rq import Worker

        queues = [self.env["RQ_QUEUE"], self.env.get("RQ_BULK_QUEUE") or f"{self.env['RQ_QUEUE']}-bulk"]
        layout = [(f"rq worker {index + 1}", queues) for index in range(n)]
        layout += [(f"rq interactive worker {index + 1}", queues[:1]) for index in range(interactive)]
        for name, listened in layout:
            self._start(name, [str(BIN_DIR / "rq"), "worker", "--with-scheduler", "--worker-class",
                               "planman.worker.PlanManWorker", "--url", self.env["REDIS_URL"], *listened])
        self.worker_count += len(layout)
        connection = Redis.from_url(self.env["REDIS_URL"])
        wait_until(lambda: len(Worker.all(connection=connection)) >= self.worker_count, 30,
                   f"{self.worker_count} rq workers to register")

    def gunicorn(self, workers: int = 2, app: str = "wsgi:app") -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = self._start("gunicorn", [str(BIN_DIR / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
                                           "--access-logfile", "/dev/null", app])
        wait_until(lambda: _http_answers(f"{url}/healthz"), 30, "gunicorn to answer", process)
        return url

    def cpu_seconds(self) -> float:
        """CPU time used so far by this process and every service it started
        (a worker's finished work-horses included: RQ reaps them)."""
        tick = os.sysconf("SC_CLK_TCK")
        used = sum(os.times()[:2])
        for process in self.processes:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used += sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
        return used

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def line(label: str, value: str) -> None:
    print(f"  {label:<44} {value}")
