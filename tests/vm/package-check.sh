#!/usr/bin/env bash
# Runs in the VM guest (from guest-tests.sh): the packaging checks. cloud-init, given only the
# NoCloud user-data that package-host.sh made from packaging/cloud-init/berth-agent-install.yaml,
# installed berth-agent from the .deb; the agent must register with berth-control on the host
# (the host sees the instance ACTIVE), and the unit, upgrade and removal must behave as
# docs/packaging.md says; a task runs from an imported image and survives the agent's restart,
# kill -9 and the package's upgrade.
# Prints PASS/FAIL/SKIP lines and "N passed, N failed".
set -u
results=${BERTH_RESULTS:-/mnt/results}
debs=${BERTH_DEBS:-/mnt/build/deb}
passed=0 failed=0
result() { # NAME STATUS [why]
  if [ "$2" = 0 ]; then
    echo "PASS $1"
    passed=$((passed + 1))
  else
    echo "FAIL $1${3:+: $3}"
    failed=$((failed + 1))
  fi
}
skip() { echo "SKIP $1: $2"; }
wait_for() { # SECONDS CMD...: polls every half second
  local until=$(($(date +%s) + $1))
  shift
  until "$@"; do
    [ "$(date +%s)" -ge "$until" ] && return 1
    sleep 0.5
  done
}
mainpid() { systemctl show -p MainPID --value berth-agent; }
active() { [ "$(systemctl is-active berth-agent)" = active ]; }

if [ ! -b /dev/vdb ] && ! grep -qs cidata /proc/cmdline; then
  skip package_checks "no NoCloud seed attached (run.sh without a $debs)"
  echo "0 passed, 0 failed"
  exit 0
fi

# 1. cloud-init ran the user-data: the package is installed and the agent runs.
wait_for 600 test -e /run/cloud-init/result.json
cloud-init status --wait >/dev/null 2>&1
st=$(cloud-init status 2>&1)
[ "$st" = "status: done" ]
result cloud_init_installs_the_package_from_nocloud_user_data $? "$st"
[ "$st" = "status: done" ] || { cloud-init status --long; tail -n 30 /var/log/cloud-init-output.log; }
ver=$(dpkg-query -W -f '${Version}' berth-agent 2>/dev/null)
[ -n "$ver" ] && berth-agent --version | grep -q "berth-agent ${ver%-*}"
result package_version_matches_berth_agent_version $? "package $ver, $(berth-agent --version)"
if [ -z "$ver" ]; then
  # Every check below needs the package: say so once rather than wait out each of them.
  echo "  berth-agent is not installed; the remaining package checks cannot run"
  echo "$passed passed, $failed failed"
  exit 1
fi
echo "  berth-agent $ver, installed size $(dpkg-query -W -f '${Installed-Size}' berth-agent) KiB"

wait_for 60 active
result agent_unit_active_after_install $? "$(systemctl is-active berth-agent)"
systemd-analyze verify /lib/systemd/system/berth-agent.service 2>&1 | tee /tmp/verify.out
[ ! -s /tmp/verify.out ]
result agent_unit_passes_systemd_analyze_verify $?

# 2. The host saw the instance ACTIVE (package-host.sh's poller writes the file).
wait_for 180 test -s "$results/host-active"
ok=$?
result instance_active_in_describe_container_instances_on_host $ok \
  "$(journalctl -u berth-agent --no-pager -n 20 2>&1)"
[ $ok = 0 ] && echo "  host saw ACTIVE $(cut -d' ' -f1 "$results/host-active") s after qemu started: $(cut -d' ' -f2 "$results/host-active")"

# 3. berth-control's package and its sandbox: the server starts as a dynamic user.
dpkg -i "$debs"/berth-control_*.deb >/tmp/control-install.log 2>&1
wait_for 30 sh -c '[ "$(systemctl is-active berth-control)" = active ]'
result berth_control_package_runs_sandboxed $? "$(cat /tmp/control-install.log; journalctl -u berth-control --no-pager -n 10)"
berth-control --version | grep -qx "berth-control ${ver%-*}"
result berth_control_version_matches_the_package $? "$(berth-control --version)"
systemd-analyze verify /lib/systemd/system/berth-control.service 2>&1 | tee /tmp/verify.out
[ ! -s /tmp/verify.out ]
result control_unit_passes_systemd_analyze_verify $?
echo "  $(systemd-analyze security berth-control 2>/dev/null | tail -n 1)"
echo "  $(systemd-analyze security berth-agent 2>/dev/null | tail -n 1)"

