#!/usr/bin/env bash
# Runs inside the VM guest (started by tests/vm/run.sh): checks the guest is pure cgroup v2
# under systemd, runs the Check integration binaries from the build dir and the transient-scope
# check, and prints one closing line "N passed, N failed".
set -u
src=${BERTH_SRC:-/mnt/berth}
shared=${BERTH_VM_BUILD:-/mnt/build}
# Overlay, pivot_root and xattrs do not all work on 9p: the tests run from a copy of the build
# on the guest's ext4, which run.sh puts into the image (copied here if it did not).
copy=/var/lib/berth-test
# Check's per-test timeout (4 s) assumes native speed; qemu's TCG is several times slower.
export CK_TIMEOUT_MULTIPLIER=${CK_TIMEOUT_MULTIPLIER:-5}
passed=0 failed=0

result() { # NAME OK
  if [ "$2" = 0 ]; then
    echo "PASS $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1"
    failed=$((failed + 1))
  fi
}

# Adds a runner's counts: its "N passed, N failed" line, else Check's summary, else its status.
count() { # NAME STATUS OUTPUT_FILE
  local line p f
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$3" | tail -n 1)
  if [ -n "$line" ]; then
    p=$(cut -d' ' -f1 <<<"$line") f=$(cut -d' ' -f3 <<<"$line")
  else
    line=$(grep -E '^[0-9]+%: Checks: ' "$3" | tail -n 1)
    [ -z "$line" ] && { result "$1" "$2"; return; }
    p=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
    f=$(sed -E 's/.*Failures: ([0-9]+), Errors: ([0-9]+).*/\1 \2/' <<<"$line" |
      awk '{ print $1 + $2 }')
    p=$((p - f))
  fi
  [ "$2" != 0 ] && [ "$f" = 0 ] && f=1
  passed=$((passed + p)) failed=$((failed + f))
  took
  [ "$f" = 0 ] && echo "PASS $1 ($p) in $took" || echo "FAIL $1 ($f of $((p + f))) in $took"
}

# Sets $took to the seconds since the last call: the guest is slow, where the time goes matters.
mark=$(date +%s.%N)
took() {
  local t
  t=$(date +%s.%N)
  took=$(awk -v a="$mark" -v b="$t" 'BEGIN { printf "%.1f s", b - a }')
  mark=$t
}

echo "guest: kernel $(uname -r), $(systemctl --version | head -n 1)"
echo "guest: root cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "guest: root cgroup.subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

# Pure v2: one cgroup2 mount at /sys/fs/cgroup, no v1 hierarchy, systemd as PID 1.
v1=$(awk '$3 == "cgroup" { print $2 }' /proc/mounts)
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] && [ -z "$v1" ] &&
  [ "$(cat /proc/1/comm)" = systemd ]
result "guest_is_pure_cgroup_v2_under_systemd" $?
[ -n "$v1" ] && echo "  v1 hierarchies mounted: $v1"

if [ ! -d "$copy" ]; then
  mkdir -p "$copy"
  for d in bin tests rootfs; do
    if [ -d "$shared/$d" ]; then tar -C "$shared" -cf - "$d" | tar -C "$copy" -xf -; fi
  done
fi
# A library the guest lacks shows up here rather than as a test that cannot start.
missing=$(for f in "$copy"/bin/* "$copy"/tests/*/*; do
  [ -f "$f" ] && [ -x "$f" ] &&
    ldd "$f" 2>/dev/null | awk -v f="${f#"$copy"/}" '/not found/ { print f ": " $1 }'
done)
[ -n "$missing" ] &&
  printf 'missing in the guest (add its package to tests/vm/guest-packages):\n%s\n' "$missing"

took
echo "--- build dir ready in $took"

out=$(mktemp)
# The packaging test first (docs/packaging.md), so that the time to instance ACTIVE is not
# stretched by the integration tests running beside cloud-init.
echo "--- packaging: berth-agent installed by cloud-init from the NoCloud user-data"
bash "$src/tests/vm/package-check.sh" 2>&1 | tee "$out"
count "package-check.sh" "${PIPESTATUS[0]}" "$out"

if [ "${BERTH_VM_ONLY:-}" = package ]; then # a debugging aid: run.sh passes it through
  rm -f "$out"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

# The suites whose behaviour depends on the cgroup version and on systemd; others (images,
# networking, control plane) need peers the guest does not carry and run on the host.
tests=()
for name in test_cgroups test_runtime test_shim; do
  [ -x "$copy/tests/integration/$name" ] && tests+=("$copy/tests/integration/$name")
done
if [ ${#tests[@]} -gt 0 ]; then
  echo "--- integration tests (${#tests[@]} binaries)"
  (cd "$copy" && BUILD=$copy bash "$src/tests/run.sh" "${tests[@]}") 2>&1 | tee "$out"
  count "integration tests" "${PIPESTATUS[0]}" "$out"
else
  echo "--- no integration test binaries in $shared/tests/integration"
fi

# The cgroup layout check (docs/cgroups.md): a compiled one from the build dir and/or the script.
for hook in "$copy/tests/vm/scope-check" "$src/tests/vm/scope-check.sh"; do
  [ -f "$hook" ] || continue
  echo "--- $hook"
  run=("$hook")
  [ "${hook%.sh}" != "$hook" ] && run=(bash "$hook")
  BERTH_BUILD=$copy BERTH_SRC=$src "${run[@]}" 2>&1 | tee "$out"
  count "$(basename "$hook")" "${PIPESTATUS[0]}" "$out"
done
rm -f "$out"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
