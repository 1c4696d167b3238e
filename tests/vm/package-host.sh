#!/usr/bin/env bash
# The host's side of the packaging test (tests/vm/run.sh): a CA and a certificate for
# berth-control, berth-control itself on 127.0.0.1 with TLS, a cluster, the NoCloud seed that
# installs the .deb in the guest, and a poller that records when the guest's instance shows up
# ACTIVE in `aws ecs describe-container-instances`.
#   package-host.sh setup WORK BUILD   makes WORK/seed.iso and WORK/guestfwd (the -nic option)
#   package-host.sh poll WORK RESULTS  runs until killed (run.sh starts it with qemu)
# Everything stays on this machine: berth-control listens on 127.0.0.1 and the guest reaches it
# through qemu's guestfwd as 10.0.2.100:8420.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:?usage} work=${2:?usage}
guest_ip=10.0.2.100 guest_port=8420 cluster=berth-vm

aws_host() {
  AWS_SHARED_CREDENTIALS_FILE=$work/control/credentials AWS_PROFILE=admin \
    AWS_CA_BUNDLE=$work/pki/ca.pem AWS_PAGER='' \
    aws ecs --endpoint-url "https://127.0.0.1:$(cat "$work/control.port")" --region us-east-1 \
    --output json "$@"
}

# A CA made for this run, and berth-control's certificate for both names it is reached by.
make_pki() {
  local p=$work/pki
  mkdir -p "$p"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=berth-vm-test-ca -keyout "$p/ca.key" -out "$p/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=berth-control \
    -keyout "$p/server.key" -out "$p/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$guest_ip" \
    >"$p/ext"
  openssl x509 -req -in "$p/server.csr" -CA "$p/ca.pem" -CAkey "$p/ca.key" -CAcreateserial \
    -days 2 -extfile "$p/ext" -out "$p/server.pem" 2>/dev/null
  chmod 600 "$p/server.key"
}

start_control() {
  local build=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$port" >"$work/control.port"
  mkdir -p "$work/control"
  "$build/bin/berth-control" --data-dir "$work/control" --listen "127.0.0.1:$port" \
    --tls-cert "$work/pki/server.pem" --tls-key "$work/pki/server.key" \
    >"$work/control.log" 2>&1 &
  echo $! >"$work/control.pid"
  for _ in $(seq 100); do
    [ -s "$work/control/credentials" ] && aws_host list-clusters >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "package-host: berth-control did not come up:" >&2
  cat "$work/control.log" >&2
  return 1
}

# The NoCloud seed: the install user-data of packaging/cloud-init, filled in for this run.
make_seed() {
  local build=$1 deb key secret
  deb=$(cd "$build/deb" && ls berth-agent_*.deb | tail -n 1)
  key=$(awk '/^\[agent\]/ { a = 1 } a && $1 == "aws_access_key_id" { print $3; exit }' \
    "$work/control/credentials")
  secret=$(awk '/^\[agent\]/ { a = 1 } a && $1 == "aws_secret_access_key" { print $3; exit }' \
    "$work/control/credentials")
  mkdir -p "$work/seed"
  printf 'instance-id: berth-vm-%s\nlocal-hostname: berth-vm\n' "$$" >"$work/seed/meta-data"
  sed -e "s|^      ECS_CLUSTER=.*|      ECS_CLUSTER=$cluster|" \
    -e "s|^      ECS_BACKEND_HOST=.*|      ECS_BACKEND_HOST=https://$guest_ip:$guest_port|" \
    -e "s|^      AWS_ACCESS_KEY_ID=.*|      AWS_ACCESS_KEY_ID=$key|" \
    -e "s|^      AWS_SECRET_ACCESS_KEY=.*|      AWS_SECRET_ACCESS_KEY=$secret|" \
    -e "s|^      DEB=.*|      DEB=/mnt/build/deb/$deb|" \
    -e "s|^      AWS_DEFAULT_REGION=.*|&\\n      ECS_IMAGE_PULL_BEHAVIOR=prefer-cached|" \
    -e '/^      # EDIT: the PEM certificate/d' \
    "$src/packaging/cloud-init/berth-agent-install.yaml" >"$work/seed/user-data.in"
  # The CA goes in as the ca.pem file's content.
  awk -v ca="$work/pki/ca.pem" '
    { print }
    /^  - path: \/etc\/ecs\/ca.pem/ { want = 1 }
    want && /^    content: \|/ { while ((getline l < ca) > 0) print "      " l; want = 0 }
  ' "$work/seed/user-data.in" >"$work/seed/user-data"
  rm "$work/seed/user-data.in"
  grep -q "ECS_CLUSTER=$cluster" "$work/seed/user-data" &&
    grep -q "^      ECS_IMAGE_PULL_BEHAVIOR=prefer-cached" "$work/seed/user-data" &&
    grep -q "DEB=/mnt/build/deb/$deb" "$work/seed/user-data" &&
    grep -q 'BEGIN CERTIFICATE' "$work/seed/user-data" || {
    echo "package-host: the user-data template changed; could not fill it in" >&2
    return 1
  }
  genisoimage -quiet -output "$work/seed.iso" -volid cidata -joliet -rock \
    "$work/seed/user-data" "$work/seed/meta-data"
}