# 4. The unit: restart, kill -9 (Restart=on-failure), exit 5 not restarted.
old=$(mainpid)
systemctl restart berth-agent && wait_for 30 active && [ "$(mainpid)" != "$old" ]
result systemctl_restart_runs_a_new_agent $?
old=$(mainpid)
kill -9 "$old"
wait_for 30 sh -c '[ "$(systemctl show -p MainPID --value berth-agent)" != "'"$old"'" ] && [ "$(systemctl is-active berth-agent)" = active ]'
result agent_killed_with_sigkill_is_restarted $?
mkdir -p /run/systemd/system/berth-agent.service.d
printf '[Service]\nEnvironment=ECS_LOGLEVEL=nonsense\n' >/run/systemd/system/berth-agent.service.d/bad.conf
systemctl daemon-reload
systemctl restart berth-agent 2>/dev/null # fails: that is the point
sleep 8 # longer than RestartSec: a restart would have happened
[ "$(systemctl show -p ExecMainStatus --value berth-agent)" = 5 ] &&
  [ "$(systemctl is-active berth-agent)" != active ] &&
  [ "$(systemctl show -p NRestarts --value berth-agent)" = 0 ]
result invalid_config_exits_5_and_is_not_restarted $? \
  "$(systemctl show -p ExecMainStatus -p NRestarts -p ActiveState berth-agent | tr '\n' ' ')"
rm -r /run/systemd/system/berth-agent.service.d
systemctl daemon-reload
systemctl reset-failed berth-agent
systemctl start berth-agent
wait_for 30 active
result agent_starts_again_with_the_valid_config $?

# 5. Tasks: the sample image (tests/fixtures/mksample.sh, busybox httpd on 8080) is imported
# from the build share, as an operator without a registry would, and the host runs a task.
tasks=1
task_pid() { # the pid of the process serving 8080 in the task
  ss -Htlnp 'sport = :8080' 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}
