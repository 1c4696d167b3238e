#!/usr/bin/env bash
# Runs tests/vm/guest-tests.sh (or one command, for debugging) inside a throwaway qemu VM:
# Debian bookworm with systemd on pure cgroup v2. Prints the guest's output, the time of each
# phase and one closing line "N passed, N failed"; exits non-zero on any failure.
#   tests/vm/run.sh                      the VM test suite (what `make vm-check` runs)
#   tests/vm/run.sh --shell-cmd 'CMD'    run CMD in the guest instead, print its output, exit
#                                        with its status (also: BERTH_VM_CMD='CMD')
#   tests/vm/run.sh --console            boot to a root shell on this terminal (Ctrl-a x quits)
#   tests/vm/run.sh --keep ...           keep the work dir (disk image, serial log) afterwards
# Environment: BUILD (build dir, default build), BERTH_VM_CACHE (default /var/cache/berth-vm),
# BERTH_VM_TIMEOUT (seconds, default 900), BERTH_VM_MEM (MiB, 2048), BERTH_VM_SMP (2),
# BERTH_VM_KERNEL (a /boot/vmlinuz-*, default the newest), BERTH_VM_ONLY=package (only the
# packaging checks: a debugging aid).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
mode=tests cmd=${BERTH_VM_CMD:-} keep=0
[ -n "$cmd" ] && mode=cmd
while [ $# -gt 0 ]; do
  case $1 in
  --shell-cmd) mode=cmd cmd=${2:?--shell-cmd needs a command}; shift ;;
  --console) mode=console ;;
  --keep) keep=1 ;;
  *) echo "usage: $0 [--keep] [--shell-cmd CMD | --console]" >&2; exit 2 ;;
  esac
  shift
done
build=${BUILD:-build}
timeout_s=${BERTH_VM_TIMEOUT:-900}

