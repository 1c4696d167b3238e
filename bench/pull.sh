#!/usr/bin/env bash
# Figure 4 (bench/README.md): pull and unpack of a 3-layer image of about 56 MB from a local
# docker-registry, berth (img_pull into a fresh image store, durable as in production) vs
# skopeo copy + umoci unpack.
# Usage: BUILD=build bench/pull.sh   (as root, after `make BUILD=build all`); bench/run.sh runs it.
set -euo pipefail

: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$src/.." && pwd)
reps=${BENCH_PULL_REPS:-5}
out=$BUILD/bench
work=$out/work/pull
cache=$out/pull-image # the built image, kept between runs
results=$out/results.txt

for tool in docker-registry skopeo umoci curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (run packaging/deps.sh)" >&2; exit 1; }
done
[ -e "$BUILD/libimages.a" ] || { echo "bench: $BUILD/libimages.a missing (make BUILD=$BUILD all)" >&2; exit 1; }

raw () { echo "$*" >>"$results"; }

rm -rf "$work"
mkdir -p "$work" "$out"
[ -e "$results" ] || echo "# Berth benchmarks: raw numbers (bench/README.md)" >"$results"

# The driver and runloop, with the project's flags.
flags=(-std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
  -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -I"$top")
# shellcheck disable=SC2046
cc "${flags[@]}" $(pkg-config --cflags libcjson libcurl libarchive libcrypto) -o "$out/pull" \
  "$src/pull.c" "$top/tests/support/dirsink.c" "$BUILD/libimages.a" "$BUILD/liblib.a" \
  $(pkg-config --libs libcjson libcurl libarchive libcrypto) -lpthread
[ -x "$out/runloop" ] || cc "${flags[@]}" -o "$out/runloop" "$src/runloop.c"

# The image, built once: layer 1 busybox and 24 MiB of random bytes, layers 2 and 3 16 MiB each
# (incompressible, so gzip cannot shrink the download).
if [ ! -e "$cache/done" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  (
    cd "$cache"
    umoci init --layout oci
    umoci new --image oci:big
    mkdir -p l1/bin l1/data l2/data l3/data
    cp /bin/busybox l1/bin/busybox
    head -c 24M /dev/urandom >l1/data/r1
    head -c 16M /dev/urandom >l2/data/r2
    head -c 16M /dev/urandom >l3/data/r3
    for i in 1 2 3; do
      tar --numeric-owner -C l$i -cf l$i.tar .
      umoci raw add-layer --image oci:big l$i.tar
      rm l$i.tar
    done
    umoci config --image oci:big --config.cmd /bin/sh
    rm -rf l1 l2 l3
  ) >/dev/null
  touch "$cache/done"
fi
size_mb=$(du -sm "$cache/oci/blobs" | cut -f1)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOC
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOC
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
trap 'kill $registry_pid 2>/dev/null; wait $registry_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && break; sleep 0.1; done
skopeo --insecure-policy copy -q --dest-tls-verify=false oci:"$cache/oci:big" \
  "docker://127.0.0.1:$port/bench/big:v1"
ref=127.0.0.1:$port/bench/big:v1

# One timed run: prints "ms rss_kb cpu_ms" (runloop: posix_spawn + wait4: wall time, ru_maxrss,
# user+system time of the process tree).
timed () {
  local line ns rss cpu
  line=$("$out/runloop" 1 "$@")
  ns=${line#*total_ns=}; ns=${ns%% *}
  cpu=${line#*cpu_ns=}; cpu=${cpu%% *}
  rss=${line##*rss_kb=}
  echo "$((ns / 1000000)) $rss $((cpu / 1000000))"
}

declare -A ms=() rss=() cpu=() split=()
# shellcheck disable=SC2046 # timed prints three numbers, split on purpose
for rep in $(seq "$reps"); do
  # Interleaved, each into fresh empty directories, caches dropped by nobody (page cache warm
  # for both: the registry's files are read from memory in every run).
  for who in berth berth-serial berth-dirsink peer; do
    d=$work/$who-$rep
    rm -rf "$d"
    case $who in
    berth) set -- $(timed "$out/pull" "$ref" "$d") ;;
    berth-serial) set -- $(timed "$out/pull" --parallel 1 "$ref" "$d") ;;
    berth-dirsink) set -- $(timed "$out/pull" --dirsink "$ref" "$d") ;;
    peer)
      mkdir -p "$d"
      set -- $(timed skopeo --insecure-policy copy -q --src-tls-verify=false \
        "docker://$ref" "oci:$d/oci:v1")
      a_ms=$1 a_rss=$2 a_cpu=$3
      set -- $(timed umoci unpack --image "$d/oci:v1" "$d/bundle")
      split[skopeo]="${split[skopeo]:-} $a_ms" split[umoci]="${split[umoci]:-} $1"
      set -- $((a_ms + $1)) $((a_rss > $2 ? a_rss : $2)) $((a_cpu + $3))
      ;;
    esac
    ms[$who]="${ms[$who]:-} $1" rss[$who]="${rss[$who]:-} $2" cpu[$who]="${cpu[$who]:-} $3"
    rm -rf "$d"
  done
done

median () { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

peer_ms=$(echo "${ms[peer]}" | median)
peer_cpu=$(echo "${cpu[peer]}" | median)
echo "== 4. Image pull: 3-layer image of ${size_mb} MB from docker-registry on 127.0.0.1, $reps runs =="
echo "   berth: img_pull into a fresh image store (bench/pull.c: img_store_sink, 3 layers at once,"
echo "   streamed into unpacking, each layer syncfs + rename + fsync, image recorded);"
echo "   peer: skopeo copy docker://... oci:DIR, then umoci unpack (no sync)"
printf '   %-32s %9s %7s %8s %7s %12s\n' puller "median ms" "x peer" "cpu ms" "x peer" \
  "peak RSS KiB"
for who in berth berth-serial berth-dirsink peer; do
  m=$(echo "${ms[$who]}" | median)
  r=$(echo "${rss[$who]}" | median)
  c=$(echo "${cpu[$who]}" | median)
  case $who in
  berth) label="berth (image store)" ;;
  berth-serial) label="berth (store, one layer at once)" ;;
  berth-dirsink) label="berth (dir sink, no sync)" ;;
  peer) label="skopeo copy + umoci unpack" ;;
  esac
  printf '   %-32s %9s %7s %8s %7s %12s\n' "$label" "$m" "$(ratio "$m" "$peer_ms")" "$c" \
    "$(ratio "$c" "$peer_cpu")" "$r"
  raw "pull.$who ms${ms[$who]} cpu_ms${cpu[$who]} rss_kb${rss[$who]}"
done
echo "   peer median by step: skopeo copy $(echo "${split[skopeo]}" | median) ms, umoci unpack" \
  "$(echo "${split[umoci]}" | median) ms"
raw "pull.peer-steps skopeo_ms${split[skopeo]} umoci_ms${split[umoci]}"
b=$(echo "${ms[berth]}" | median)
r=$(ratio "$b" "$peer_ms")
if awk -v r="$r" 'BEGIN { exit !(r <= 0.7) }'; then v=PASS; else v=FAIL; fi
echo "   verdict: $v - berth takes $r x the peer's time (target <= 0.70)"