case $cmd in
setup)
  build=${3:?usage}
  make_pki
  start_control "$build"
  aws_host create-cluster --cluster-name "$cluster" >/dev/null
  make_seed "$build"
  # What run.sh adds to qemu's -nic option: the guest's only way out, to berth-control. The
  # cmd: form runs one netcat per guest connection (a tcp: chardev would be one connection,
  # opened once when qemu starts).
  echo "guestfwd=tcp:$guest_ip:$guest_port-cmd:busybox nc 127.0.0.1 $(cat "$work/control.port")" \
    >"$work/guestfwd"
  ;;
poll)
  # Records the seconds from the poller's start (qemu's start) to the first ACTIVE instance in
  # the results share, where the guest waits for it. Also serves the guest's requests for
  # actions only the host can do (the aws CLI is not in the guest): a file results/request
  # naming one, answered in results/reply-NAME.
  results=${3:?usage}
  t0=$(date +%s.%N)
  while :; do
    if [ ! -s "$results/host-active" ]; then
      arns=$(aws_host list-container-instances --cluster "$cluster" 2>/dev/null |
        jq -r '.containerInstanceArns[]' 2>/dev/null || true)
      if [ -n "$arns" ]; then
        # shellcheck disable=SC2086 # one argument per ARN
        st=$(aws_host describe-container-instances --cluster "$cluster" \
          --container-instances $arns 2>/dev/null |
          jq -r '.containerInstances[] | select(.status == "ACTIVE") | .containerInstanceArn' |
          head -n 1)
        if [ -n "$st" ]; then
          t=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
          printf '%s %s\n' "$t" "$st" >"$results/host-active.tmp"
          mv "$results/host-active.tmp" "$results/host-active"
        fi
      fi
    fi
    if [ -s "$results/request" ]; then
      req=$(cat "$results/request")
      rm -f "$results/request"
      case $req in
      run-task)
        # The task of the guest's task steps: the imported sample image serving 8080 (docs/packaging.md).
        aws_host register-task-definition --family berth-vm-web --network-mode host \
          --container-definitions "$(jq -nc --arg img berth/sample-httpd:latest \
            '[{name: "web", image: $img, essential: true, cpu: 256, memory: 64,
               portMappings: [{containerPort: 8080, hostPort: 8080}]}]')" \
          >"$results/reply-run-task.log" 2>&1 &&
          t1=$(date +%s.%N) &&
          aws_host run-task --cluster "$cluster" --task-definition berth-vm-web \
            >"$results/run-task.json" 2>>"$results/reply-run-task.log" &&
          echo ok >"$results/reply-run-task" || echo failed >"$results/reply-run-task"
        # The figure: RunTask to the task's RUNNING as berth-control reports it (the image was
        # imported just before; the instance has been ACTIVE for a while by then).
        arn=$(jq -r '.tasks[0].taskArn // empty' "$results/run-task.json" 2>/dev/null || true)
        for _ in $(seq 300); do
          [ -n "$arn" ] || break
          if [ "$(aws_host describe-tasks --cluster "$cluster" --tasks "$arn" 2>/dev/null |
            jq -r '.tasks[0].lastStatus')" = RUNNING ]; then
            awk -v a="$t1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' \
              >"$results/task-running"
            break
          fi
          sleep 0.5
        done
        ;;
      check-cluster-web)
        # packaging/cloud-init/ecs-style.yaml names cluster `web`: an instance there, connected.
        ok=failed
        for _ in $(seq 100); do
          arn=$(aws_host list-container-instances --cluster web 2>/dev/null |
            jq -r '.containerInstanceArns[0] // empty' 2>/dev/null || true)
          if [ -n "$arn" ] && [ "$(aws_host describe-container-instances --cluster web \
            --container-instances "$arn" 2>/dev/null |
            jq -r '.containerInstances[0] | "\(.status) \(.agentConnected)"')" = "ACTIVE true" ]; then
            ok=ok
            break
          fi
          sleep 2
        done
        echo $ok >"$results/reply-check-cluster-web"
        ;;
      *) echo "unknown request" >"$results/reply-$req" ;;
      esac
    fi
    sleep 2
  done
  ;;
*) echo "usage: $0 setup WORK BUILD | poll WORK RESULTS" >&2; exit 2 ;;
esac