say() { echo "vm: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# Fails before the VM exists: still one closing line, so the stage counts as failed.
die() {
  say "$*"
  [ "$mode" = tests ] && echo "0 passed, 1 failed"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, image ownership)"
for t in debootstrap zstd mkfs.ext4 depmod qemu-system-x86_64 timeout; do
  command -v "$t" >/dev/null || die "$t missing: run packaging/deps.sh"
done
[ -d "$build" ] || die "build dir $build missing: make BUILD=$build all rootfs"
build=$(cd "$build" && pwd)

# The host's newest Debian kernel (linux-image-amd64), not the one running here.
kernel=${BERTH_VM_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)}
kver=${kernel#/boot/vmlinuz-}
[ -r "$kernel" ] && [ -r "/boot/initrd.img-$kver" ] && [ -d "/lib/modules/$kver" ] ||
  die "no usable kernel in /boot (install linux-image-amd64)"

work=$(mktemp -d "${TMPDIR:-/tmp}/berth-vm.XXXXXX")
qpid='' pollpid=''
cleanup() {
  # The packaging test's host side: its poller and berth-control (started by this script).
  [ -n "$pollpid" ] && kill "$pollpid" 2>/dev/null
  [ -s "$work/pkg/control.pid" ] && kill "$(cat "$work/pkg/control.pid")" 2>/dev/null
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  # timeout(1) passes the signal on; the pid file catches a qemu that outlived it.
  if [ -s "$work/qemu.pid" ]; then
    local p; p=$(cat "$work/qemu.pid")
    grep -qs qemu "/proc/$p/comm" && kill -9 "$p" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Phase 1: the cached rootfs (built on a miss).
t0=$(now)
key=$("$src/tests/vm/rootfs.sh" --key)
cache_state=warm
ls "${BERTH_VM_CACHE:-/var/cache/berth-vm}"/rootfs-*-"$key".tar.zst >/dev/null 2>&1 ||
  cache_state=cold
tarball=$("$src/tests/vm/rootfs.sh") || die "could not build the guest rootfs"
root=$work/root
mkdir -p "$root"
zstd -q -dc "$tarball" | tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf - ||
  die "could not restore $tarball"
t_rootfs=$(secs "$t0" "$(now)")
say "rootfs $t_rootfs s ($cache_state)"

# Phase 2: per-run files, then the disk image.
t0=$(now)
"$src/tests/vm/customise.sh" "$root" "$kver" "$build" "$mode" ||
  die "could not customise the guest rootfs"
truncate -s 4G "$work/disk.img"
mkfs.ext4 -q -F -L berth-vm -d "$root" "$work/disk.img" || die "mkfs.ext4 failed"
rm -rf "$root"
t_image=$(secs "$t0" "$(now)")
say "image $t_image s"

# Phase 3: boot, run the job, power off.
results=$work/results
mkdir -p "$results"
{
  echo "export BERTH_SRC=/mnt/berth BERTH_VM_BUILD=/mnt/build BERTH_VM_ONLY=${BERTH_VM_ONLY:-}"
  echo "cd /mnt/berth"
  if [ "$mode" = cmd ]; then printf '%s\n' "$cmd"; else echo "exec bash tests/vm/guest-tests.sh"; fi
} >"$results/job.sh"
cmdline="root=/dev/vda rw console=ttyS0 panic=1 systemd.unified_cgroup_hierarchy=1"
# The packaging test (docs/packaging.md): with the build's .debs, the tests boot with a NoCloud
# seed whose user-data installs berth-agent, and berth-control runs on this host's loopback,
# reached by the guest as 10.0.2.100:8420 through guestfwd (nothing else leaves the guest).
nic=user,model=virtio-net-pci,restrict=on
seed=()
if [ "$mode" = tests ] && ls "$build"/deb/berth-agent_*.deb >/dev/null 2>&1 &&
  [ -x "$build/bin/berth-control" ]; then
  for t in genisoimage openssl aws jq; do
    command -v "$t" >/dev/null || die "$t missing: run packaging/deps.sh"
  done
  mkdir -p "$work/pkg"
  "$src/tests/vm/package-host.sh" setup "$work/pkg" "$build" ||
    die "could not set up berth-control and the NoCloud seed"
  nic+=,$(cat "$work/pkg/guestfwd")
  seed=(-drive "file=$work/pkg/seed.iso,format=raw,if=virtio,readonly=on")
else
  cmdline+=" cloud-init=disabled"
fi
# shellcheck disable=SC2054 # the commas belong to qemu's option values
qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp "${BERTH_VM_SMP:-2}" -m "${BERTH_VM_MEM:-2048}"
  -nodefaults -display none -no-reboot -pidfile "$work/qemu.pid"
  -kernel "$kernel" -initrd "/boot/initrd.img-$kver"
  -append "$cmdline"
  -drive "file=$work/disk.img,format=raw,if=virtio,cache=unsafe"
  "${seed[@]}" -nic "$nic" -device virtio-rng-pci
  -virtfs "local,path=$src,mount_tag=berthsrc,security_model=none,readonly=on,id=berthsrc"
  -virtfs "local,path=$build,mount_tag=berthbuild,security_model=none,readonly=on,id=berthbuild"
  -virtfs "local,path=$results,mount_tag=berthresults,security_model=none,id=berthresults")
if [ "$mode" = console ]; then
  say "console: root shell on ttyS0; 'poweroff' or Ctrl-a x to leave"
  "${qemu[@]}" -serial mon:stdio
  exit 0
fi
serial=$work/serial.log
t0=$(now)
timeout -k 10 "$timeout_s" "${qemu[@]}" -serial "file:$serial" &
qpid=$!
if [ ${#seed[@]} -gt 0 ]; then
  "$src/tests/vm/package-host.sh" poll "$work/pkg" "$results" >"$work/pkg/poll.log" 2>&1 &
  pollpid=$!
fi
qrc=0
wait "$qpid" || qrc=$?
qpid=
rm -f "$work/qemu.pid" # qemu is gone; its pid may be someone else's by now
t_qemu=$(secs "$t0" "$(now)")

# Phase 4: what the guest left on the results share.
tail_serial() {
  say "last lines of the serial console:"
  tail -n "${1:-60}" "$serial" 2>/dev/null | sed 's/^/  serial| /' >&2
  echo >&2 # the console's last line may not be finished
}
if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
  [ -s "$results/output" ] && say "guest output so far:" && sed 's/^/  /' "$results/output" >&2
  tail_serial 80
  die "guest did not finish within $timeout_s s"
fi
[ "$qrc" -ne 0 ] && { tail_serial; die "qemu exited with status $qrc"; }
[ -s "$results/rc" ] || { tail_serial; die "guest powered off without a result"; }
rc=$(cat "$results/rc")
up_start=$(awk '$1 == "job_start" { print $2 }' "$results/times")
up_end=$(awk '$1 == "job_end" { print $2 }' "$results/times")
t_boot=$(secs 0 "$up_start")
t_job=$(secs "$up_start" "$up_end")

if [ "$mode" = cmd ]; then
  cat "$results/output"
  say "timings: rootfs $t_rootfs s ($cache_state), image $t_image s, boot $t_boot s," \
    "command $t_job s, qemu total $t_qemu s"
  say "command exited $rc"
  exit "$rc"
fi

# The guest's lines are indented so that the only closing line at the margin is ours.
sed 's/^/  /' "$results/output"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$results/output" | tail -n 1 || true)
passed=0 failed=0
if [ -n "$line" ]; then
  passed=$(cut -d' ' -f1 <<<"$line")
  failed=$(cut -d' ' -f3 <<<"$line")
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # the guest script failed without counting it
  tail_serial 40
fi
active=
[ -s "$results/host-active" ] && active=", power-on to instance ACTIVE $(cut -d' ' -f1 "$results/host-active") s"
[ -s "$results/task-running" ] && active+=", RunTask to RUNNING $(cat "$results/task-running") s"
echo "vm timings: rootfs $t_rootfs s ($cache_state), image $t_image s," \
  "boot $t_boot s, tests $t_job s, qemu total $t_qemu s$active"
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
