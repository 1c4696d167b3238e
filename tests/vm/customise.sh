#!/usr/bin/env bash
# Adds the per-run files to a restored guest rootfs: the host kernel's modules, the build's
# binaries and tests, the 9p shares, and the unit that runs the job from the results
# share and powers the guest off.
# usage: customise.sh ROOT KERNEL_VERSION BUILD_DIR tests|cmd|console
set -euo pipefail
root=${1:?usage: customise.sh ROOT KVER BUILD MODE} kver=${2:?} build=${3:?} mode=${4:?}

# Modules: the filesystems, networking, crypto and virtio parts of the host kernel's tree; the
# hardware drivers a virtio guest never sees would triple its size (cdrom: isofs needs it for the
# NoCloud seed). depmod indexes the subset.
from=/lib/modules/$kver to=$root/lib/modules/$kver
mkdir -p "$to"
(cd "$from" && tar -cf - --exclude=kernel/net/{wireless,mac80211,bluetooth} \
  --exclude=kernel/arch/x86/kvm modules.order modules.builtin modules.builtin.modinfo \
  kernel/{arch,block,crypto,fs,lib,mm,net,virt} kernel/drivers/{virtio,block,char,cdrom} \
  kernel/drivers/net/{ipvlan,wireguard} kernel/drivers/net/*.ko) | tar -C "$to" -xf -
depmod -b "$root" "$kver"

# The build's bin/, tests/ and rootfs/ go onto the guest's ext4: overlay, pivot_root and xattrs
# do not all work on 9p, and copying hundreds of files over 9p under TCG takes many seconds.
mkdir -p "$root/var/lib/berth-test"
for d in bin tests rootfs; do
  if [ -d "$build/$d" ]; then cp -a "$build/$d" "$root/var/lib/berth-test/"; fi
done

mkdir -p "$root"/mnt/{berth,build,results}
cat >"$root/etc/fstab" <<EOF
/dev/vda      /            ext4 rw,noatime 0 1
EOF

# The 9p shares are mounted by a unit of their own rather than by fstab: a mount that fails
# at boot is retried (a CI run once came up without /mnt/build and so without the .deb), and
# cloud-final.service, whose user-data installs the .deb from /mnt/build, waits for them. If a
# share still cannot be mounted, the guest says why on the console and powers off, so run.sh
# fails at once instead of waiting out its timeout.
cat >"$root/usr/local/sbin/berth-vm-shares" <<'EOF'
#!/bin/bash
# Mounts the host's 9p shares (tests/vm/run.sh's -virtfs tags), retrying each for 60 s.
modprobe -a 9p 9pnet_virtio 2>/dev/null
opts=trans=virtio,version=9p2000.L,msize=262144
for share in berthsrc:/mnt/berth:ro berthbuild:/mnt/build:ro berthresults:/mnt/results:rw; do
  IFS=: read -r tag dir mode <<<"$share"
  for try in $(seq 120); do
    mountpoint -q "$dir" && break
    mount -t 9p -o "$opts,$mode" "$tag" "$dir" 2>/run/berth-vm-mount.err && break
    [ "$try" = 1 ] && echo "berth-vm: mounting $tag on $dir failed, retrying: $(cat /run/berth-vm-mount.err)"
    sleep 0.5
  done
  if ! mountpoint -q "$dir"; then
    echo "berth-vm: could not mount the $tag share on $dir: $(cat /run/berth-vm-mount.err)"
    dmesg | grep -i 9p | tail -n 5
    exit 1
  fi
done
EOF
chmod 755 "$root/usr/local/sbin/berth-vm-shares"

cat >"$root/etc/systemd/system/berth-vm-shares.service" <<'EOF'
[Unit]
Description=Berth VM: the host's 9p shares (tests/vm/run.sh)
After=local-fs.target systemd-modules-load.service
Before=cloud-final.service berth-vm-job.service
FailureAction=poweroff-force

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/berth-vm-shares
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
EOF
systemctl --root="$root" --quiet enable berth-vm-shares.service
mkdir -p "$root/etc/systemd/system/cloud-final.service.d"
printf '%s\n' '[Unit]' 'Requires=berth-vm-shares.service' 'After=berth-vm-shares.service' \
  >"$root/etc/systemd/system/cloud-final.service.d/berth-vm-shares.conf"

# The job: run.sh writes job.sh to the results share; its output and exit code go back there
# (and to the serial console, so a hang still shows how far it got).
cat >"$root/usr/local/sbin/berth-vm-job" <<'EOF'
#!/bin/bash
# Runs the job that tests/vm/run.sh left on the results share and records how it went.
r=/mnt/results
read -r up _ </proc/uptime
echo "job_start $up" >"$r/times"
bash "$r/job.sh" </dev/null 2>&1 | tee "$r/output" >/dev/ttyS0
rc=${PIPESTATUS[0]}
read -r up _ </proc/uptime
echo "job_end $up" >>"$r/times"
echo "$rc" >"$r/rc"
EOF
chmod 755 "$root/usr/local/sbin/berth-vm-job"

cat >"$root/etc/systemd/system/berth-vm-job.service" <<'EOF'
[Unit]
Description=Berth VM job from the host (tests/vm/run.sh)
Requires=berth-vm-shares.service
Wants=dbus.service
After=dbus.service systemd-networkd.service berth-vm-shares.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
# Not oneshot: a oneshot unit wanted by multi-user.target holds the target back until it ends,
# and cloud-final.service (which runs the packaging test's user-data) waits for that target.
Type=exec
ExecStart=/usr/local/sbin/berth-vm-job
# Tests may build their own cgroup subtrees below this service's cgroup.
Delegate=yes

[Install]
WantedBy=multi-user.target
EOF
if [ "$mode" = console ]; then
  # No job: root logs in on the serial console without a password.
  getty=$root/etc/systemd/system/serial-getty@ttyS0.service.d
  mkdir -p "$getty"
  printf '%s\n' '[Service]' 'ExecStart=' \
    'ExecStart=-/sbin/agetty --autologin root --keep-baud 115200 %I $TERM' >"$getty/autologin.conf"
else
  systemctl --root="$root" --quiet enable berth-vm-job.service
  # A login prompt would only interleave with the job's output on the serial console.
  systemctl --root="$root" --quiet mask serial-getty@ttyS0.service
fi
