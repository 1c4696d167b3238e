#!/usr/bin/env bash
# Installs every Debian package Berth needs to build, test and benchmark.
# Idempotent: installs only what is missing; safe to run on every `make`.
set -euo pipefail

pkgs=(
  # toolchain
  build-essential pkg-config clang libclang-rt-14-dev musl-tools clang-format
  # libraries named in the design
  libcjson-dev libcurl4-openssl-dev libcgroup-dev libseccomp-dev libcap-dev
  libsystemd-dev check libsubunit-dev
  libarchive-dev libssl-dev libzstd-dev libmnl-dev libnftables-dev libmicrohttpd-dev
  libsqlite3-dev
  # integration tests, main job and benchmarks
  busybox-static crun runc hyperfine iproute2 procps util-linux conmon jq
  # real peers for images, networking and the control plane
  docker-registry skopeo umoci apache2-utils nftables awscli sqlite3 curl openssl
  # pure cgroup v2 tests in a throwaway VM
  qemu-system-x86 linux-image-amd64 cpio debootstrap zstd e2fsprogs kmod
  # make deb (dpkg-shlibdeps is in dpkg-dev, from build-essential), lintian, the NoCloud seed
  lintian genisoimage
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A stale or absent package list is the usual first-boot failure: refresh once.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
