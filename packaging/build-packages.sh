#!/usr/bin/env bash
# Builds ticketaid's .deb and .rpm into BUILD_DIR/packages/ with CPack, from the
# install rules in packaging/CMakeLists.txt.
#
#   packaging/build-packages.sh [BUILD_DIR]      (default: build)
#
# The binary is built first if needed. The .deb needs dpkg-deb and dpkg-shlibdeps
# (dpkg-dev), the .rpm rpmbuild (Debian's `rpm` package); without rpmbuild only the
# .deb is made, with a warning. An .rpm made on Debian depends on Debian's library
# versions: production .rpms are built the same way on the target distribution (see
# docs/operations.md). Environment: TICKETAID_PACKAGES=deb or rpm builds only one;
# TICKETAID_PACKAGES_NO_BUILD=1 packages what is already built (the tests do).
# Prints the path of each package made.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(dirname "$here")
build_dir=$(realpath -m "${1:-$source_dir/build}")
which_packages=${TICKETAID_PACKAGES:-deb rpm}

[ -f "$build_dir/CMakeCache.txt" ] ||
  cmake -S "$source_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
if [ -z "${TICKETAID_PACKAGES_NO_BUILD:-}" ]; then
  cmake --build "$build_dir" --target ticketaid ticketaid_package_files >/dev/null
fi

generators=()
for kind in $which_packages; do
  case $kind in
    deb) generators+=(DEB) ;;
    rpm)
      if command -v rpmbuild >/dev/null; then
        generators+=(RPM)
      else
        echo "build-packages: rpmbuild not found (apt-get install rpm); no .rpm built" >&2
      fi ;;
    *) echo "build-packages: unknown package kind $kind" >&2; exit 2 ;;
  esac
done
[ ${#generators[@]} -gt 0 ] || exit 0

# Files in the packages get their modes from the tree; a umask must not change them.
umask 022
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! (cd "$build_dir" && cpack -G "$(IFS=';'; echo "${generators[*]}")" >"$log" 2>&1); then
  cat "$log" >&2
  exit 1
fi
sed -n 's/^CPack: - package: \(.*\) generated\.$/\1/p' "$log"
