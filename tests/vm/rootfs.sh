#!/usr/bin/env bash
# Builds the VM guest's Debian root filesystem (debootstrap minbase + systemd + the packages in
# tests/vm/guest-packages) once, and caches it as a zstd tarball keyed on what went into it.
# usage: rootfs.sh [--key]   prints the tarball's path (or only the cache key) on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BERTH_VM_CACHE:-/var/cache/berth-vm}
suite=bookworm

# The package list as debootstrap wants it: comments dropped, one comma-separated line.
pkgs=$(sed -e 's/#.*//' "$here/guest-packages" | tr -s ' \t\n' '\n' | sed '/^$/d' | sort -u)
# Anything that changes the result changes the key: the suite, the packages, this script.
key=$({ echo "$suite"; echo "$pkgs"; cat "$0"; } | sha256sum | cut -c1-16)
tarball=$cache/rootfs-$suite-$key.tar.zst
if [ "${1:-}" = --key ]; then
  echo "$key"
  exit 0
fi

say() { echo "rootfs: $*" >&2; }

# The same mirror the host's apt uses (deb822 first, then the one-line format).
mirror() {
  local m=${BERTH_VM_MIRROR:-}
  [ -z "$m" ] && [ -r /etc/apt/sources.list.d/debian.sources ] &&
    m=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && / '"$suite"'( |$)/ { print u; exit }' \
      /etc/apt/sources.list.d/debian.sources)
  [ -z "$m" ] && [ -r /etc/apt/sources.list ] &&
    m=$(awk '$1 == "deb" && $3 == "'"$suite"'" { print $2; exit }' /etc/apt/sources.list)
  echo "${m:-http://deb.debian.org/debian}"
}

# Settings that belong to every guest, whatever it runs. Per-run files (fstab, the test unit,
# kernel modules) are added by run.sh after the restore, so editing them costs no rebuild.
configure() {
  local root=$1
  echo berth-vm >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 berth-vm\n::1 localhost\n' >"$root/etc/hosts"
  # A fixed machine id: an empty one would make systemd treat every boot as a first boot.
  tr -d - </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
  chroot "$root" passwd -dq root
  # qemu's user-mode NIC by DHCP, without holding up boot until it is online.
  printf '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n' \
    >"$root/etc/systemd/network/80-qemu-user.network"
  systemctl --root="$root" --quiet enable systemd-networkd.service
  systemctl --root="$root" --quiet mask systemd-networkd-wait-online.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
    systemd-firstboot.service
  # cloud-init: a NoCloud seed only (no probing for cloud metadata servers), the locale the
  # image has (locale-gen is not installed), and networking left to systemd-networkd.
  printf '%s\n' 'datasource_list: [ NoCloud, None ]' 'locale: C.UTF-8' \
    'network: {config: disabled}' >"$root/etc/cloud/cloud.cfg.d/90-berth-vm.cfg"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

build() {
  work=$cache/build.$$ # global: the EXIT trap still needs it
  rm -rf "$cache"/build.* # left by a killed build; the lock says none is running
  mkdir -p "$work" "$cache/debs"
  trap 'rm -rf "$work"' EXIT
  local m; m=$(mirror)
  say "debootstrap $suite from $m ($(echo "$pkgs" | wc -l) packages)"
  # A second try rides out a dropped download; what the first one fetched is in the deb cache.
  local try
  for try in 1 2; do
    rm -rf "$work/root"
    debootstrap --variant=minbase --include="$(paste -sd, <<<"$pkgs")" \
      --cache-dir="$cache/debs" "$suite" "$work/root" "$m" >"$work/debootstrap.log" 2>&1 && break
    tail -n 30 "$work/debootstrap.log" >&2
    [ -r "$work/root/debootstrap/debootstrap.log" ] &&
      tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
    say "debootstrap failed (try $try of 2)"
    [ "$try" = 2 ] && return 1
  done
  configure "$work/root"
  tar -C "$work/root" --numeric-owner --xattrs --xattrs-include='*' -cf - . |
    zstd -q -T2 -3 -o "$work/rootfs.tar.zst"
  mv "$work/rootfs.tar.zst" "$tarball"
  # Only the current key is worth keeping; the deb cache stays for the next rebuild.
  find "$cache" -maxdepth 1 -name 'rootfs-*.tar.zst' ! -path "$tarball" -delete
  say "cached $(du -h "$tarball" | cut -f1) as $tarball"
}

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # a parallel run waits here, then finds the tarball built
if [ ! -s "$tarball" ]; then build; fi # not `|| build`: that would switch off set -e inside
echo "$tarball"
