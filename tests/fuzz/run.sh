#!/usr/bin/env bash
# Runs each fuzz target for FUZZ_SECONDS over its seed corpus (tests/fuzz/corpus/<name>/) and
# a scratch corpus; a crash fails the stage and its input is kept under tests/fuzz/crashes/.
set -u
: "${FUZZ_SECONDS:=20}"
# Leaks inside third-party libraries that Berth cannot free are listed, with reasons, here.
export LSAN_OPTIONS="suppressions=$(dirname "$0")/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
passed=0 failed=0
for t in "$@"; do
  name=$(basename "$t")
  seeds="tests/fuzz/corpus/$name"
  work=$(mktemp -d)
  mkdir -p tests/fuzz/crashes
  if "$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="tests/fuzz/crashes/$name-" "$work" $( [ -d "$seeds" ] && echo "$seeds" ) \
      >"$work.log" 2>&1; then
    echo "  $name: $(grep -Eo 'Done [0-9]+ runs' "$work.log" | tail -n1)"
    passed=$((passed + 1))
  else
    echo "  $name: FAILED"; tail -n 40 "$work.log" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
  rm -rf "$work" "$work.log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
