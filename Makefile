# PlanMan's commands. `make run` starts everything for development;
# `make test` is the test command CI runs.
.PHONY: help run reset test test-fast venv deps bench

help:
	@echo "make run        start PlanMan with Redis, rq workers and the stand-ins (Xero, FreshBooks, Sage, Stripe, GoCardless) (Ctrl-C stops all)"
	@echo "make reset      wipe the development databases (PlanMan's and the stand-ins') to start afresh"
	@echo "make test       whole suite on SQLite, then all but browser tests on a throwaway PostgreSQL 15"
	@echo "make test-fast  SQLite only, without slow tests (browser, many processes)"
	@echo "make venv       create .venv and install requirements-dev.txt"
	@echo "make deps       install missing Debian packages (redis-server, chromium, postgresql, wrk)"
	@echo "make bench      benchmarks: bulk send to the Xero stand-in, pages under load, 50 firms at once (about 12 minutes)"

venv:
	@bash scripts/bootstrap.sh venv

deps:
	@bash scripts/bootstrap.sh apt

run: venv
	@.venv/bin/python scripts/run_dev.py

# Stop `make run` first. Keeps the generated secrets; leaves a DATABASE_URL elsewhere alone.
reset:
	@python3 scripts/reset_dev.py

test: venv deps
	@bash scripts/test.sh

test-fast: venv
	@bash scripts/test.sh fast

# Not part of `make test`: prints figures and PASS/FAIL per target; fails if any target fails.
bench: venv deps
	@cd benchmarks && status=0; \
	  ../.venv/bin/python bulk_push.py || status=1; echo; \
	  ../.venv/bin/python pages_load.py || status=1; echo; \
	  ../.venv/bin/python scale.py || status=1; exit $$status
