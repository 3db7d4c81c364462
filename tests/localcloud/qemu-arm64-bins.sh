#!/usr/bin/env bash
# Wrappers that run the packaged arm64 binaries (`make package ARCH=arm64`) under qemu-user,
# so that the x86_64 harnesses (crossfed-localrun, crossfed-localrun-layer, crossfed-coldstart)
# start them as they start native ones (used by `make smoke-arm64`).
#
#   tests/localcloud/qemu-arm64-bins.sh OUT_DIR [BUILD_DIR]
#
# Writes OUT_DIR/{list-buckets,gcs-sync,cross-cloud-report,crossfed-extension}, each
# `exec qemu-aarch64 -L /usr/aarch64-linux-gnu <BUILD_DIR artifact> "$@"` (BUILD_DIR:
# .aws-sam/build). Fails if an artifact is missing or is not an aarch64 ELF binary.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
[ "$#" -ge 1 ] || { echo "usage: $0 OUT_DIR [BUILD_DIR]" >&2; exit 2; }
OUT="$1"
BUILD="$(cd "${2:-$ROOT/.aws-sam/build}" 2>/dev/null && pwd)" || {
  echo "$0: no ${2:-$ROOT/.aws-sam/build}: run \`make package ARCH=arm64\` first" >&2; exit 1; }
QEMU="$(command -v qemu-aarch64)" || {
  echo "$0: qemu-aarch64 not found: apt-get install qemu-user (make arm64-tools)" >&2; exit 1; }
SYSROOT=/usr/aarch64-linux-gnu
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || {
  echo "$0: no aarch64 glibc in $SYSROOT: apt-get install libc6-dev-arm64-cross (make arm64-tools)" >&2; exit 1; }

mkdir -p "$OUT"
for pair in list-buckets=ListBucketsFunction/bootstrap gcs-sync=GcsSyncFunction/bootstrap \
  cross-cloud-report=CrossCloudReportFunction/bootstrap \
  crossfed-extension=CrossfedExtensionLayer/extensions/crossfed-extension; do
  name="${pair%%=*}"
  bin="$BUILD/${pair#*=}"
  [ -f "$bin" ] || { echo "$0: $bin missing: run \`make package ARCH=arm64\` first" >&2; exit 1; }
  # e_machine (ELF header bytes 18-19, little-endian): 183 = AArch64.
  machine="$(od -An -t u2 -j 18 -N 2 "$bin" | tr -d ' ')"
  [ "$machine" = 183 ] || {
    echo "$0: $bin is not an aarch64 binary (e_machine $machine): run \`make package ARCH=arm64\`" >&2
    exit 1; }
  printf '#!/bin/sh\nexec %q -L %q %q "$@"\n' "$QEMU" "$SYSROOT" "$bin" > "$OUT/$name"
  chmod +x "$OUT/$name"
done
echo "qemu wrappers of the arm64 artifacts in $OUT"
