#!/usr/bin/env bash
# Benchmarks berth-runtime and berth-shim side by side with crun, runc and conmon, image pulls
# against skopeo + umoci, the store's root filesystems against mount(8), and Berth's bridge and
# awsvpc networking against ip/nft commands, a whole node (berth-control + berth-agent: task start
# beside crun, agent memory and CPU), and prints ratios (bench/README.md).
# Usage: BUILD=build bench/run.sh   (as root; `make bench` does this)
set -euo pipefail

: "${BUILD:=build}"
BUILD=$(cd "$BUILD" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
rounds=${BENCH_ROUNDS:-20}      # rounds of the start benchmark; each runtime runs once per round
per_round=${BENCH_PER_ROUND:-5} # containers per runtime per round

[ "$(id -u)" -eq 0 ] || { echo "bench: run as root (containers need it)" >&2; exit 1; }
for tool in crun runc jq unshare mountpoint; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (run packaging/deps.sh)" >&2; exit 1; }
done
[ -x "$BUILD/rootfs/busybox/bin/busybox" ] ||
  { echo "bench: no rootfs at $BUILD/rootfs/busybox (make BUILD=$BUILD rootfs)" >&2; exit 1; }

# All runtimes run in one private mount namespace in which this hybrid host's cgroup2 mount is
# gone, so each sees the same pure cgroup v1 host: crun 1.8.1 refuses hybrid hosts, and running
# only crun in such a namespace would give it a different host than the others.
if [ -z "${BERTH_BENCH_IN_NS:-}" ]; then
  exec unshare --mount --propagation private env BERTH_BENCH_IN_NS=1 "$0" "$@"
fi
if mountpoint -q /sys/fs/cgroup/unified; then
  umount /sys/fs/cgroup/unified
  cgmode="cgroup v1 (hybrid host, /sys/fs/cgroup/unified unmounted in a private mount ns)"
elif [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
  cgmode="cgroup v2"
else
  cgmode="cgroup v1"
fi

out=$BUILD/bench
work=$out/work
results=$out/results.txt
berth_bin=$BUILD/bin/berth-runtime
shim_bin=$BUILD/bin/berth-shim
mkdir -p "$out"
rm -rf "$work"
mkdir -p "$work/logs"
# Runtime state on tmpfs, as /run/crun and /run/runc would be.
state=$(mktemp -d /run/berth-bench.XXXXXX)

cleanup () {
  local rt dir
  for rt in berth crun runc; do
    [ -d "$state/$rt" ] || continue
    rt_argv "$rt"
    for dir in "$state/$rt"/bench-*; do
      [ -e "$dir" ] || continue
      "${argv[@]}" delete --force "${dir##*/}" >/dev/null 2>&1 || true
    done
  done
  rm -rf "$state"
  rmdir /sys/fs/cgroup/*/berth-bench-* 2>/dev/null || true
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Helpers

# Sets the global array argv to the command prefix of runtime $1, with its own state root.
rt_argv () {
  case $1 in
  berth) argv=("$berth_bin" --root "$state/berth") ;;
  crun) argv=(crun --root "$state/crun") ;;
  runc) argv=(runc --root "$state/runc") ;;
  *) return 1 ;;
  esac
}

rt_label () {
  case $1 in berth) echo berth-runtime ;; *) echo "$1" ;; esac
}

# Every runtime starts a row as usable, berth-runtime only once it is built.
reset_status () {
  status[crun]='' status[runc]=''
  if [ -x "$berth_bin" ]; then status[berth]=''; else status[berth]="not built"; fi
}

# Prints a / b with two decimals, or "-" when either is missing.
ratio () {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

median () {
  tr ',' '\n' | sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

max_of () {
  tr ',' '\n' | sort -n | tail -n 1
}

raw () { printf '%s\n' "$*" >>"$results"; }

# Writes bundle $1 from `crun spec`: process.args $2 (a JSON array), terminal off, an absolute
# root.path on a private copy of the rootfs, cgroupsPath $3, and linux.seccomp from file $4
# (a JSON object) when given. `crun spec` has no seccomp section, so without $4 there is none.
# The spec asks for ambient capabilities but leaves the inheritable set empty, and the kernel
# only raises an ambient capability that is also inheritable: crun and runc skip the failure,
# a strict runtime refuses the bundle. Making the ambient set inheritable gives a bundle every
# runtime can honour in full, so all of them do the same work.
make_bundle () {
  local dir=$1 args=$2 cgpath=$3 seccomp=${4:-}
  mkdir -p "$dir"
  (cd "$dir" && crun spec)
  # shellcheck disable=SC2016 # $args, $root, $cg and $sc are jq variables
  local filter='.process.args = $args | .process.terminal = false | .root.path = $root
                | .linux.cgroupsPath = $cg
                | .process.capabilities.inheritable = (.process.capabilities.ambient // [])'
  if [ -n "$seccomp" ]; then
    filter="$filter | .linux.seccomp = \$sc[0]"
  fi
  jq --argjson args "$args" --arg root "$work/rootfs" --arg cg "$cgpath" \
    --slurpfile sc "${seccomp:-/dev/null}" "$filter" "$dir/config.json" >"$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
}

# Runs the container of bundle $2 once with runtime $1 to warm caches and check that the runtime
# accepts it. Sets needs_delete[$1] when `run` leaves the container behind (crun and runc delete
# it on exit; the same work for all means adding a `delete` for a runtime that does not).
# Sets status[$1] to the reason on failure.
declare -A needs_delete=()
rt_try () {
  local rt=$1 bundle=$2 log="$work/logs/$1-try.err"
  rt_argv "$rt"
  if ! "${argv[@]}" run --bundle "$bundle" bench-try </dev/null >/dev/null 2>"$log"; then
    status[$rt]="failed: $(grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-100)"
    "${argv[@]}" delete --force bench-try >/dev/null 2>&1 || true
    return 1
  fi
  needs_delete[$rt]=
  if "${argv[@]}" state bench-try >/dev/null 2>&1; then
    needs_delete[$rt]=1
    "${argv[@]}" delete bench-try >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------------------------------------
# 1. Container start, and 3. runtime peak RSS (from the same runs)

# Runs the start benchmark for bundle $2 with the runtimes named after it; $1 names the row in
# results.txt. Fills total_ns[rt], rss_list[rt] and status[rt] ("" when measured).
declare -A total_ns=() cpu_ns=() rss_list=() status=() round_ns=()
bench_start () {
  local key=$1 bundle=$2
  shift 2
  local rts=("$@") rt r i line
  for rt in "${rts[@]}"; do
    total_ns[$rt]=0 cpu_ns[$rt]=0 rss_list[$rt]=
    [ -n "${status[$rt]:-}" ] && continue
    rt_try "$rt" "$bundle" || true
  done
  for ((r = 0; r < rounds; r++)); do
    for ((i = 0; i < ${#rts[@]}; i++)); do
      # Rotate the order every round so no runtime always follows the same one.
      rt=${rts[$(((i + r) % ${#rts[@]}))]}
      [ -z "${status[$rt]}" ] || continue
      rt_argv "$rt"
      local cmd=("${argv[@]}" run --bundle "$bundle" bench-start)
      [ -z "${needs_delete[$rt]}" ] || cmd+=(--then "${argv[@]}" delete bench-start)
      if ! line=$("$out/runloop" "$per_round" "${cmd[@]}" </dev/null 2>>"$work/logs/$rt-$key.err"); then
        status[$rt]="failed in round $((r + 1)): $(tail -n 3 "$work/logs/$rt-$key.err" | head -n 1 | cut -c1-100)"
        "${argv[@]}" delete --force bench-start >/dev/null 2>&1 || true
        continue
      fi
      local ns=${line#*total_ns=} cpu=${line#*cpu_ns=} rss=${line#*rss_kb=}
      ns=${ns%% *} cpu=${cpu%% *}
      total_ns[$rt]=$((total_ns[$rt] + ns)) round_ns[$rt,$r]=$ns
      cpu_ns[$rt]=$((cpu_ns[$rt] + cpu))
      rss_list[$rt]+=${rss_list[$rt]:+,}$rss
      raw "start.$key.$rt.round$((r + 1)).total_ns $ns"
    done
  done
  for rt in "${rts[@]}"; do
    if [ -z "${status[$rt]}" ]; then
      raw "start.$key.$rt.total_ns ${total_ns[$rt]}"
      raw "start.$key.$rt.cpu_ns ${cpu_ns[$rt]}"
      raw "start.$key.$rt.containers $((rounds * per_round))"
      raw "start.$key.$rt.maxrss_kb ${rss_list[$rt]}"
    else
      raw "start.$key.$rt.status ${status[$rt]}"
    fi
  done
}

# Prints the table of one start row: wall time per runtime and its ratios to crun and runc,
# then CPU time (user+sys of the run's process tree) as a cross-check that noise moves less.
print_start () {
  local title=$1
  shift
  local n=$((rounds * per_round)) rt
  printf '   %s\n' "$title"
  printf '   %-15s %9s %13s %7s %7s %13s %7s\n' runtime "total s" "per ctr ms" "x crun" "x runc" \
    "cpu ms/ctr" "x crun"
  local crun_t=${total_ns[crun]:-} runc_t=${total_ns[runc]:-} crun_c=${cpu_ns[crun]:-}
  [ -z "${status[crun]}" ] || crun_t='' crun_c=''
  [ -z "${status[runc]}" ] || runc_t=''
  for rt in "$@"; do
    if [ -n "${status[$rt]}" ]; then
      printf '   %-15s %s\n' "$(rt_label "$rt")" "${status[$rt]}"
      continue
    fi
    local t=${total_ns[$rt]} c=${cpu_ns[$rt]}
    printf '   %-15s %9s %13s %7s %7s %13s %7s\n' "$(rt_label "$rt")" \
      "$(awk -v t="$t" 'BEGIN { printf "%.3f", t / 1e9 }')" \
      "$(awk -v t="$t" -v n="$n" 'BEGIN { printf "%.2f", t / n / 1e6 }')" \
      "$(ratio "$t" "$crun_t")" "$(ratio "$t" "$runc_t")" \
      "$(awk -v t="$c" -v n="$n" 'BEGIN { printf "%.2f", t / n / 1e6 }')" "$(ratio "$c" "$crun_c")"
  done
}

# One-line verdict for row $1: berth's time against target x crun's.
verdict_start () {
  local target=0.80
  if [ -n "${status[berth]}" ] || [ -n "${status[crun]}" ]; then
    echo "   verdict: no figure (berth-runtime: ${status[berth]:-ok}; crun: ${status[crun]:-ok})"
    return
  fi
  local r i per_round_ratios='' spread
  r=$(ratio "${total_ns[berth]}" "${total_ns[crun]}")
  # The same ratio round by round shows how much the machine's noise moved it.
  for ((i = 0; i < rounds; i++)); do
    per_round_ratios+=${per_round_ratios:+,}$(ratio "${round_ns[berth,$i]}" "${round_ns[crun,$i]}")
  done
  spread=$(tr ',' '\n' <<<"$per_round_ratios" | sort -n |
    awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                                printf "median %.2f, range %s-%s", m, v[1], v[NR] }')
  raw "start.$1.berth_over_crun.rounds $per_round_ratios"
  if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r <= t) }'; then
    echo "   verdict: PASS - berth-runtime takes $r x crun's time (target <= $target)"
  else
    echo "   verdict: MISS - berth-runtime takes $r x crun's time (target <= $target)"
  fi
  echo "            berth/crun round by round: $spread"
}

# Prints the peak RSS table from the rss lists of the no-seccomp start runs.
print_rss () {
  local rt crun_m='' runc_m='' berth_m=''
  [ -z "${status[crun]}" ] && crun_m=$(median <<<"${rss_list[crun]}")
  [ -z "${status[runc]}" ] && runc_m=$(median <<<"${rss_list[runc]}")
  printf '   %-15s %11s %9s %7s %7s\n' runtime "median KiB" "max KiB" "x crun" "x runc"
  for rt in berth crun runc; do
    if [ -n "${status[$rt]}" ]; then
      printf '   %-15s %s\n' "$(rt_label "$rt")" "${status[$rt]}"
      continue
    fi
    local m x
    m=$(median <<<"${rss_list[$rt]}")
    x=$(max_of <<<"${rss_list[$rt]}")
    [ "$rt" = berth ] && berth_m=$m
    printf '   %-15s %11s %9s %7s %7s\n' "$(rt_label "$rt")" "$m" "$x" "$(ratio "$m" "$crun_m")" \
      "$(ratio "$m" "$runc_m")"
    raw "rss.$rt.median_kb $m"
    raw "rss.$rt.max_kb $x"
  done
  if [ -n "$berth_m" ]; then
    echo "   verdict: no target set - berth-runtime peaks at $(ratio "$berth_m" "$crun_m") x crun's" \
      "and $(ratio "$berth_m" "$runc_m") x runc's RSS (medians)"
  else
    echo "   verdict: no figure (berth-runtime: ${status[berth]})"
  fi
}

# ---------------------------------------------------------------------------------------------
# 2. Idle monitor RSS

# Waits up to 5 s for container $2 of runtime $1 to be running; prints its pid.
wait_running () {
  local rt=$1 id=$2 i st
  rt_argv "$rt"
  for ((i = 0; i < 100; i++)); do
    st=$("${argv[@]}" state "$id" 2>/dev/null) || st=
    if [ "$(jq -r '.status // empty' <<<"$st" 2>/dev/null)" = running ]; then
      jq -r .pid <<<"$st"
      return 0
    fi
    sleep 0.05
  done
  return 1
}

# Prints "VmRSS Pss" (KiB) of pid $1.
rss_of () {
  local vm pss
  vm=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")
  pss=$(awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup")
  echo "$vm $pss"
}

# The monitor is the container's parent by design (berth-shim, conmon): find it that way, so
# it does not matter whether the monitor daemonized. Prints "pid comm".
monitor_of () {
  local ppid
  ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$1/status")
  echo "$ppid $(cat "/proc/$ppid/comm")"
}

# Kills container $2 of runtime $1, waits up to 5 s for monitor pid $3 to exit, deletes.
stop_idle () {
  local rt=$1 id=$2 mon=$3 i
  rt_argv "$rt"
  "${argv[@]}" kill "$id" KILL >/dev/null 2>&1 || true
  for ((i = 0; i < 100; i++)); do
    # Gone, or a zombie waiting for init: either way the monitor is done.
    case $(awk '/^State:/ { print $2 }' "/proc/$mon/status" 2>/dev/null) in '' | Z | X) break ;; esac
    sleep 0.05
  done
  "${argv[@]}" delete --force "$id" >/dev/null 2>&1 || true
}

declare -A idle=() # monitor -> "VmRSS Pss" or a reason it has no figure
idle_berth () {
  [ -x "$shim_bin" ] || { idle[berth-shim]="not built"; return; }
  [ -x "$berth_bin" ] || { idle[berth-shim]="not built (needs berth-runtime)"; return; }
  local log=$work/logs/shim.err pid mon
  mkdir -p "$state/shim"
  "$shim_bin" --id bench-idle --state-dir "$state/shim" --runtime "$berth_bin" \
    --runtime-root "$state/berth" --bundle "$work/bundle-idle" </dev/null >/dev/null 2>"$log" &
  if ! pid=$(wait_running berth bench-idle); then
    idle[berth-shim]="failed: container not running after 5 s: $(tail -n 1 "$log" | cut -c1-80)"
    kill "$!" 2>/dev/null || true
    return 0
  fi
  read -r mon comm < <(monitor_of "$pid")
  sleep 1
  idle[berth-shim]="$(rss_of "$mon")"
  raw "idle.berth-shim.monitor_comm $comm"
  stop_idle berth bench-idle "$mon"
  wait || true
}

idle_conmon () {
  command -v conmon >/dev/null || { idle[conmon]="not installed (apt-get install conmon)"; return; }
  local d=$state/conmon pid mon i
  mkdir -p "$d/exit" "$d/sock"
  # No -s/--systemd-cgroup: there is no systemd here; runc manages cgroupfs directly as it does
  # for the others. conmon daemonizes and runs `runc create`; the container pid file appears
  # once create is done, and then the engine's part is `runc start`.
  conmon --cid bench-idle --cuuid 00000000-0000-4000-8000-000000000001 --name bench-idle \
    --runtime "$(command -v runc)" --runtime-arg "--root=$state/runc" \
    --bundle "$work/bundle-idle" --container-pidfile "$d/ctr.pid" \
    --conmon-pidfile "$d/conmon.pid" --log-path "$d/ctr.log" --exit-dir "$d/exit" \
    --socket-dir-path "$d/sock" </dev/null >/dev/null 2>"$work/logs/conmon.err" || {
    idle[conmon]="failed: $(tail -n 1 "$work/logs/conmon.err")"
    return
  }
  for ((i = 0; i < 100; i++)); do
    [ -s "$d/ctr.pid" ] && break
    sleep 0.05
  done
  rt_argv runc
  "${argv[@]}" start bench-idle 2>>"$work/logs/conmon.err" || true
  if ! pid=$(wait_running runc bench-idle); then
    idle[conmon]="failed: container not running: $(tail -n 1 "$work/logs/conmon.err" | cut -c1-80)"
    [ ! -s "$d/conmon.pid" ] || kill "$(cat "$d/conmon.pid")" 2>/dev/null || true
    return 0
  fi
  read -r mon comm < <(monitor_of "$pid")
  sleep 1
  idle[conmon]="$(rss_of "$mon")"
  raw "idle.conmon.monitor_comm $comm"
  stop_idle runc bench-idle "$mon"
}

print_idle () {
  local name c_vm=''
  read -r c_vm _ <<<"${idle[conmon]}"
  [[ $c_vm =~ ^[0-9]+$ ]] || c_vm=
  printf '   %-24s %-14s %10s %8s %9s\n' monitor runtime "VmRSS KiB" "Pss KiB" "x conmon"
  for name in berth-shim conmon containerd-shim-runc-v2; do
    local rtl
    case $name in
    berth-shim) rtl=berth-runtime ;; conmon) rtl=runc ;; *) rtl=runc ;;
    esac
    local vm pss
    read -r vm pss _ <<<"${idle[$name]}"
    if [[ $vm =~ ^[0-9]+$ ]]; then
      printf '   %-24s %-14s %10s %8s %9s\n' "$name" "$rtl" "$vm" "$pss" "$(ratio "$vm" "$c_vm")"
      raw "idle.$name.vmrss_kb $vm"
      raw "idle.$name.pss_kb $pss"
    else
      printf '   %-24s %-14s %s\n' "$name" "$rtl" "${idle[$name]}"
      raw "idle.$name.status ${idle[$name]}"
    fi
  done
  read -r vm _ <<<"${idle[berth-shim]}"
  if [[ $vm =~ ^[0-9]+$ ]]; then
    if [ "$vm" -le 512 ]; then
      echo "   verdict: PASS - idle berth-shim VmRSS $vm KiB (target <= 512 KiB)"
    else
      echo "   verdict: MISS - idle berth-shim VmRSS $vm KiB (target <= 512 KiB)"
    fi
  else
    echo "   verdict: no figure (berth-shim: ${idle[berth-shim]})"
  fi
}

# ---------------------------------------------------------------------------------------------
# Main

cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
  -Wmissing-prototypes -Wformat=2 -o "$out/runloop" "$src/runloop.c"

mkdir "$work/rootfs" && cp -a "$BUILD/rootfs/busybox/." "$work/rootfs/"
make_bundle "$work/bundle-true" '["/bin/true"]' /berth-bench-start
# Control bundle: the same without the /sys/fs/cgroup mount (see the row's note below).
mkdir -p "$work/bundle-nocgmount"
jq 'del(.mounts[] | select(.destination == "/sys/fs/cgroup"))' "$work/bundle-true/config.json" \
  >"$work/bundle-nocgmount/config.json"
make_bundle "$work/bundle-idle" '["/bin/sleep", "3600"]' /berth-bench-idle

reset_status

# Berth's default seccomp profile: linux.seccomp of `berth-runtime spec` (written to config.json
# in the current directory like crun's and runc's, or printed). BENCH_SECCOMP_PROFILE=FILE
# (a linux.seccomp object) overrides it, e.g. to try the harness before berth-runtime exists.
seccomp_file=$work/seccomp.json seccomp_why=
if [ -n "${BENCH_SECCOMP_PROFILE:-}" ]; then
  cp "$BENCH_SECCOMP_PROFILE" "$seccomp_file"
elif [ -z "${status[berth]}" ]; then
  mkdir -p "$work/berth-spec"
  if (cd "$work/berth-spec" && "$berth_bin" spec >stdout.json 2>"$work/logs/berth-spec.err"); then
    spec=$work/berth-spec/config.json
    [ -s "$spec" ] || spec=$work/berth-spec/stdout.json
    jq -e '.linux.seccomp // empty' "$spec" >"$seccomp_file" 2>/dev/null ||
      seccomp_why="no linux.seccomp in \`berth-runtime spec\`"
  else
    seccomp_why="\`berth-runtime spec\` failed"
  fi
else
  seccomp_why="berth-runtime not built"
fi
if [ -z "$seccomp_why" ]; then
  make_bundle "$work/bundle-seccomp" '["/bin/true"]' /berth-bench-start "$seccomp_file"
fi

{
  echo "# Berth benchmarks: raw numbers (bench/README.md)"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host $(uname -n) kernel $(uname -r) cpus $(nproc)"
  echo "cpu $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "cgroups $cgmode"
  echo "loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "crun $(crun --version | head -n 1)"
  echo "runc $(runc --version | head -n 1)"
  echo "conmon $(conmon --version 2>/dev/null | head -n 1 || echo none)"
  echo "berth-runtime ${status[berth]:-$berth_bin}"
} >"$results"

n=$((rounds * per_round))
echo "Berth benchmarks - $(date -u +%Y-%m-%d) on $(uname -n), $(nproc) CPUs, kernel $(uname -r)"
echo "   cgroups: $cgmode"
echo "   the figures are ratios between runtimes measured in this run, not absolute times"
echo
echo "== 1. Container start: $n sequential /bin/true containers per runtime =="
echo "   Each container is created, started and deleted by one \`run\` (crun and runc delete on"
echo "   exit; a runtime whose run keeps the container also runs \`delete\`), $rounds interleaved"
echo "   rounds of $per_round; bundle from \`crun spec\`, read-only busybox rootfs, cgroupsPath"
echo "   /berth-bench-start, pid/net/ipc/uts/mount namespaces."
bench_start nosec "$work/bundle-true" berth crun runc
# Figure 3 is printed last but comes from these runs: keep them.
declare -A nosec_rss=() nosec_status=()
for rt in berth crun runc; do
  nosec_rss[$rt]=${rss_list[$rt]} nosec_status[$rt]=${status[$rt]}
done
print_start "no seccomp filter in the bundle:" berth crun runc
verdict_start nosec
echo
if [ -z "$seccomp_why" ]; then
  reset_status
  bench_start seccomp "$work/bundle-seccomp" berth crun runc
  print_start "with Berth's default seccomp profile as linux.seccomp:" berth crun runc
  verdict_start seccomp
else
  echo "   with Berth's default seccomp profile: not measured ($seccomp_why)"
  raw "start.seccomp.status $seccomp_why"
fi
echo
# On a cgroup v1 host crun and runc mount a tmpfs at /sys/fs/cgroup plus one read-only mount
# per hierarchy (10 mounts here) where berth-runtime mounts one empty tmpfs: without that
# mount in the bundle, all three do the same mounts.
reset_status
bench_start nocgmount "$work/bundle-nocgmount" berth crun runc
print_start "control, no seccomp and no /sys/fs/cgroup mount in the bundle (same mounts for all):" \
  berth crun runc
verdict_start nocgmount
echo

echo "== 2. Idle monitor RSS: one \`sleep 3600\` container, read 1 s after it is running =="
idle_berth
idle_conmon
if command -v containerd-shim-runc-v2 >/dev/null; then
  idle[containerd-shim-runc-v2]="not measured: needs containerd to drive it over ttrpc"
else
  idle[containerd-shim-runc-v2]="not measured: needs containerd running (not installed)"
fi
print_idle
echo

echo "== 3. Runtime peak RSS: \`run\` of the /bin/true container, no seccomp ($n runs each) =="
echo "   max RSS of the largest process in the run's tree (ru_maxrss from wait4, GNU time's %M)"
for rt in berth crun runc; do
  rss_list[$rt]=${nosec_rss[$rt]} status[$rt]=${nosec_status[$rt]}
done
print_rss
echo

# 4. Image pull (bench/pull.sh: its own registry, image and driver).
BUILD=$BUILD "$src/pull.sh" || echo "   image pull: not measured (bench/pull.sh failed)"
echo
echo "== 5. awsvpc network setup + teardown per task (macvlan path): berth vs one iproute2 script per task =="
echo "   ${BENCH_NET_TASKS:-200} tasks each, interleaved, in a throwaway network namespace (bench/net-awsvpc.sh)"
BENCH_RESULTS=$results BUILD=$BUILD "$src/net-awsvpc.sh" ||
  echo "   not measured: bench/net-awsvpc.sh failed"
echo
echo "== 6. Bridge network setup + teardown per task: berth vs ip and nft commands =="
if ! BUILD=$BUILD BENCH_RESULTS=$results "$src/net.sh" 2>"$work/logs/net.err"; then
  echo "   not measured: $(tail -n 1 "$work/logs/net.err" | cut -c1-100)"
  raw "net.bridge.status failed"
fi
echo
echo "== 7. Root filesystem ready for a cached image (overlay mounted) =="
BUILD=$BUILD "$src/rootfs.sh" "$results" 2>"$work/logs/rootfs.err" ||
  echo "   failed: $(tail -n 1 "$work/logs/rootfs.err")"
echo
# 8. The placement engine alone (bench/sched.c, built by make with the tests): placements/s
# with 1,000 synthetic container instances; no containers, no root needed.
echo "== 8. Placement engine: one RunTask-sized call (count 1) at a time, 1,000 instances =="
if [ -x "$BUILD/bench/sched" ]; then
  sched_out=$("$BUILD/bench/sched" "${BENCH_SCHED_PLACEMENTS:-5000}")
  echo "$sched_out"
  printf '%s\n' "$sched_out" | sed 's/^ */sched /' >>"$results"
  slowest=$(printf '%s\n' "$sched_out" | awk 'NR > 1 { print $(NF - 1) }' | sort -n | head -n 1)
  if awk -v r="$slowest" 'BEGIN { exit !(r >= 10000) }'; then
    echo "   verdict: PASS - slowest scenario $slowest placements/s: the engine takes at most"
    echo "            1/5 of the 0.5 ms a placement may take at 2,000/s end to end"
  else
    echo "   verdict: MISS - slowest scenario $slowest placements/s (want >= 10,000: 1/5 of the budget)"
  fi
else
  echo "   not measured: $BUILD/bench/sched missing (make BUILD=$BUILD all)"
fi
echo
echo "== 9. berth-control RunTask placement through the HTTP API (no peer) =="
# The store is on the build directory's disk, as a real data directory would be: every
# RunTask commits with fsync before it answers (docs/controlplane.md).
read -ra pl_cflags <<<"$(pkg-config --cflags libcjson libcurl)"
read -ra pl_libs <<<"$(pkg-config --libs libcjson libcurl)"
if [ -x "$BUILD/bin/berth-control" ] &&
  cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "${pl_cflags[@]}" \
    -o "$out/placement" "$src/placement.c" "$src/cpclient.c" "${pl_libs[@]}"; then
  "$out/placement" "$BUILD/bin/berth-control" "$work/placement" "${BENCH_INSTANCES:-1000}" \
    "${BENCH_RUNTASKS:-300}" 10 >"$work/placement.out" 2>"$work/logs/placement.err" ||
    echo "   failed: $(tail -n 1 "$work/logs/placement.err")"
  grep -v '^raw ' "$work/placement.out" || true
  sed -n 's/^raw //p' "$work/placement.out" >>"$results"
else
  echo "   not measured: berth-control not built"
fi
echo
echo "== 10. berth-control holding 1,000 agent long-polls (no peer) =="
# One process plays the agents: N instances registered with the agent key, N concurrent
# BerthChannelV1.Poll requests (curl multi), each re-sent when its heartbeat returns; the
# server's RSS and CPU over a steady interval (bench/agents.c).
if [ -x "$BUILD/bin/berth-control" ] &&
  cc -std=gnu11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "${pl_cflags[@]}" \
    -o "$out/agents" "$src/agents.c" "$src/cpclient.c" "${pl_libs[@]}"; then
  rm -rf "$work/agents"
  "$out/agents" "$BUILD/bin/berth-control" "$work/agents" "${BENCH_AGENTS:-1000}" \
    "${BENCH_AGENTS_SECONDS:-60}" "${BENCH_AGENTS_WAIT:-5}" >"$work/agents.out" \
    2>"$work/logs/agents.err" || echo "   failed: $(tail -n 1 "$work/logs/agents.err")"
  grep -v '^raw ' "$work/agents.out" || true
  sed -n 's/^raw /agents /p' "$work/agents.out" >>"$results"
else
  echo "   not measured: berth-control not built"
fi
echo
# 11 and 12. A whole node (bench/node.sh): berth-control and berth-agent in a throwaway network
# namespace, RunTask to RUNNING beside `crun run -d`, the agent's memory and CPU, shims.
echo "== 11 and 12. A whole node: berth-control + berth-agent in a throwaway network namespace =="
BUILD=$BUILD BENCH_RESULTS=$results "$src/node.sh" || echo "   not measured: bench/node.sh failed"
echo
echo "raw numbers: $results"
