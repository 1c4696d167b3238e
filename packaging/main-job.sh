#!/usr/bin/env bash
# Berth's main job on the embedded default: berth-control (no arguments: its default data
# directory, loopback listener and generated credentials) and berth-agent (default configuration)
# on this host, a task definition registered with the real aws CLI, and a sample web task
# (busybox httpd from an imported image, bridge mode, a dynamic host port) run and checked.
# `main-job.sh BUILD` starts it (again); `main-job.sh BUILD stop` stops the task and the daemons.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
action=${2:-start}
bin=$build/bin
run=/run/berth-main-job
cp_data=/var/lib/berth-control
endpoint=http://127.0.0.1:8420
export AWS_SHARED_CREDENTIALS_FILE=$cp_data/credentials AWS_DEFAULT_REGION=us-east-1
export AWS_PAGER="" AWS_PROFILE=admin
ecs() { aws ecs --endpoint-url "$endpoint" --output json "$@"; }
mkdir -p "$run"

alive() { [ -s "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

# SIGTERM: each daemon saves and exits; the containers keep running under their shims.
stop_daemon() {
  alive "$1" || return 0
  local pid
  pid=$(cat "$run/$1.pid")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$run/$1.pid"
}

start_daemon() { # NAME COMMAND...
  local name=$1
  shift
  setsid "$@" >>"$run/$name.log" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
}

stop_sample_tasks() {
  local t
  for t in $(ecs list-tasks --cluster default --started-by berth-main-job \
    --query 'taskArns[]' --output text 2>/dev/null | tr '\t' ' '); do
    [ "$t" = None ] || ecs stop-task --cluster default --task "$t" --reason "main job restarted" >/dev/null
  done
}

wait_for() { # WHAT TRIES COMMAND...
  local what=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "main job: $what did not happen; logs in $run/" >&2
  tail -n 20 "$run"/*.log >&2 || true
  exit 1
}

if [ "$action" = stop ]; then
  alive berth-control && stop_sample_tasks && sleep 2
  stop_daemon berth-agent
  stop_daemon berth-control
  echo "stopped (logs in $run/)"
  exit 0
fi

echo "== berth-control on $endpoint (data in $cp_data)"
stop_daemon berth-agent
stop_daemon berth-control
start_daemon berth-control "$bin/berth-control"
wait_for "berth-control answering" 150 ecs list-clusters

echo "== the sample image, imported into the agent's image store"
[ -s "$build/sample/sample-httpd.tar" ] ||
  "$(dirname "$0")/../tests/fixtures/mksample.sh" "$build/sample" >/dev/null
"$bin/berth-agent" --import "$build/sample/sample-httpd.tar"

echo "== berth-agent (default configuration, the control plane's agent credentials)"
# prefer-cached: the imported image is used as is, no registry is asked.
start_daemon berth-agent env AWS_PROFILE=agent ECS_IMAGE_PULL_BEHAVIOR=prefer-cached \
  "$bin/berth-agent"
connected() {
  [ "$(ecs describe-container-instances --cluster default \
    --container-instances "$(ecs list-container-instances --cluster default \
      --query 'containerInstanceArns[0]' --output text)" \
    --query 'containerInstances[0].agentConnected' --output text)" = True ]
}
wait_for "the agent registering and connecting" 300 connected
ecs describe-container-instances --cluster default \
  --container-instances "$(ecs list-container-instances --cluster default \
    --query 'containerInstanceArns[0]' --output text)" \
  --query 'containerInstances[0].{instance:containerInstanceArn,status:status,connected:agentConnected,cpu:registeredResources[?name==`CPU`].integerValue|[0],memoryMiB:registeredResources[?name==`MEMORY`].integerValue|[0]}'
stop_sample_tasks

echo "== task definition berth-sample (bridge mode, container port 8080 on a dynamic host port)"
ecs register-task-definition --family berth-sample --network-mode bridge \
  --container-definitions '[{"name":"web","image":"berth/sample-httpd:latest","essential":true,
    "cpu":128,"memory":64,"portMappings":[{"containerPort":8080,"hostPort":0,"protocol":"tcp"}]}]' \
  --query 'taskDefinition.taskDefinitionArn' --output text

echo "== run-task"
task=$(ecs run-task --cluster default --task-definition berth-sample --started-by berth-main-job \
  --query 'tasks[0].taskArn' --output text)
echo "$task"
ecs wait tasks-running --cluster default --tasks "$task"
ecs describe-tasks --cluster default --tasks "$task" \
  --query 'tasks[0].{lastStatus:lastStatus,desiredStatus:desiredStatus,networkBindings:containers[0].networkBindings}'
port=$(ecs describe-tasks --cluster default --tasks "$task" \
  --query 'tasks[0].containers[0].networkBindings[0].hostPort' --output text)
# Published ports answer on the host's own addresses (not 127.0.0.1: docs/networking.md).
addr=$(ip -4 -o addr show scope global | awk '{sub("/.*", "", $4); print $4; exit}')
echo "== GET http://$addr:$port/"
wait_for "the sample answering" 100 curl -fsS "http://$addr:$port/"
curl -fsS "http://$addr:$port/"
cat <<MSG

The sample task is RUNNING. Reach it at http://$addr:$port/ (from this host or others).
  aws ecs --endpoint-url $endpoint describe-tasks --cluster default --tasks $task
  (with AWS_SHARED_CREDENTIALS_FILE=$cp_data/credentials AWS_PROFILE=admin)
Logs: $run/berth-control.log, $run/berth-agent.log. Stop everything: make stop
MSG
