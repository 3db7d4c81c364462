#!/usr/bin/env bash
# Run a command with the local emulated clouds up, always stopping them after.
#
#   tests/localcloud/with-localcloud.sh CMD [ARGS...]
#
# Exports CROSSFED_LOCALCLOUD_ENV=<repo>/target/localcloud/env (KEY=VALUE file
# written by setup.py) to CMD and exits with CMD's exit status.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

[ "$#" -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

trap '"$HERE/localcloud.sh" down' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
"$HERE/localcloud.sh" up
export CROSSFED_LOCALCLOUD_ENV="$ROOT/target/localcloud/env"
set +e
"$@"
status=$?
set -e
exit "$status"
