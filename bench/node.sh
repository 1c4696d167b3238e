#!/usr/bin/env bash
# Figures 11 and 12 (bench/README.md): a whole node, berth-control and berth-agent, in a throwaway
# network and mount namespace; RunTask to RUNNING beside `crun run -d`, the agent's RSS and CPU
# idle and with many tasks, berth-shim's memory per container (bench/node.c measures).
# Usage (as root, after make all rootfs): BUILD=build bench/node.sh
set -euo pipefail

: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
out=$BUILD/bench
results=${BENCH_RESULTS:-$out/results.txt}
lat_tasks=${BENCH_NODE_TASKS:-200}
load_tasks=${BENCH_NODE_LOAD:-500}
cpu_seconds=${BENCH_NODE_CPU_SECONDS:-60}
load_family=bench-${BENCH_NODE_LOAD_MODE:-bridge} # bench-bridge or bench-none

[ "$(id -u)" -eq 0 ] || { echo "bench/node.sh: run as root" >&2; exit 1; }
for tool in crun jq umoci skopeo unshare ip; do
  command -v "$tool" >/dev/null || { echo "bench/node.sh: $tool missing" >&2; exit 1; }
done
for b in berth-control berth-agent berth-shim berth-runtime; do
  [ -x "$BUILD/bin/$b" ] || { echo "bench/node.sh: $BUILD/bin/$b not built" >&2; exit 1; }
done

if [ -z "${BERTH_BENCH_NODE_NS:-}" ]; then
  mkdir -p "$out"
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wformat=2 -o "$out/node" "$src/node.c" "$src/cpclient.c" \
    $(pkg-config --cflags --libs libcjson libcurl)
  # The agent's libraries alone (figure 12a's floor): the same DT_NEEDED list as berth-agent.
  # shellcheck disable=SC2046 # one -l: word per library
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$out/libfloor" "$src/libfloor.c" -Wl,--no-as-needed \
    $(readelf -d "$BUILD/bin/berth-agent" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/-l:\1/p')
  exec unshare --net --mount --propagation private env BERTH_BENCH_NODE_NS=1 "$0" "$@"
fi

# The bench image: the busybox rootfs of the other figures, `sleep 3600` as its command; built
# once, imported into a fresh image store each run (cached image: nothing is pulled).
image=$out/node-image/bench-sleep.tar
if [ ! -s "$image" ]; then
  mkdir -p "$out/node-image"
  tmp=$(mktemp -d "$out/node-image/.build.XXXXXX")
  (
    cd "$tmp"
    umoci init --layout oci >/dev/null
    umoci new --image oci:latest
    umoci unpack --image oci:latest bundle >/dev/null
    cp -a "$BUILD/rootfs/busybox/." bundle/rootfs/
    umoci repack --image oci:latest bundle
    umoci config --image oci:latest --config.cmd /bin/sleep --config.cmd 3600
    skopeo copy -q oci:oci:latest docker-archive:bench-sleep.tar:berth/bench-sleep:latest
  )
  mv "$tmp/bench-sleep.tar" "$image"
  rm -rf "$tmp"
fi

# Durable state on the build directory's disk (as /var/lib would be), volatile state on a tmpfs
# of this mount namespace (as /run is on a normal host). The machine's cgroup2 mount is hidden
# here, as in run.sh, so crun 1.8.1 runs on this hybrid host and everyone sees pure v1.
work=$out/work/node
rm -rf "$work"
mkdir -p "$work/run" "$work/logs"
mount -t tmpfs -o mode=0700 berth-bench-node "$work/run"
if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
ip link set lo up
state=$work/run/berth

cat >"$work/ecs.config" <<EOF
ECS_BACKEND_HOST=http://127.0.0.1:8420
ECS_DATADIR=$work/agent-data
BERTH_STATE_DIR=$state
BERTH_IMAGE_DIR=$work/images
ECS_IMAGE_PULL_BEHAVIOR=prefer-cached
EOF

cp_pid='' agent_pid='' floor_pid=''
cleanup () {
  set +e
  [ -n "$floor_pid" ] && kill -TERM "$floor_pid" && wait "$floor_pid"
  [ -n "$agent_pid" ] && kill -TERM "$agent_pid" && wait "$agent_pid"
  # The agent leaves containers running by design: kill and delete them (their shims exit).
  for dir in "$state"/runtime/*/; do
    [ -d "$dir" ] || continue
    "$BUILD/bin/berth-runtime" --root "$state/runtime" delete --force "$(basename "$dir")" \
      >/dev/null 2>&1
  done
  # A container whose delete failed: kill it through its shim (ours: our state dir in its
  # command line), and remove the cgroups the runtime would have.
  local pid killed=''
  for pid in $(pgrep -x berth-shim); do
    grep -qF "$state/" "/proc/$pid/cmdline" 2>/dev/null || continue
    # shellcheck disable=SC2046 # the children file lists pids separated by spaces
    kill -KILL $(cat "/proc/$pid/task/$pid/children" 2>/dev/null) 2>/dev/null && killed=1
  done
  [ -n "$killed" ] && sleep 1
  for dir in "$state"/runtime/*/; do
    [ -d "$dir" ] && rmdir /sys/fs/cgroup/*/berth/"$(basename "$dir")" 2>/dev/null
  done
  [ -n "$cp_pid" ] && kill -TERM "$cp_pid" && wait "$cp_pid"
  crun --root "$work/run/crun" list -q 2>/dev/null | while read -r id; do
    crun --root "$work/run/crun" delete -f "$id"
  done
  rmdir /sys/fs/cgroup/*/berth-bench-node-$$ 2>/dev/null
}
trap cleanup EXIT

"$BUILD/bin/berth-agent" --config "$work/ecs.config" --import "$image" >/dev/null

# crun's bundle: `crun spec` with the same rootfs (read-only, as the spec has it) and command.
mkdir -p "$work/crun-bundle"
(cd "$work/crun-bundle" && crun spec)
jq --arg root "$BUILD/rootfs/busybox" --arg cg "/berth-bench-node-$$" \
  '.process.args = ["/bin/sleep", "3600"] | .process.terminal = false | .root.path = $root
   | .linux.cgroupsPath = $cg
   | .process.capabilities.inheritable = (.process.capabilities.ambient // [])' \
  "$work/crun-bundle/config.json" >"$work/crun-bundle/config.json.new"
mv "$work/crun-bundle/config.json.new" "$work/crun-bundle/config.json"

"$BUILD/bin/berth-control" --data-dir "$work/cp" --listen 127.0.0.1:8420 --log-level warn \
  2>"$work/logs/berth-control.log" &
cp_pid=$!
for _ in $(seq 100); do [ -s "$work/cp/credentials" ] && break; sleep 0.1; done
AWS_SHARED_CREDENTIALS_FILE=$work/cp/credentials AWS_PROFILE=agent \
  "$BUILD/bin/berth-agent" --config "$work/ecs.config" 2>"$work/logs/berth-agent.log" &
agent_pid=$!
"$out/libfloor" &
floor_pid=$!

"$out/node" 8420 "$work/cp/credentials" "$agent_pid" "$state" "$work/run/crun" \
  "$work/crun-bundle" "$load_family" "$lat_tasks" "$load_tasks" "$cpu_seconds" "$floor_pid" \
  >"$work/node.out" 2>"$work/logs/node.err" || echo "   failed: $(tail -n 1 "$work/logs/node.err")"
grep -v '^raw ' "$work/node.out" || true
sed -n 's/^raw //p' "$work/node.out" >>"$results"
