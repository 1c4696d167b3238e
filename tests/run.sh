#!/usr/bin/env bash
# Runs Check test binaries one after another and prints one closing line over all of them:
# "N passed, N failed". Each binary is itself a Check suite (CK_FORK so a crash fails one test).
set -u
: "${BUILD:=build}"
export BUILD
export BERTH_BUILD="$(cd "$BUILD" && pwd)"
export BERTH_SRC="$(cd "$(dirname "$0")/.." && pwd)"
passed=0 failed=0 bad=()
for t in "$@"; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -E '^[^:]+:[0-9]+:[EF]:|^[0-9]+%: ' | sed "s|^|  $(basename "$t"): |"
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ' | tail -n 1)
  checks=$(sed -E 's/.*Checks: ([0-9]+).*/\1/' <<<"$line")
  fails=$(sed -E 's/.*Failures: ([0-9]+).*/\1/' <<<"$line")
  errs=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /'
    failed=$((failed + 1)); bad+=("$t (no Check summary, exit $rc)")
    continue
  fi
  passed=$((passed + checks - fails - errs)); failed=$((failed + fails + errs))
  if [ "$rc" -ne 0 ] || [ $((fails + errs)) -ne 0 ]; then
    bad+=("$t")
    printf '%s\n' "$out" | grep -vE '^[0-9]+%: ' | tail -n 40 | sed 's/^/    /'
  fi
done
[ ${#bad[@]} -gt 0 ] && printf 'failing: %s\n' "${bad[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
