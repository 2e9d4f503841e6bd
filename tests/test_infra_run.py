"""`make run`'s launcher (scripts/run_dev.py) starts everything, serves PlanMan,
and leaves no process behind on Ctrl-C; running it a second time works too."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fixtures.services import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

READY = re.compile(r"PlanMan is running at (http://\S+) — (log in .*)")


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children are in their own sessions, so walk /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already exited


class Launcher:
    def __init__(self, env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, "scripts/run_dev.py"], cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: re.Pattern, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            match = pattern.search(line)
            if match:
                return match
        raise AssertionError(f"launcher never printed {pattern.pattern!r}:\n" + "\n".join(self.output))

    def kill(self):
        """After a failure: let the launcher clean up (SIGTERM), then make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def test_run_command_starts_everything_and_ctrl_c_stops_it(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "XERO_CLIENT_ID", "DATABASE_URL", "TEST_DATABASE_URL", "FLASK_APP",
                        "STRIPE_SECRET_KEY"}}
    env.update({"PLANMAN_INSTANCE_DIR": str(tmp_path / "instance"), "PORT": str(free_port())})

    for attempt in (1, 2):  # the second start finds the migrated, seeded database
        launcher = Launcher(env)
        try:
            ready = launcher.wait_for(READY, timeout=90)
            url = ready.group(1)
            assert url == f"http://127.0.0.1:{env['PORT']}"
            assert re.fullmatch(r"log in as \S+@\S+ with password \S+", ready.group(2)), ready.group(0)
            assert requests.get(f"{url}/healthz", timeout=5).text == "ok"
            login = requests.get(f"{url}/login", timeout=5)
            assert login.status_code == 200 and "Log in" in login.text
            assert any("Xero stand-in running at http://127.0.0.1:" in line for line in launcher.output)
            # Stripe's stand-in holds exactly one Connect endpoint for PlanMan's intake, also on the second start.
            [stripe_url] = [re.search(r"Stripe stand-in running at (\S+);", line).group(1)
                            for line in launcher.output if "Stripe stand-in running at" in line]
            listed = requests.get(f"{stripe_url}/v1/webhook_endpoints", timeout=5,
                                  headers={"Authorization": "Bearer sk_test_standin_platform"}).json()["data"]
            assert [(e["url"], e["connect"]) for e in listed] == [(f"{url}/webhooks/stripe", True)]
            dashboard = launcher.wait_for(re.compile(r"Job dashboard \(operators\): (\S+) — user (\S+), password (\S+)"),
                                          timeout=10)
            assert requests.get(dashboard.group(1), timeout=5).status_code == 401  # a credential of its own
            opened = requests.get(dashboard.group(1), auth=(dashboard.group(2), dashboard.group(3)), timeout=10)
            assert opened.status_code == 200, opened.status_code

            started = _descendants(launcher.proc.pid)
            assert len(started) >= 4, "redis, stand-in, worker and web should be running"

            launcher.proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers
            assert launcher.proc.wait(30) == 0, "\n".join(launcher.output)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and any(_running(p) for p in started):
                time.sleep(0.1)
            assert [p for p in started if _running(p)] == [], f"attempt {attempt} left processes behind"
        finally:
            launcher.kill()
    assert (tmp_path / "instance" / "standins.xero.db").exists()


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _worker_pids(launcher_pid: int) -> set[int]:
    """The rq worker processes the launcher started itself (not their work-horses)."""
    return {pid for pid in _descendants(launcher_pid)
            if any(part.endswith("/rq") for part in _cmdline(pid)) and "worker" in _cmdline(pid)
            and _running(pid) and int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == launcher_pid}


def test_run_command_restarts_a_worker_that_died(tmp_path):
    from redis import Redis
    from rq import Worker

    env = {k: v for k, v in os.environ.items()
           if k not in {"REDIS_URL", "XERO_CLIENT_ID", "DATABASE_URL", "TEST_DATABASE_URL", "FLASK_APP",
                        "STRIPE_SECRET_KEY"}}
    # With Xero's credentials given (never called here), FreshBooks still gets its stand-in.
    env.update({"PLANMAN_INSTANCE_DIR": str(tmp_path / "instance"), "PORT": str(free_port()),
                "XERO_CLIENT_ID": "firm-own-xero-app", "XERO_CLIENT_SECRET": "not-used-in-this-test"})
    launcher = Launcher(env)
    try:
        launcher.wait_for(READY, timeout=90)
        assert any("using Xero at https://api.xero.com as client firm-own-xero-app" in line
                   for line in launcher.output)
        assert not any("Xero stand-in running" in line for line in launcher.output)
        assert any("FreshBooks stand-in running at http://127.0.0.1:" in line for line in launcher.output)
        redis_url = next(re.search(r"embedded Redis on (\S+)", line).group(1)
                         for line in launcher.output if "embedded Redis on" in line)
        workers = _worker_pids(launcher.proc.pid)
        assert len(workers) == 2  # one on both queues, one on the interactive queue alone
        [first] = [pid for pid in workers if "planman-bulk" in _cmdline(pid)]
        os.kill(first, signal.SIGKILL)  # as the OOM killer or a crash would

        launcher.wait_for(re.compile(r"worker exited \(status -9\); starting it again"), timeout=30)
        again = launcher.wait_for(re.compile(r"worker started again \(pid (\d+)\)"), timeout=30)
        second = int(again.group(1))
        assert second != first and _running(second)
        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and second not in {w.pid for w in Worker.all(connection=connection)}:
            time.sleep(0.2)
        assert second in {w.pid for w in Worker.all(connection=connection)}, "the new worker never registered"
        connection.close()

        started = _descendants(launcher.proc.pid)
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.proc.wait(30) == 0, "\n".join(launcher.output)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_running(p) for p in started):
            time.sleep(0.1)
        assert [p for p in started if _running(p)] == []
    finally:
        launcher.kill()
