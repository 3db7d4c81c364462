#!/usr/bin/env bash
# The cargo lambda dev loop against the local clouds (which must be up, see
# with-localcloud.sh). Used by `make watch` and, once, by `make run`.
#
#   dev-loop.sh watch   crossfed-localrun --serve + cargo lambda watch, until Ctrl-C
#   dev-loop.sh check   the same in the background, one `cargo lambda invoke` of
#                       list-buckets with events/list-buckets.json, then stop both
#
# Needs cargo-lambda on PATH (the Makefile puts .venv-lambda/bin first) and
# target/debug/crossfed-localrun (LOCALRUN). WATCH_PORT (9000): cargo lambda's
# invoke port on 127.0.0.1. The functions' environment is written to
# target/localcloud/lambda.env.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LC="$ROOT/target/localcloud"
ENV_FILE="$LC/lambda.env"
WATCH_PORT="${WATCH_PORT:-9000}"
LOCALRUN="${LOCALRUN:-$ROOT/target/debug/crossfed-localrun}"
mode="${1:-}"
case "$mode" in watch|check) ;; *) echo "usage: $0 watch|check" >&2; exit 2 ;; esac
command -v cargo-lambda >/dev/null || { echo "dev-loop: cargo-lambda not on PATH (make lambda-venv)" >&2; exit 1; }
[ -x "$LOCALRUN" ] || { echo "dev-loop: $LOCALRUN missing (cargo build -p crossfed-tests --bins)" >&2; exit 1; }

log() { echo "dev-loop: $*" >&2; }
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$LC"
rm -f "$ENV_FILE"
setsid "$LOCALRUN" --serve "$ENV_FILE" >"$LC/localrun-serve.log" 2>&1 </dev/null &
pids+=("$!")
for _ in $(seq 600); do
  [ -s "$ENV_FILE" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$LC/localrun-serve.log" >&2; log "crossfed-localrun --serve exited"; exit 1; }
  sleep 0.1
done
[ -s "$ENV_FILE" ] || { log "no $ENV_FILE after 60 s"; exit 1; }
log "fakes up; function environment in $ENV_FILE"

watch=(cargo lambda watch --env-file "$ENV_FILE" --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT")
if [ "$mode" = watch ]; then
  log "cargo lambda watch on 127.0.0.1:$WATCH_PORT; in another terminal:"
  log "  make invoke FUNCTION=list-buckets EVENT=events/list-buckets.json"
  "${watch[@]}"
  exit $?
fi

cd "$ROOT"
setsid "${watch[@]}" >"$LC/cargo-lambda-watch.log" 2>&1 </dev/null &
pids+=("$!")
out=""
for _ in $(seq 120); do
  kill -0 "${pids[1]}" 2>/dev/null || { tail -n 30 "$LC/cargo-lambda-watch.log" >&2; log "cargo lambda watch exited"; exit 1; }
  if out="$(cargo lambda invoke list-buckets --data-file events/list-buckets.json \
              --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" 2>&1)"; then
    break
  fi
  sleep 1
done
echo "== cargo lambda invoke list-buckets --data-file events/list-buckets.json"
echo "$out"
# The fakes served for the loop created this run's destination bucket: it must be listed.
dest="$(sed -n "s/^REPORT_GCS_BUCKETS='\(.*\)'\$/\1/p" "$ENV_FILE")"
[ -n "$dest" ] || { log "no REPORT_GCS_BUCKETS in $ENV_FILE"; exit 1; }
case "$out" in
  *'"statusCode":200'*"\\\"$dest\\\""*) log "cargo lambda watch + invoke: OK (lists $dest)" ;;
  *) tail -n 30 "$LC/cargo-lambda-watch.log" >&2; log "unexpected answer from list-buckets"; exit 1 ;;
esac
