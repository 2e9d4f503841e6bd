#!/usr/bin/env bash
# Prepare what the run and test commands need.
#   scripts/bootstrap.sh venv   .venv with requirements-dev.txt (skipped while the stamp is current)
#   scripts/bootstrap.sh apt    missing Debian packages: redis-server, chromium, postgresql, wrk
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

log() { printf '==> %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "need root to run: $*" >&2; return 1
  fi
}

APT_UPDATED=0
apt_install() {  # apt_install PKG... (apt-get update once per run)
  [ "$#" -gt 0 ] || return 0
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_python() {
  local missing=()
  command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then missing+=(python3-venv); fi
  apt_install "${missing[@]}"
}

venv() {
  local stamp="$VENV/.requirements-stamp" want
  if [ ! -x "$VENV/bin/python" ]; then
    ensure_python
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  want=$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  log "installing requirements-dev.txt into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
}

apt_packages() {
  local missing=()
  [ -x /usr/bin/redis-server ] || missing+=(redis-server)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql)
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  apt_install "${missing[@]}"
}

for step in "${@:-venv}"; do
  case "$step" in
    venv) venv ;;
    apt) apt_packages ;;
    *) echo "unknown step: $step (use venv or apt)" >&2; exit 2 ;;
  esac
done
