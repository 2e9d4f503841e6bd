"""`make reset` wipes both development databases (PlanMan's and the Xero
stand-in's) so the next `make run` starts afresh, and nothing else."""
from __future__ import annotations

import os
import sqlite3
import subprocess

from tests.fixtures.services import REPO_ROOT


def make_reset(instance, **env):
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PLANMAN_INSTANCE_DIR"}}
    environ.update(PLANMAN_INSTANCE_DIR=str(instance), **env)
    return subprocess.run(["make", "-s", "reset"], cwd=REPO_ROOT, env=environ, capture_output=True, text=True,
                          timeout=60)


def sqlite_file(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    return path


def test_make_reset_wipes_both_development_databases_and_keeps_the_secrets(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    planman_db = sqlite_file(instance / "planman.db")
    sandbox_db = sqlite_file(instance / "xero_sandbox.db")
    (instance / "xero_sandbox.db-wal").write_bytes(b"wal")
    (instance / "secret_key").write_text("keep me")
    (instance / "token_key").write_text("keep me too")

    done = make_reset(instance)

    assert done.returncode == 0, done.stderr
    assert not planman_db.exists() and not sandbox_db.exists()
    assert not (instance / "xero_sandbox.db-wal").exists()
    assert sorted(p.name for p in instance.iterdir()) == ["secret_key", "token_key"]
    assert f"removed {planman_db}" in done.stdout and f"removed {sandbox_db}" in done.stdout
    assert "`make run` starts afresh" in done.stdout

    again = make_reset(instance)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_make_reset_leaves_a_database_elsewhere_alone(tmp_path):
    instance = tmp_path / "instance"
    instance.mkdir()
    sandbox_db = sqlite_file(instance / "xero_sandbox.db")
    elsewhere = sqlite_file(tmp_path / "production-like.db")
    done = make_reset(instance, DATABASE_URL=f"sqlite:///{elsewhere}")
    assert done.returncode == 0
    assert elsewhere.exists() and not sandbox_db.exists()
    assert "PlanMan's database there is left alone" in done.stdout


def test_the_readme_quick_start_gives_the_demo_login_and_the_reset_command():
    from planman.main.seed import DEMO_EMAIL, DEMO_PASSWORD

    quick_start = (REPO_ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert DEMO_EMAIL in quick_start and DEMO_PASSWORD in quick_start
    assert "log in as ..." not in quick_start and "make reset" in quick_start
