#!/usr/bin/env bash
# Builds the .deb and .rpm from the existing build (packaging/build-packages.sh) and
# checks them without installing anything on this machine: the file lists, the
# conffiles, the maintainer scripts, the dependencies; the .deb is unpacked into a
# scratch directory, and the binary and unit found there are run and verified.
#
#   tests/packaging/check_packages.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

source_dir=$1
build_dir=$2
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
has_line() { grep -qxF -- "$2" <<<"$1" || fail "$3: no '$2'"; }

out=$(TICKETAID_PACKAGES_NO_BUILD=1 "$source_dir/packaging/build-packages.sh" "$build_dir")
deb=$(grep '\.deb$' <<<"$out")
rpm=$(grep '\.rpm$' <<<"$out" || true)
[ -f "$deb" ] || { echo "FAIL: no .deb built: $out" >&2; exit 1; }
version=$(sed -n 's/^project(ticketaid VERSION \([0-9.]*\).*/\1/p' "$source_dir/CMakeLists.txt")

# --- the .deb ---
files=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#')
for path in /usr/bin/ticketaid /lib/systemd/system/ticketaid.service \
  /lib/systemd/system/ticketaid.socket /etc/ticketaid/ticketaid.toml \
  /usr/share/man/man8/ticketaid.8.gz /usr/share/doc/ticketaid/README.md \
  /usr/share/doc/ticketaid/operations.md /usr/share/doc/ticketaid/copyright \
  /usr/share/doc/ticketaid/changelog.Debian.gz /usr/lib/sysusers.d/ticketaid.conf \
  /usr/lib/tmpfiles.d/ticketaid.conf; do
  has_line "$files" "$path" ".deb files"
done
grep -q '^/var/lib/ticketaid' <<<"$files" && fail ".deb ships /var/lib/ticketaid (the postinst makes it)"

has_line "$(dpkg-deb -f "$deb" Package)" ticketaid "control Package"
has_line "$(dpkg-deb -f "$deb" Version)" "$version-1" "control Version"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libsqlite3-0 libsystemd0 libcpp-httplib0.11 libhiredis0.14 libssl3 adduser; do
  grep -q "\b$lib\b" <<<"$depends" || fail "Depends lacks $lib: $depends"
done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
dpkg-deb -e "$deb" "$scratch/DEBIAN"
has_line "$(cat "$scratch/DEBIAN/conffiles")" /etc/ticketaid/ticketaid.toml "conffiles"
for script in postinst prerm postrm; do
  [ -x "$scratch/DEBIAN/$script" ] || { fail "no executable $script"; continue; }
  sh -n "$scratch/DEBIAN/$script" || fail "$script: syntax error"
done
grep -q 'adduser --system --group' "$scratch/DEBIAN/postinst" || fail "postinst makes no user"
grep -q 'rm -rf /var/lib/ticketaid' "$scratch/DEBIAN/postrm" || fail "postrm purges nothing"
grep -q '/run/systemd/system' "$scratch/DEBIAN/postinst" || fail "postinst: systemctl unguarded"
grep -q 'deb-systemd-invoke "$action"' "$scratch/DEBIAN/postinst" || fail "postinst: no restart on upgrade"

# lintian: no errors. The warnings kept, and why, are in docs/operations.md.
lintian_out=$(lintian --no-tag-display-limit "$deb" 2>&1 || true)
echo "$lintian_out"
if grep -q '^E: ' <<<"$lintian_out"; then fail "lintian reports errors"; fi

# Unpacked, the binary runs, and the shipped configuration and unit are valid.
root="$scratch/root"
dpkg-deb -x "$deb" "$root"
got=$("$root/usr/bin/ticketaid" --version)
[ "$got" = "ticketaid $version" ] || fail "--version says '$got'"
"$root/usr/bin/ticketaid" check-config --config "$root/etc/ticketaid/ticketaid.toml" >/dev/null ||
  fail "the shipped configuration does not pass check-config"
zcat "$root/usr/share/man/man8/ticketaid.8.gz" | grep -q '^\.TH TICKETAID 8' || fail "man page"
units="$scratch/units"
mkdir -p "$units"
sed "s#/usr/bin/ticketaid#$root/usr/bin/ticketaid#" "$root/lib/systemd/system/ticketaid.service" \
  >"$units/ticketaid.service"
cp "$root/lib/systemd/system/ticketaid.socket" "$units/"
systemd-analyze verify --man=no "$units/ticketaid.service" "$units/ticketaid.socket" ||
  fail "systemd-analyze verify"

# --- the .rpm ---
if [ -n "$rpm" ]; then
  rpm_files=$(rpm -qlp "$rpm" 2>/dev/null)
  for path in /usr/bin/ticketaid /usr/lib/systemd/system/ticketaid.service \
    /usr/lib/systemd/system/ticketaid.socket /etc/ticketaid/ticketaid.toml \
    /usr/share/man/man8/ticketaid.8.gz /usr/share/doc/ticketaid/README.md \
    /usr/share/doc/ticketaid/copyright /usr/lib/sysusers.d/ticketaid.conf \
    /usr/lib/tmpfiles.d/ticketaid.conf; do
    has_line "$rpm_files" "$path" ".rpm files"
  done
  has_line "$(rpm -qcp "$rpm" 2>/dev/null)" /etc/ticketaid/ticketaid.toml ".rpm %config"
  scripts=$(rpm -qp --scripts "$rpm" 2>/dev/null)
  for kind in preinstall postinstall preuninstall postuninstall; do
    grep -q "^$kind scriptlet" <<<"$scripts" || fail ".rpm has no $kind scriptlet"
  done
  requires=$(rpm -qp --requires "$rpm" 2>/dev/null)
  grep -q '^libsqlite3.so.0' <<<"$requires" || fail ".rpm does not require libsqlite3"
  grep -q '^libhiredis.so' <<<"$requires" || fail ".rpm does not require libhiredis"
  # rpmlint: no errors (packaging/rpmlint.toml says what is configured and why).
  rpmlint_out=$(rpmlint -c "$source_dir/packaging/rpmlint.toml" "$rpm" 2>&1 || true)
  echo "$rpmlint_out"
  grep -q ' 0 errors' <<<"$rpmlint_out" || fail "rpmlint reports errors"
else
  fail "no .rpm built (is rpmbuild installed? .ci/deps installs it)"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "packages ok: $deb${rpm:+ $rpm}"
