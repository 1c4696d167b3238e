#!/usr/bin/env bash
# Guest check of the cgroup layout in docs/cgroups.md: a task's processes run in a transient
# scope berth-task-<id>.scope in berth.slice with Delegate=yes, outside the agent's service
# cgroup, so stopping or restarting the agent (KillMode=control-group) leaves them running.
# A fake agent stands in for berth-agent: it runs tests/vm/task-launch, which does what the agent
# does (Berth's sd-bus scope request, supervisor/ and task/ groups, the real berth-shim and
# berth-runtime). Prints one line per check and a closing "N passed, N failed".
set -u
agent=berth-fake-agent.service
scope=berth-task-x.scope
state=/run/berth-fake-agent
passed=0 failed=0

check() { # NAME COMMAND...
  local name=$1
  shift
  if "$@"; then
    echo "ok   $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

wait_for() { # SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# A process's identity: its start time, so a reused PID does not pass for the same process.
ident() {
  local st
  st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  st=${st##*) } # fields after the command name, which may hold spaces
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $st
  [ "$1" != Z ] && echo "$1:${20}"
}
gone() { ! ident "$1" >/dev/null; }
same_process() { [ "$(ident "$1")" = "$2" ]; }
cgroup_of() { sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null; }
build=${BERTH_BUILD:?BERTH_BUILD must name the build copy}
in_group() { [ "$(cgroup_of "$1")" = "/berth.slice/$scope$2" ]; }
sg=/sys/fs/cgroup/berth.slice/$scope
procs_in_scope() {
  find "$sg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -n | paste -sd' '
}

# The layout docs/cgroups.md builds inside the delegated scope (task-launch does it as the
# agent will): the shim in supervisor/, controllers enabled for task/.
scope_shaped() {
  in_group "$1" /supervisor && grep -qw memory "$sg/task/cgroup.controllers" &&
    grep -qw cpu "$sg/task/cgroup.controllers"
}

cleanup() {
  systemctl stop "$agent" "$scope" 2>/dev/null
  systemctl reset-failed "$agent" "$scope" 2>/dev/null
  rm -rf "$state"
}

start_agent() {
  systemd-run --quiet --unit="$agent" -p KillMode=control-group /bin/sh "$state/launcher.sh"
}

cleanup
mkdir -p "$state"
cat >"$state/launcher.sh" <<EOF
#!/bin/sh
# The fake agent: starts the task (container web under berth-shim) in its scope unless the scope
# already runs (then it adopts it), keeps one child of its own in its service cgroup, and idles.
state=$state
if ! systemctl --quiet is-active berth-task-x.scope; then
  $build/tests/vm/task-launch x web $build \$state/task >\$state/launch.log 2>&1
  sed -n 's/.*"pid":\([0-9]*\).*/\1/p' \$state/task/shim/state.json >\$state/task.tmp &&
    mv \$state/task.tmp \$state/task.pid
  cat \$state/task/shim/shim.pid >\$state/shim.tmp && mv \$state/shim.tmp \$state/shim.pid
fi
sleep infinity &
echo \$! >"\$state/bare.tmp" && mv "\$state/bare.tmp" "\$state/bare.pid"
wait
EOF

# 1. The agent starts the task in its own scope.
start_agent
wait_for 60 test -s "$state/task.pid"
wait_for 60 test -s "$state/bare.pid"
task=$(cat "$state/task.pid" 2>/dev/null) bare=$(cat "$state/bare.pid" 2>/dev/null)
shim=$(cat "$state/shim.pid" 2>/dev/null)
task_id=$(ident "$task") shim_id=$(ident "$shim")
sed 's/^/  launch: /' "$state/launch.log" 2>/dev/null
echo "  agent cgroup: $(cgroup_of "$bare"); container pid $task in $(cgroup_of "$task");" \
  "shim pid $shim in $(cgroup_of "$shim")"
echo "  scope controllers: $(cat "$sg/cgroup.controllers")"
check "container_runs_in_task_group_of_transient_scope" in_group "$task" /task/web
check "shim_runs_in_supervisor_group_of_the_scope" in_group "$shim" /supervisor
check "agent_child_stays_in_agent_service_cgroup" \
  test "$(cgroup_of "$bare")" = "/system.slice/$agent"
check "scope_is_delegated" test "$(systemctl show -p Delegate --value "$scope")" = yes
check "scope_has_memory_and_pids_controllers" grep -qw 'memory.*pids' "$sg/cgroup.controllers"
check "container_memory_limit_in_memory_max" test "$(cat "$sg/task/web/memory.max")" = 67108864
check "container_pids_limit_in_pids_max" test "$(cat "$sg/task/web/pids.max")" = 100
check "container_cpu_shares_as_cpu_weight" test "$(cat "$sg/task/web/cpu.weight")" != 100
check "task_memory_limit_in_memory_max" test "$(cat "$sg/task/memory.max")" = 268435456
check "task_cpu_limit_in_cpu_max" test "$(cat "$sg/task/cpu.max")" = "50000 100000"
check "delegated_scope_takes_supervisor_and_task_groups" scope_shaped "$shim"
# systemd must leave a delegated subtree alone when it reloads its configuration.
systemctl daemon-reload
check "daemon_reload_keeps_delegated_subtree" scope_shaped "$shim"

# 2. Restart: systemd kills the agent's whole cgroup, not the scope.
rm -f "$state/bare.pid"
systemctl restart "$agent"
wait_for 60 test -s "$state/bare.pid"
check "restart_kills_agent_cgroup" wait_for 10 gone "$bare"
check "task_survives_agent_restart_with_same_pid" same_process "$task" "$task_id"
check "shim_survives_agent_restart" same_process "$shim" "$shim_id"
bare=$(cat "$state/bare.pid" 2>/dev/null)

# 3. Stop, then an agent started anew adopts the running task instead of starting another.
systemctl stop "$agent"
check "stop_kills_agent_cgroup" wait_for 10 gone "$bare"
check "task_survives_agent_stop_with_same_pid" same_process "$task" "$task_id"
check "shim_survives_agent_stop" same_process "$shim" "$shim_id"
check "scope_stays_active_without_agent" systemctl --quiet is-active "$scope"
rm -f "$state/bare.pid"
start_agent
wait_for 60 test -s "$state/bare.pid"
check "agent_started_anew_adopts_task" \
  test "$(procs_in_scope)" = "$(printf '%s\n' "$shim" "$task" | sort -n | paste -sd' ')"
check "task_keeps_its_place_after_agent_cycle" scope_shaped "$shim"

# 4. Stopping the scope is what ends the task.
systemctl stop "$scope"
check "stopping_scope_ends_task" wait_for 10 gone "$task"
check "stopping_scope_ends_shim" wait_for 10 gone "$shim"
check "stopped_scope_is_collected" wait_for 10 test ! -d "$sg"

cleanup
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
