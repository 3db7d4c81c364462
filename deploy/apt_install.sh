#!/usr/bin/env bash
# Installs the Debian packages given that are not installed yet (as root, with apt-get);
# otherwise prints the apt-get line to run and fails. Idempotent: nothing to do, no apt-get.
# When rustc-web is among them, also checks that /usr/bin/rustc is at least the workspace's
# rust-version (bookworm's own rustc-web is older; bookworm-security's is the one).
#
#   deploy/apt_install.sh PACKAGE...
set -euo pipefail

[ "$#" -gt 0 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  else
    echo "missing Debian packages: sudo apt-get install ${missing[*]} (Debian bookworm with bookworm-security)" >&2
    exit 1
  fi
fi
for p in "$@"; do
  [ "$p" = rustc-web ] || continue
  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  need="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
  have="$(/usr/bin/rustc --version | cut -d' ' -f2)"
  if [ "$(printf '%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "/usr/bin/rustc is $have, the workspace needs >= $need: rustc-web from bookworm-security" \
      "(apt-get install -t bookworm-security rustc-web cargo-web rust-web-src)" >&2
    exit 1
  fi
done
