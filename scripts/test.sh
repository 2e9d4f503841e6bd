#!/usr/bin/env bash
# The test suite, twice: everything on SQLite, then on a throwaway PostgreSQL 15
# every test that uses PlanMan's database except the browser tests.
# `scripts/test.sh fast` runs SQLite only without the slow tests. Extra
# arguments go to pytest (e.g. -k name).
#
# Each run is spread over PYTEST_WORKERS pytest-xdist processes (default: twice
# the cores, at least 2). Most slow tests wait (on rq workers, the stand-in, a
# browser) rather than compute, so more processes than cores pays. Every
# process has its own database (SQLite file, or PostgreSQL database
# <name>_gwN: tests/conftest.py), Redis server, stand-ins and Chromium (session
# fixtures), so tests never see each other's data. PYTEST_WORKERS=0 runs in
# one process.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
WORKERS=${PYTEST_WORKERS:-$(( $(nproc 2>/dev/null || echo 1) * 2 ))}
[ "$WORKERS" = 0 ] || [ "$WORKERS" -ge 2 ] || WORKERS=2
# --durations: keep an eye on what makes the suite slow. worksteal: an idle
# process takes half of a busy one's queue, so one long test (the fault soak)
# does not leave the others idle at the end.
PYTEST=("$VENV/bin/python" -m pytest --durations=15)
[ "$WORKERS" = 0 ] || PYTEST+=(-n "$WORKERS" --dist worksteal)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

mode=full
if [ "${1:-}" = "fast" ]; then mode=fast; shift; fi

results=()
status=0
declare -A started

# run_pytest LABEL ENV... -- PYTEST_ARGS...
run_pytest() {
  local label=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  printf '\n==> %s (%s): pytest' "$label" "$([ "$WORKERS" = 0 ] && echo "1 process" || echo "$WORKERS processes")"; [ "$#" -eq 0 ] || printf ' %q' "$@"; printf '\n'
  local t0=$SECONDS rc=0
  env "${envs[@]}" "${PYTEST[@]}" "$@" || rc=$?
  local took=$((SECONDS - t0)) verdict
  case $rc in
    0) verdict="passed" ;;
    5) verdict="FAILED (no tests collected)" ;;
    *) verdict="FAILED (pytest exit $rc)" ;;
  esac
  [ "$rc" -eq 0 ] || status=1
  results+=("$(printf '%-38s %-28s %4ss' "$label" "$verdict" "$took")")
}

summary() {
  printf '\n==================== test summary ====================\n'
  printf '%s\n' "${results[@]}"
  if [ "$status" -eq 0 ]; then echo "ALL PASSED"; else echo "SOME RUNS FAILED"; fi
}

# --- throwaway PostgreSQL ---------------------------------------------------
PG_DIR=""
pg_as() {  # initdb refuses to run as root: run the server as postgres
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_stop() {
  if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
      pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$PG_DIR"
  fi
}
trap pg_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_start() {
  PG_DIR=$("$VENV/bin/python" -c 'import tempfile; print(tempfile.mkdtemp(prefix="planman-pg-"))')
  chmod 755 "$PG_DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_DIR"
  pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  local attempt
  for attempt in 1 2 3; do
    PG_PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    if pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null; then
      pg_as "$PG_BIN/psql" -h "$PG_DIR" -p "$PG_PORT" -U postgres -q -c "CREATE DATABASE planman_test" postgres
      echo "==> PostgreSQL 15 on 127.0.0.1:$PG_PORT (data in $PG_DIR, fsync off)"
      return 0
    fi
  done
  cat "$PG_DIR/server.log"
  return 1
}

# --- the runs ---------------------------------------------------------------
# The PostgreSQL run takes the tests marked `database`: those that depend on the
# database_url fixture, the only way a test reaches PlanMan's database (the
# marker is given in tests/conftest.py). The others (stand-ins' own tests, pure
# mapping and money, `make run`/`make reset` on their own SQLite) run the same
# on any database and run once, on SQLite. Browser tests are left out too: what
# they add (HTML, HTMX, JavaScript) does not depend on the database, and every
# query behind their pages is also reached through the test client.
if [ "$mode" = fast ]; then
  run_pytest "SQLite, not slow" -u TEST_DATABASE_URL -- -m "not slow" "$@"
else
  run_pytest "SQLite, all tests" -u TEST_DATABASE_URL -- "$@"
  if pg_start; then
    run_pytest "PostgreSQL 15, database, not browser" \
      "TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/planman_test" \
      -- -m "database and not browser" "$@"
  else
    status=1
    results+=("PostgreSQL 15                      FAILED (server did not start)")
  fi
fi
summary
exit "$status"
