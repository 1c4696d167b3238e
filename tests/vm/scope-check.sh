#!/usr/bin/env bash
# Guest check of the cgroup layout in docs/cgroups.md: a task's processes run in a transient
# scope berth-task-<id>.scope in berth.slice with Delegate=yes, outside the agent's service
# cgroup, so stopping or restarting the agent (KillMode=control-group) leaves them running.
# A fake agent stands in for berth-agent: it calls `systemd-run --scope` where the agent makes
# the same request over sd-bus. Prints one line per check and a closing "N passed, N failed".
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
cgroup_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
in_group() { [ "$(cgroup_of "$1")" = "/berth.slice/$scope$2" ]; }
sg=/sys/fs/cgroup/berth.slice/$scope
procs_in_scope() {
  find "$sg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -n | paste -sd' '
}

# The layout docs/cgroups.md builds inside the delegated scope: the first process moves to
# supervisor/, after which the scope holds no process and can enable controllers for task/.
shape_scope() {
  mkdir -p "$sg/supervisor" "$sg/task" &&
    echo "$1" >"$sg/supervisor/cgroup.procs" &&
    echo "+cpu +memory +pids" >"$sg/cgroup.subtree_control"
}
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
cat >"$state/launcher.sh" <<'EOF'
#!/bin/sh
# The fake agent: starts the task in its scope unless the scope already runs (then it adopts
# it), keeps one child of its own in its service cgroup, and idles.
state=/run/berth-fake-agent
if ! systemctl --quiet is-active berth-task-x.scope; then
  systemd-run --quiet --scope --slice=berth.slice --unit=berth-task-x -p Delegate=yes \
    -p CollectMode=inactive-or-failed \
    /bin/sh -c "echo \$\$ >$state/task.tmp && mv $state/task.tmp $state/task.pid &&
      exec sleep infinity" &
fi
sleep infinity &
echo $! >"$state/bare.tmp" && mv "$state/bare.tmp" "$state/bare.pid"
wait
EOF

# 1. The agent starts the task in its own scope.
start_agent
wait_for 60 test -s "$state/task.pid"
wait_for 60 test -s "$state/bare.pid"
task=$(cat "$state/task.pid" 2>/dev/null) bare=$(cat "$state/bare.pid" 2>/dev/null)
task_id=$(ident "$task")
echo "  agent cgroup: $(cgroup_of "$bare"); task pid $task in $(cgroup_of "$task")"
echo "  scope controllers: $(cat "$sg/cgroup.controllers")"
check "task_runs_in_transient_scope_in_berth_slice" in_group "$task" ""
check "agent_child_stays_in_agent_service_cgroup" \
  test "$(cgroup_of "$bare")" = "/system.slice/$agent"
check "scope_is_delegated" test "$(systemctl show -p Delegate --value "$scope")" = yes
check "scope_has_memory_and_pids_controllers" grep -qw 'memory.*pids' "$sg/cgroup.controllers"
shape_scope "$task"
check "delegated_scope_takes_supervisor_and_task_groups" scope_shaped "$task"
# systemd must leave a delegated subtree alone when it reloads its configuration.
systemctl daemon-reload
check "daemon_reload_keeps_delegated_subtree" scope_shaped "$task"

# 2. Restart: systemd kills the agent's whole cgroup, not the scope.
rm -f "$state/bare.pid"
systemctl restart "$agent"
wait_for 60 test -s "$state/bare.pid"
check "restart_kills_agent_cgroup" wait_for 10 gone "$bare"
check "task_survives_agent_restart_with_same_pid" same_process "$task" "$task_id"
bare=$(cat "$state/bare.pid" 2>/dev/null)

# 3. Stop, then an agent started anew adopts the running task instead of starting another.
systemctl stop "$agent"
check "stop_kills_agent_cgroup" wait_for 10 gone "$bare"
check "task_survives_agent_stop_with_same_pid" same_process "$task" "$task_id"
check "scope_stays_active_without_agent" systemctl --quiet is-active "$scope"
rm -f "$state/bare.pid"
start_agent
wait_for 60 test -s "$state/bare.pid"
check "agent_started_anew_adopts_task" test "$(procs_in_scope)" = "$task"
check "task_keeps_its_place_after_agent_cycle" scope_shaped "$task"

# 4. Stopping the scope is what ends the task.
systemctl stop "$scope"
check "stopping_scope_ends_task" wait_for 10 gone "$task"
check "stopped_scope_is_collected" wait_for 10 test ! -d "$sg"

cleanup
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
