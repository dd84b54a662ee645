#!/usr/bin/env bash
# Builds ticketaid's .deb and .rpm into build/packages/ from the CMake build.
#
#   packaging/build-packages.sh [BUILD_DIR]      (default: build)
#
# The ticketaid binary is built first if needed (cmake --build BUILD_DIR --target
# ticketaid). Needs dpkg-deb and dpkg-shlibdeps (dpkg-dev) for the .deb, and
# rpmbuild (Debian's `rpm` package) for the .rpm; without rpmbuild only the .deb is
# made, with a warning. Environment: TICKETAID_LICENSE sets the packages' license
# field; TICKETAID_PACKAGES=deb or rpm builds only one of them;
# TICKETAID_PACKAGES_NO_BUILD=1 packages the binary already built (the tests do).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
build_dir=$(realpath -m "${1:-$source_dir/build}")
out_dir="$build_dir/packages"
which_packages=${TICKETAID_PACKAGES:-deb rpm}
license=${TICKETAID_LICENSE:-LicenseRef-unspecified}

version=$(sed -n 's/^project(ticketaid VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")
[ -n "$version" ] || { echo "build-packages: no version in CMakeLists.txt" >&2; exit 1; }
deb_arch=$(dpkg --print-architecture)
rpm_arch=$(uname -m)

if [ -z "${TICKETAID_PACKAGES_NO_BUILD:-}" ]; then
  cmake --build "$build_dir" --target ticketaid -j1 >/dev/null
fi
binary="$build_dir/src/ticketaid"
"$binary" --version >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"

# Lays out the installed tree under $1; $2 is where the units go.
stage() {
  local root=$1 unit_dir=$2
  install -D -m 0755 "$binary" "$root/usr/bin/ticketaid"
  strip --strip-unneeded "$root/usr/bin/ticketaid"
  install -D -m 0644 "$source_dir/systemd/ticketaid.service" "$root$unit_dir/ticketaid.service"
  install -D -m 0644 "$source_dir/systemd/ticketaid.socket" "$root$unit_dir/ticketaid.socket"
  install -D -m 0644 "$here/ticketaid.sysusers" "$root/usr/lib/sysusers.d/ticketaid.conf"
  install -D -m 0644 "$here/ticketaid.tmpfiles" "$root/usr/lib/tmpfiles.d/ticketaid.conf"
  install -D -m 0640 "$source_dir/config/ticketaid.toml" "$root/etc/ticketaid/ticketaid.toml"
  install -d -m 0755 "$root/usr/share/man/man8"
  gzip -9n <"$source_dir/docs/ticketaid.8" >"$root/usr/share/man/man8/ticketaid.8.gz"
  local doc="$root/usr/share/doc/ticketaid"
  install -d -m 0755 "$doc"
  install -m 0644 "$source_dir/README.md" "$doc/"
  for f in operations.md protocol.md rest.md errors.md; do
    install -m 0644 "$source_dir/docs/$f" "$doc/"
  done
  install -d -m 0750 "$root/var/lib/ticketaid"
}

build_deb() {
  local root="$work/deb"
  stage "$root" /lib/systemd/system
  # The state directory is made by the postinst (and systemd), owned by ticketaid.
  rmdir "$root/var/lib/ticketaid" "$root/var/lib" "$root/var"
  mkdir -p "$root/DEBIAN"
  install -m 0755 "$here/deb/postinst" "$here/deb/prerm" "$here/deb/postrm" "$root/DEBIAN/"
  echo /etc/ticketaid/ticketaid.toml >"$root/DEBIAN/conffiles"

  # dpkg-shlibdeps wants a debian/control beside it.
  mkdir -p "$work/shlibdeps/debian"
  printf 'Source: ticketaid\n\nPackage: ticketaid\nArchitecture: any\n' \
    >"$work/shlibdeps/debian/control"
  local depends
  depends=$(cd "$work/shlibdeps" && dpkg-shlibdeps -O "$root/usr/bin/ticketaid" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
  [ -n "$depends" ] || { echo "build-packages: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

  local size
  size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
  cat >"$root/DEBIAN/control" <<CONTROL
Package: ticketaid
Version: $version-1
Architecture: $deb_arch
Maintainer: ticketaid maintainers <ticketaid@localhost>
Installed-Size: $size
Depends: $depends, adduser
Recommends: systemd
Section: net
Priority: optional
Description: streams AI answers for helpdesk tickets from a local Ollama
 ticketaid is a small daemon that sits next to a helpdesk's local Ollama server.
 It streams the model's answer to a ticket over WebSocket, keeps finished answers
 in SQLite, and runs as a hardened systemd service (ticketaid.service, optionally
 socket-activated by ticketaid.socket).
CONTROL
  local deb="$out_dir/ticketaid_${version}-1_${deb_arch}.deb"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
  echo "$deb"
}

build_rpm() {
  if ! command -v rpmbuild >/dev/null; then
    echo "build-packages: rpmbuild not found (apt-get install rpm); no .rpm built" >&2
    return 0
  fi
  local root="$work/rpm-stage"
  stage "$root" /usr/lib/systemd/system
  sed -e "s|@VERSION@|$version|" -e "s|@LICENSE@|$license|" -e "s|@ARCH@|$rpm_arch|" \
    -e "s|@STAGE@|$root|" "$here/rpm/ticketaid.spec.in" >"$work/ticketaid.spec"
  rpmbuild -bb --quiet --define "_topdir $work/rpmbuild" \
    --define "_rpmdir $out_dir" --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    "$work/ticketaid.spec" >/dev/null
  echo "$out_dir/ticketaid-$version-1.$rpm_arch.rpm"
}

for kind in $which_packages; do
  case $kind in
    deb) build_deb ;;
    rpm) build_rpm ;;
    *) echo "build-packages: unknown package kind $kind" >&2; exit 2 ;;
  esac
done
