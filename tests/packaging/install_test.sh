#!/usr/bin/env bash
# Installs the built .deb (and the .rpm) into a throwaway root and back out:
# the root is an overlay of this machine's own / (so the package's dependencies are
# there) whose changes land in a scratch directory and vanish afterwards; nothing on
# the machine itself changes. Inside it: install, the user and state directory the
# scripts make, `ticketaid --version` and `check-config` on the installed file, an
# upgrade over an edited conffile (kept), remove (config and data kept), purge (both
# gone). The .rpm gets the same through rpm -i / -U / -e.
#
#   tests/packaging/install_test.sh SOURCE_DIR BUILD_DIR
# Needs root (mount namespaces and an overlay mount), as in CI.
set -euo pipefail

source_dir=$1
build_dir=$2
if [ "$(id -u)" != 0 ]; then
  echo "install_test: needs root for the overlay mount; run it as root (CI does)" >&2
  exit 1
fi
out=$(TICKETAID_PACKAGES_NO_BUILD=1 "$source_dir/packaging/build-packages.sh" "$build_dir")
deb=$(grep '\.deb$' <<<"$out")
rpm=$(grep '\.rpm$' <<<"$out" || true)
version=$(sed -n 's/^project(ticketaid VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/pkg"
cp "$deb" "$scratch/pkg/ticketaid.deb"
[ -n "$rpm" ] && cp "$rpm" "$scratch/pkg/ticketaid.rpm"

# Runs the script on stdin as root inside a fresh overlay of /, in its own mount
# namespace; the packages are at /pkg inside.
in_throwaway_root() {
  local layer="$scratch/layer-$1"
  mkdir -p "$layer/up" "$layer/work" "$layer/root"
  cat >"$layer/script.sh"
  unshare --mount --fork sh -ec "
    mount -t overlay overlay -o lowerdir=/,upperdir=$layer/up,workdir=$layer/work $layer/root
    mount --bind /proc $layer/root/proc
    mount --bind /dev $layer/root/dev
    mkdir -p $layer/root/pkg && mount --bind $scratch/pkg $layer/root/pkg
    cp $layer/script.sh $layer/root/tmp/script.sh
    chroot $layer/root /bin/bash -eu /tmp/script.sh"
}

echo "--- .deb in a throwaway root"
in_throwaway_root deb <<SCRIPT
check() { if ! eval "\$1"; then echo "FAIL: \$2" >&2; exit 1; fi; }
# A machine that never had ticketaid (this one may have had it).
rm -rf /etc/ticketaid /var/lib/ticketaid
if getent passwd ticketaid >/dev/null; then userdel ticketaid; fi
if getent group ticketaid >/dev/null; then groupdel ticketaid; fi
dpkg -i /pkg/ticketaid.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
check 'dpkg -s ticketaid | grep -qx "Status: install ok installed"' "not installed"
check '[ "\$(ticketaid --version)" = "ticketaid $version" ]' "--version"
check 'ticketaid check-config --config /etc/ticketaid/ticketaid.toml >/dev/null' "check-config"
check 'getent passwd ticketaid >/dev/null' "no ticketaid user"
check '[ "\$(stat -c %U:%G:%a /var/lib/ticketaid)" = ticketaid:ticketaid:750 ]' "state dir"
check '[ "\$(stat -c %U:%G:%a /etc/ticketaid/ticketaid.toml)" = root:ticketaid:640 ]' "config mode"
check '[ -f /lib/systemd/system/ticketaid.service ]' "no unit"
# An upgrade (the same version again) keeps an edited conffile.
echo '# edited by the administrator' >>/etc/ticketaid/ticketaid.toml
dpkg -i --force-confold /pkg/ticketaid.deb >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
check 'grep -q "edited by the administrator" /etc/ticketaid/ticketaid.toml' "conffile replaced"
echo data >/var/lib/ticketaid/ticketaid.db
dpkg -r ticketaid >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
check '[ ! -e /usr/bin/ticketaid ]' "binary left after remove"
check '[ -f /etc/ticketaid/ticketaid.toml ]' "remove deleted the config"
check '[ -f /var/lib/ticketaid/ticketaid.db ]' "remove deleted the data"
dpkg -P ticketaid >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; exit 1; }
check '[ ! -e /etc/ticketaid ]' "purge left /etc/ticketaid"
check '[ ! -e /var/lib/ticketaid ]' "purge left the data"
check '! dpkg -s ticketaid >/dev/null 2>&1' "still known to dpkg"
echo "deb: install, upgrade, remove and purge ok"
SCRIPT

if [ -n "$rpm" ]; then
  echo "--- .rpm in a throwaway root"
  in_throwaway_root rpm <<SCRIPT
check() { if ! eval "\$1"; then echo "FAIL: \$2" >&2; exit 1; fi; }
rm -rf /etc/ticketaid /var/lib/ticketaid
if getent passwd ticketaid >/dev/null; then userdel ticketaid; fi
if getent group ticketaid >/dev/null; then groupdel ticketaid; fi
# Debian's rpm database is empty: the dependencies are there, but not as rpms.
rpm -i --nodeps /pkg/ticketaid.rpm
check '[ "\$(ticketaid --version)" = "ticketaid $version" ]' "--version"
check 'ticketaid check-config --config /etc/ticketaid/ticketaid.toml >/dev/null' "check-config"
check 'getent passwd ticketaid >/dev/null' "no ticketaid user"
check '[ "\$(stat -c %U:%G:%a /etc/ticketaid/ticketaid.toml)" = root:ticketaid:640 ]' "config mode"
check '[ -f /usr/lib/systemd/system/ticketaid.service ]' "no unit"
echo '# edited by the administrator' >>/etc/ticketaid/ticketaid.toml
rpm -U --replacepkgs --nodeps /pkg/ticketaid.rpm
check 'grep -q "edited by the administrator" /etc/ticketaid/ticketaid.toml' "%config replaced"
rpm -e ticketaid
check '[ ! -e /usr/bin/ticketaid ]' "binary left after erase"
echo "rpm: install, upgrade and erase ok"
SCRIPT
fi
echo "install test ok"