if [ $tasks = 1 ]; then
  berth-agent --import "${BERTH_VM_BUILD:-/mnt/build}/sample/sample-httpd.tar" >/tmp/import.log 2>&1
  result sample_image_imports_into_the_agent_store $? "$(cat /tmp/import.log)"
  echo run-task >"$results/request"
  wait_for 60 test -s "$results/reply-run-task" && [ "$(cat "$results/reply-run-task")" = ok ]
  result host_runs_a_task_on_this_instance $? "$(cat "$results/reply-run-task.log" 2>/dev/null)"
  wait_for 180 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null
  ok=$?
  result task_runs_and_serves_a_port $ok
  wait_for 30 test -s "$results/task-running" &&
    echo "  RunTask to RUNNING in berth-control: $(cat "$results/task-running") s"
  [ $ok = 0 ] || { journalctl -u berth-agent --no-pager -n 40; ls -R /run/berth | head -n 40; }
  pid=$(task_pid)
  start=$(awk '{ print $22 }' "/proc/$pid/stat" 2>/dev/null)
  same() { [ -n "$pid" ] && [ "$(awk '{ print $22 }' "/proc/$pid/stat" 2>/dev/null)" = "$start" ]; }
  systemctl restart berth-agent && wait_for 30 active && same
  result task_survives_systemctl_restart_berth_agent $?
  old=$(mainpid)
  kill -9 "$old" && wait_for 30 sh -c '[ "$(systemctl show -p MainPID --value berth-agent)" != "'"$old"'" ]' && same
  result task_survives_sigkill_of_the_agent $?
  cg=/sys/fs/cgroup$(cut -d: -f3 "/proc/$pid/cgroup")
  task_cg=${cg%/*} # .../berth-task-X.scope/task/<container>: the task level is one up
  echo "  task pid $pid in $cg: memory.max $(cat "$cg/memory.max" 2>/dev/null)," \
    "cpu.weight $(cat "$cg/cpu.weight" 2>/dev/null), task memory.max $(cat "$task_cg/memory.max" 2>/dev/null)"
  case $cg in */berth.slice/berth-task-*.scope/task/*) true ;; *) false ;; esac &&
    [ "$(cat "$cg/memory.max")" = $((64 * 1024 * 1024)) ] && [ -r "$cg/cpu.weight" ]
  result task_cgroup_has_cpu_and_memory_limits $?
fi

# What an image would carry for step 7 (purge removes /etc/ecs).
cp /etc/ecs/ecs.config /tmp/image-ecs.config
cp /etc/ecs/ca.pem /tmp/image-ca.pem

# 6. Upgrade in place (the same version reinstalled takes the upgrade path: prerm upgrade,
# postinst configure with the old version), then removal and purge.
old=$(mainpid)
dpkg -i "$debs"/berth-agent_*.deb >/tmp/upgrade.log 2>&1 && wait_for 30 active &&
  [ "$(mainpid)" != "$old" ] && grep -q '^ECS_CLUSTER=berth-vm' /etc/ecs/ecs.config
result upgrade_restarts_the_agent_and_keeps_ecs_config $? "$(cat /tmp/upgrade.log)"
if [ $tasks = 1 ]; then
  same
  result task_survives_package_upgrade $?
fi
dpkg -r berth-agent >/tmp/remove.log 2>&1 && [ "$(systemctl is-active berth-agent)" != active ] &&
  [ -f /etc/ecs/ecs.config ] && [ -d /var/lib/ecs/data ] && [ ! -e /usr/bin/berth-agent ]
result remove_stops_the_agent_and_keeps_config_and_state $? "$(cat /tmp/remove.log)"
if [ $tasks = 1 ]; then
  same
  result task_survives_package_removal $?
fi
# With the task still running, purge keeps only what its overlay uses and says so.
dpkg -P berth-agent >/tmp/purge.log 2>&1 && [ ! -e /etc/ecs ] && [ ! -e /var/lib/ecs ] &&
  { [ ! -e /var/lib/berth ] || { [ "$(ls /var/lib/berth)" = images ] &&
    grep -q 'containers are still running' /tmp/purge.log; }; }
result purge_removes_etc_ecs_and_the_state $? "$(cat /tmp/purge.log)"
if [ $tasks = 1 ]; then
  same
  result task_survives_package_purge $?
fi
dpkg -P berth-control >/tmp/purge.log 2>&1 && [ ! -e /var/lib/private/berth-control ] &&
  [ ! -e /var/lib/berth-control ]
result purge_of_berth_control_removes_its_store $? "$(cat /tmp/purge.log)"

# 7. The ECS way (packaging/cloud-init/ecs-style.yaml, unchanged): an image with the package
# installed and the control plane's settings in /etc/ecs/ecs.config, and user-data that only
# names the cluster. cloud-init's own write_files module applies it (tests/vm/write-files.py:
# bookworm's cloud-init has no `single --file`).
dpkg -i "$debs"/berth-agent_*.deb >/tmp/reinstall.log 2>&1
systemctl stop berth-agent
grep -v '^ECS_CLUSTER=' /tmp/image-ecs.config >/etc/ecs/ecs.config
cp /tmp/image-ca.pem /etc/ecs/ca.pem
python3 "${BERTH_SRC:-/mnt/berth}/tests/vm/write-files.py" \
  "${BERTH_SRC:-/mnt/berth}/packaging/cloud-init/ecs-style.yaml" >/tmp/ecs-style.log 2>&1
[ "$(grep '^ECS_CLUSTER=' /etc/ecs/ecs.config)" = ECS_CLUSTER=web ] &&
  systemctl start berth-agent && echo check-cluster-web >"$results/request" &&
  wait_for 240 test -s "$results/reply-check-cluster-web" &&
  [ "$(cat "$results/reply-check-cluster-web")" = ok ]
result ecs_style_user_data_joins_its_cluster_unchanged $? \
  "$(cat /tmp/reinstall.log /tmp/ecs-style.log; grep -c . /etc/ecs/ecs.config; journalctl -u berth-agent --no-pager -n 15)"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
