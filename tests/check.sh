#!/usr/bin/env bash
# Everything `make check` runs, in order: the plain build's unit and integration tests, the same
# tests built with ASan+UBSan, bounded fuzzing of every parser, and the pure cgroup v2 VM test.
# Prints one closing line "N passed, N failed" over all stages.
set -u
build=${1:-build}
cd "$(dirname "$0")/.."
total_pass=0 total_fail=0 failed_stages=()

stage() {
  local name=$1; shift
  echo "=== $name"
  local log; log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  rm -f "$log"
  if [ -n "$line" ]; then
    total_pass=$((total_pass + $(cut -d' ' -f1 <<<"$line")))
    total_fail=$((total_fail + $(cut -d' ' -f3 <<<"$line")))
  fi
  if [ "$rc" -ne 0 ]; then
    failed_stages+=("$name")
    [ -z "$line" ] && total_fail=$((total_fail + 1))
  fi
}

stage "unit + integration" make --no-print-directory BUILD="$build" test
stage "unit + integration under ASan+UBSan" make --no-print-directory BUILD="$build" asan
stage "fuzz" make --no-print-directory BUILD="$build" fuzz
if [ "${BERTH_SKIP_VM:-0}" = 1 ]; then
  echo "=== vm: skipped (BERTH_SKIP_VM=1)"
else
  stage "pure cgroup v2 VM" make --no-print-directory BUILD="$build" vm-check
fi

[ ${#failed_stages[@]} -gt 0 ] && printf 'failed stage: %s\n' "${failed_stages[@]}"
echo "$total_pass passed, $total_fail failed"
[ ${#failed_stages[@]} -eq 0 ]
