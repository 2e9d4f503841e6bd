"""`python -m standins` as a real program (the Xero stand-in under /xero), and several processes sharing one SQLite file."""
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from standins.xero.demo import UK_TENANT_ID

from .conftest import API
from .test_faults import _RequestsClient

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(tmp_path):
    """Two stand-in processes on one database, as several workers would be."""
    db, procs, urls = tmp_path / "shared.db", [], []
    for i in range(2):
        port = _free_port()
        log = open(tmp_path / f"server-{i}.log", "wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "standins", "--port", str(port), "--db", str(db)],
                                      cwd=REPO, stdout=log, stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}/xero")
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            try:
                requests.get(f"{url}/.well-known/openid-configuration", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "\n".join(
                    (tmp_path / f"server-{i}.log").read_text() for i in range(len(urls)))
                time.sleep(0.1)
    yield urls
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_processes_share_state_and_serialise_conflicting_writes(two_servers):
    from .conftest import connect

    http = requests.Session()
    token = connect(_RequestsClient(http, two_servers[0]))["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": UK_TENANT_ID}
    http.post(f"{two_servers[0]}/_control/limits", json={"in_flight": 20})  # this test is about writes, not limits
    statuses, start = [], threading.Barrier(8)

    def create(url):
        start.wait()
        r = requests.put(f"{url}{API}/Contacts", json={"Contacts": [{"Name": "Race Ltd"}]}, headers=headers,
                         timeout=30)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=create, args=(two_servers[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [400] * 7  # the unique-name rule holds across processes
    listed = requests.get(f"{two_servers[1]}{API}/Contacts", headers=headers, timeout=10).json()["Contacts"]
    assert [c["Name"] for c in listed] == ["Race Ltd"]


def test_in_flight_limit_holds_across_processes(two_servers):
    from .conftest import connect

    http = requests.Session()
    token = connect(_RequestsClient(http, two_servers[0]))["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": UK_TENANT_ID}
    http.post(f"{two_servers[0]}/_control/limits", json={"in_flight": 2})
    http.post(f"{two_servers[1]}/_control/faults", json={"latency_ms": 600})
    results, start = [], threading.Barrier(6)

    def call(url):
        start.wait()
        r = requests.get(f"{url}{API}/Organisation", headers=headers, timeout=30)
        results.append(r.headers.get("X-Rate-Limit-Problem") or r.status_code)

    threads = [threading.Thread(target=call, args=(two_servers[i % 2],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=str) == sorted([200, 200] + ["concurrent"] * 4, key=str)


def test_a_store_opened_while_another_process_creates_it_waits_its_turn(tmp_path, monkeypatch):
    """Two processes starting on a new file at once: SQLite answers the second
    "database is locked" at once (seen in CI); the store steps back and retries."""
    import sqlite3

    from standins.xero.store import Store

    refusals = []
    real_connect = Store._connect

    class FirstWalSwitchRefused:
        def __init__(self, db):
            self.db = db

        def execute(self, sql, *args):
            if sql == "PRAGMA journal_mode=WAL" and not refusals:
                refusals.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self.db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.db, name)

    monkeypatch.setattr(Store, "_connect", lambda self: FirstWalSwitchRefused(real_connect(self)))
    store = Store(tmp_path / "new.db")
    assert refusals  # it was refused once ...
    with store.read() as db:  # ... and still made the file, in WAL mode
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='organisations'").fetchone()[0] == 1
