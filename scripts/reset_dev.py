"""Wipe the development data so the next ``make run`` starts afresh.

Removes PlanMan's development database (``instance/planman.db``) and the Xero
stand-in's (``instance/xero_sandbox.db``), with their SQLite journal files,
from ``PLANMAN_INSTANCE_DIR`` (default ``instance/``): the stand-in's copy
holds the old connection and every record pushed to it, so deleting only
PlanMan's would leave the two disagreeing. The generated secrets stay
(``secret_key``, ``token_key``). A ``DATABASE_URL`` pointing elsewhere (say
PostgreSQL) is never touched: the script says so instead. Stop ``make run``
first."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SQLITE_SUFFIXES = ("", "-journal", "-wal", "-shm")


def main() -> int:
    instance_dir = Path(os.environ.get("PLANMAN_INSTANCE_DIR") or REPO_ROOT / "instance")
    planman_db = instance_dir / "planman.db"
    database_url = os.environ.get("DATABASE_URL", "")
    targets = [instance_dir / "xero_sandbox.db"]
    if not database_url or database_url == f"sqlite:///{planman_db}":
        targets.insert(0, planman_db)
    else:
        print(f"==> DATABASE_URL is set ({database_url.split('://')[0]}://...): PlanMan's database there is "
              "left alone; drop it yourself if you mean to.")
    removed = []
    for target in targets:
        for suffix in SQLITE_SUFFIXES:
            path = target.with_name(target.name + suffix)
            if path.exists():
                path.unlink()
                removed.append(path)
    for path in removed:
        print(f"==> removed {path}")
    print("==> development data wiped: `make run` starts afresh" if removed
          else f"==> nothing to remove in {instance_dir}: `make run` already starts afresh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
