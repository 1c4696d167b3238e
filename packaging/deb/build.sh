#!/usr/bin/env bash
# Builds the berth-agent and berth-control .debs from a build dir with dpkg-deb (no debhelper:
# two binary packages of prebuilt programs need only a staged tree and a control file).
# usage: packaging/deb/build.sh BUILD_DIR OUT_DIR   (what `make deb` runs)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: build.sh BUILD OUT}" && pwd)
out=${2:?usage: build.sh BUILD OUT}
# The upstream version from VERSION (also what --version prints) and a Debian revision.
version=$(cat "$src/VERSION")-${BERTH_DEB_REVISION:-1}
maintainer=${BERTH_DEB_MAINTAINER:-Berth authors <berth@example.org>}
arch=$(dpkg --print-architecture)
here=$src/packaging/deb
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/berth-agent_*.deb "$out"/berth-control_*.deb # one version in OUT at a time
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The Depends line of some binaries, from the shared libraries they load (dpkg-shlibdeps wants
# a debian/control next to it; a one-package stub is enough).
shlibdeps() {
  mkdir -p "$work/shlib/debian"
  printf 'Source: berth\n\nPackage: berth\nArchitecture: any\n' >"$work/shlib/debian/control"
  (cd "$work/shlib" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
}

# The files every package carries: the copyright file and a Debian changelog, both in
# /usr/share/doc/PKG.
doc_files() { # ROOT PKG
  local doc=$1/usr/share/doc/$2
  install -d -m 0755 "$doc"
  install -m 0644 "$here/copyright" "$doc/copyright"
  {
    printf '%s (%s) unstable; urgency=medium\n\n' "$2" "$version"
    printf '  * Built from the Berth source tree (git %s).\n\n' \
      "$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf ' -- %s  %s\n' "$maintainer" \
      "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}")"
  } | gzip -9n >"$doc/changelog.Debian.gz"
}

# Programs go in stripped (the debug info stays in the build dir).
install_bin() { # FROM TO
  install -D -m 0755 "$1" "$2"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
}

# Control file, maintainer scripts, md5sums, then dpkg-deb. $1 root, $2 package name,
# $3 Depends, $4 short description, $5 long description (already indented by one space),
# then the programs whose manual pages (packaging/man/NAME.8) it carries.
finish() {
  local root=$1 pkg=$2 size
  install -d -m 0755 "$root/DEBIAN"
  for s in postinst prerm postrm; do
    install -m 0755 "$here/$pkg/$s" "$root/DEBIAN/$s"
  done
  # Each override is justified in its file and in docs/packaging.md.
  install -D -m 0644 "$here/$pkg/lintian-overrides" "$root/usr/share/lintian/overrides/$pkg"
  for m in "${@:6}"; do
    install -d -m 0755 "$root/usr/share/man/man8"
    gzip -9nc "$src/packaging/man/$m.8" >"$root/usr/share/man/man8/$m.8.gz"
  done
  [ -f "$here/$pkg/conffiles" ] && install -m 0644 "$here/$pkg/conffiles" "$root/DEBIAN/conffiles"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
  chmod 0644 "$root/DEBIAN/md5sums"
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<CONTROL
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $3
Section: admin
Priority: optional
Homepage: https://berth.invalid/
Description: $4
$5
CONTROL
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_${version}_${arch}.deb" >/dev/null
  echo "$out/${pkg}_${version}_${arch}.deb"
}

# berth-agent: the agent, the shim, the OCI runtime, the unit, the default ecs.config.
a=$work/berth-agent
install_bin "$build/bin/berth-agent" "$a/usr/bin/berth-agent"
install_bin "$build/bin/berth-runtime" "$a/usr/bin/berth-runtime"
install_bin "$build/bin/berth-shim" "$a/usr/bin/berth-shim"
install_bin "$build/bin/berth-init" "$a/usr/bin/berth-init"
install -D -m 0644 "$src/systemd/berth-agent.service" "$a/lib/systemd/system/berth-agent.service"
# 0600: it may hold the agent's credentials (AWS_SECRET_ACCESS_KEY).
install -D -m 0600 "$here/ecs.config" "$a/etc/ecs/ecs.config"
doc_files "$a" berth-agent
for d in agent configuration cgroups packaging; do
  gzip -9nc "$src/docs/$d.md" >"$a/usr/share/doc/berth-agent/$d.md.gz"
done
install -m 0644 "$src/README.md" "$a/usr/share/doc/berth-agent/README.md"
install -d -m 0755 "$a/usr/share/doc/berth-agent/examples"
install -m 0644 "$src"/packaging/cloud-init/*.yaml "$a/usr/share/doc/berth-agent/examples/"
deps=$(shlibdeps "$a/usr/bin/berth-agent" "$a/usr/bin/berth-runtime")
finish "$a" berth-agent "$deps, init-system-helpers (>= 1.54~)" \
  "container node agent for ECS-style clusters" \
  " berth-agent registers this host with an ECS-style control plane (berth-control)
 and runs the tasks assigned to it through its own container runtime: Linux
 namespaces and cgroups, no Docker or containerd. It reads the ECS agent's
 /etc/ecs/ecs.config. The package also holds berth-runtime (an OCI runtime
 command line) and berth-shim (the per-container monitor)." \
  berth-agent berth-runtime berth-shim berth-init

# berth-control: the ECS API server and its unit.
c=$work/berth-control
install_bin "$build/bin/berth-control" "$c/usr/bin/berth-control"
install -D -m 0644 "$src/systemd/berth-control.service" "$c/lib/systemd/system/berth-control.service"
doc_files "$c" berth-control
gzip -9nc "$src/docs/controlplane.md" >"$c/usr/share/doc/berth-control/controlplane.md.gz"
install -m 0644 "$src/README.md" "$c/usr/share/doc/berth-control/README.md"
deps=$(shlibdeps "$c/usr/bin/berth-control")
finish "$c" berth-control "$deps, init-system-helpers (>= 1.54~)" \
  "ECS-style control plane (ECS API server)" \
  " berth-control serves the Amazon ECS API (clusters, task definitions, container
 instances, tasks, placement) over HTTP or HTTPS with SigV4 authentication,
 for berth-agent hosts and the aws command line." berth-control
