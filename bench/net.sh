#!/usr/bin/env bash
# Figure 6: bridge network setup + teardown per task, Berth vs ip/nft commands in a shell script
# (bench/README.md). Runs everything in a throwaway network and mount namespace, so the machine's
# own network is never touched. Usage (as root, after make all): BUILD=build bench/net.sh
set -euo pipefail

: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
tasks=${BENCH_NET_TASKS:-200}
out=$BUILD/bench
results=${BENCH_RESULTS:-$out/results.txt}

[ "$(id -u)" -eq 0 ] || { echo "bench/net.sh: run as root" >&2; exit 1; }
for tool in ip nft unshare pkg-config; do
  command -v "$tool" >/dev/null || { echo "bench/net.sh: $tool missing" >&2; exit 1; }
done

if [ -z "${BERTH_BENCH_NET_NS:-}" ]; then
  mkdir -p "$out"
  # shellcheck disable=SC2046 # pkg-config prints several words on purpose
  cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I"$src/.." -o "$out/netbench" \
    "$src/netbench.c" "$BUILD/libnet.a" "$BUILD/liblib.a" \
    $(pkg-config --cflags --libs libmnl libnftables libcjson) -lpthread
  exec unshare --net --mount --propagation private env BERTH_BENCH_NET_NS=1 "$0" "$@"
fi

# Berth's state where the agent keeps it, on /run: the namespace pins and the IPAM file. /run is
# a tmpfs on a normal host (not in every build container), so the run gets a tmpfs of its own
# there, in this private mount namespace.
work=$(mktemp -d "$out/net-work.XXXXXX")
mount -t tmpfs -o size=16m,mode=0700 berth-bench "$work"
trap 'umount -l "$work"; rmdir "$work"' EXIT
ip link set lo up

# The script's tasks use the same bridge and table Berth made (netbench opens the bridge first),
# addresses from the top of Berth's default subnet (Berth's IPAM hands them out from the bottom),
# and do what net_bridge_setup and net_bridge_teardown do, one command per step.
cat >"$work/task.sh" <<'EOF'
set -e
i=$1 ns=bs$1 v=bsv$1 port=$((40000 + $1))
addr=172.30.235.$(($1 % 250 + 2))
ip netns add "$ns"
ip link add "$v" type veth peer name eth0 netns "$ns"
ip link set "$v" master berth0
ip link set "$v" up
ip -n "$ns" link set lo up
ip -n "$ns" addr add "$addr/22" dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" route add default via 172.30.232.1
h=$(nft -e -a add rule ip berth publish tcp dport "$port" dnat to "$addr:80" \
  comment "\"bench:$i\"" | sed -n 's/.* # handle //p')
nft delete rule ip berth publish handle "$h"
ip link del "$v"
ip netns del "$ns"
EOF

# The same without `ip link del`: the pair goes with the namespace, as Berth's teardown does
# (docs/networking.md), so this row compares equal kernel work.
grep -v '^ip link del' "$work/task.sh" >"$work/task-nodel.sh"

echo "   $tasks tasks each, interleaved task by task, in a throwaway network namespace;"
echo "   each task: namespace, veth on berth0 (eth0 inside), lo and eth0 up, address, default"
echo "   route, one published TCP port (nft DNAT), then the reverse"
"$out/netbench" "$tasks" "$work" "$results" \
  "$work/task.sh" "ip + nft commands, one sh script per task" \
  "$work/task-nodel.sh" "the same script without \`ip link del\`"
