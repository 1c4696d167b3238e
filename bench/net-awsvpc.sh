#!/usr/bin/env bash
# awsvpc network setup + teardown per task: Berth (net_awsvpc_setup/teardown, macvlan path)
# against the same steps as one iproute2 shell script per task, in one run, inside a throwaway
# network and mount namespace (bench/README.md). Usage: BUILD=build bench/net-awsvpc.sh
# (as root, after `make BUILD=build all`). BENCH_NET_TASKS (default 200) tasks each.
set -euo pipefail

: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/.." && pwd)
n=${BENCH_NET_TASKS:-200}
results=${BENCH_RESULTS:-$BUILD/bench/net-awsvpc.txt}

[ "$(id -u)" -eq 0 ] || { echo "net-awsvpc: run as root" >&2; exit 1; }
for a in net lib; do
  [ -f "$BUILD/lib$a.a" ] || { echo "net-awsvpc: $BUILD/lib$a.a missing (make BUILD=$BUILD all)" >&2; exit 1; }
done

# Inside: a fresh network namespace is the "host" (nothing touches the real one), and a private
# mount namespace gets tmpfs for the pins, the state and /run/netns (iproute2's pins).
if [ -z "${BERTH_NETBENCH_IN_NS:-}" ]; then
  mkdir -p "$BUILD/bench"
  # shellcheck disable=SC2046 # pkg-config's flags are meant to split into words
  cc -std=gnu11 -D_GNU_SOURCE -O2 -I"$root" -Wall -Wextra -Werror -o "$BUILD/bench/netawsvpc" \
    "$src/netawsvpc.c" "$BUILD/libnet.a" "$BUILD/liblib.a" \
    $(pkg-config --cflags --libs libmnl libnftables libcjson) -lpthread
  exec unshare --net --mount --propagation private env BERTH_NETBENCH_IN_NS=1 "$0" "$@"
fi
work=$(mktemp -d /tmp/berth-netbench.XXXXXX)
mount -t tmpfs tmpfs "$work"
mkdir -p /run/netns
mount -t tmpfs tmpfs /run/netns
cleanup () { umount -R /run/netns 2>/dev/null || true; umount -R "$work" 2>/dev/null || true; rmdir "$work"; }
trap cleanup EXIT
ip link set lo up
# The on-prem parent NIC (this kernel has no dummy links: one end of a veth pair).
ip link add nic0 type veth peer name nic0p
ip link set nic0 up
ip link set nic0p up

out=$("$BUILD/bench/netawsvpc" "$n" "$work" nic0)
b_med=$(awk '/^berth /{print $3}' <<<"$out") b_p99=$(awk '/^berth /{print $5}' <<<"$out")
s_med=$(awk '/^iproute2 /{print $3}' <<<"$out") s_p99=$(awk '/^iproute2 /{print $5}' <<<"$out")
ratio () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
r_med=$(ratio "$b_med" "$s_med") r_p99=$(ratio "$b_p99" "$s_p99")
{
  echo "net.awsvpc.tasks $n"
  echo "net.awsvpc.berth.median_us $b_med"
  echo "net.awsvpc.berth.p99_us $b_p99"
  echo "net.awsvpc.iproute2.median_us $s_med"
  echo "net.awsvpc.iproute2.p99_us $s_p99"
} >>"$results"
printf '   %-10s %12s %12s\n' "" "median ms" "p99 ms"
ms () { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
printf '   %-10s %12s %12s\n' berth "$(ms "$b_med")" "$(ms "$b_p99")"
printf '   %-10s %12s %12s\n' iproute2 "$(ms "$s_med")" "$(ms "$s_p99")"
printf '   %-10s %12s %12s\n' "x" "$r_med" "$r_p99"
if awk -v r="$r_med" 'BEGIN { exit !(r <= 0.3) }'; then
  echo "   verdict: PASS - berth takes $r_med x the script's median time (target <= 0.3)"
else
  echo "   verdict: MISS - berth takes $r_med x the script's median time (target <= 0.3)"
fi
