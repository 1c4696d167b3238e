#!/usr/bin/env bash
# Figure: root filesystem ready for a cached image (overlay mounted): Berth's img_rootfs_create
# against mkdir + `mount -t overlay` spawned as a shell would, median and p99 (bench/README.md).
# Usage: BUILD=build bench/rootfs.sh [RESULTS_FILE]   (as root, after make all rootfs)
set -euo pipefail
: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
iters=${BENCH_ROOTFS_ITERATIONS:-200}
results=${1:-/dev/null}
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (overlay mounts need it)" >&2; exit 1; }
# Mounts stay in a private mount namespace, whatever happens to this script.
if [ -z "${BERTH_ROOTFS_IN_NS:-}" ]; then
  exec unshare --mount --propagation private env BERTH_ROOTFS_IN_NS=1 "$0" "$@"
fi
[ -x "$BUILD/rootfs/busybox/bin/busybox" ] ||
  { echo "bench: no rootfs at $BUILD/rootfs/busybox (make BUILD=$BUILD rootfs)" >&2; exit 1; }
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -std=gnu11 -D_GNU_SOURCE -O2 -I"$src/.." -Wall -Wextra -Werror -o "$BUILD/bench/rootfs" \
  "$src/rootfs.c" "$BUILD/libimages.a" "$BUILD/liblib.a" \
  $(pkg-config --cflags --libs libcjson libarchive libcrypto libcurl)
# The store lives on the same disk as /var/lib/berth would (not tmpfs).
store=$(mktemp -d /var/tmp/berth-bench-rootfs.XXXXXX)
trap 'rm -rf "$store"' EXIT
echo "   $iters iterations each, interleaved; 3-layer image (busybox rootfs + 2 small layers);"
echo "   store on $(df --output=fstype "$store" | tail -n 1); per iteration a fresh container"
echo "   (upper/work/merged); the peer spawns mount(8) after the same mkdirs."
"$BUILD/bench/rootfs" "$store/store" "$BUILD/rootfs/busybox" "$iters" "$results"
