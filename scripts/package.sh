#!/usr/bin/env bash
# Builds the Debian packages from built executables (docs/operations.md, "The packages"):
#   myna-kyukyu        kyukyu-gateway, kyukyu-hospital, kyukyu (CLI), the Swift runtime they need, the units, the
#                      users, example configuration, the docs
#   myna-kyukyu-drill  kyukyu-card-sim, kyukyu-eligibility-sim, kyukyu-netsim and their units (drills, training)
#
#   scripts/package.sh BIN_DIR OUT_DIR
#
# Environment: PACKAGE_VERSION (default 0.1.0+git<commit date>.<short hash>), PACKAGE_COMPRESS (xz, zstd, gzip or
# none; default xz), SWIFT_RUNTIME_DIR (default: lib/swift/linux next to the swift in PATH).
#
# The Swift runtime is bundled: every .so from the Swift toolchain that `ldd` finds for the executables is copied to
# /usr/lib/myna-kyukyu/lib and the executables' RUNPATH is set to $ORIGIN/../lib (patchelf). The Debian
# dependencies are computed, not written by hand: dpkg-shlibdeps over the executables and the bundled libraries.
# Executables are stripped (debug builds too: a debug build packaged for the install test is not for debugging).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:?usage: scripts/package.sh BIN_DIR OUT_DIR}"
OUT="${2:?usage: scripts/package.sh BIN_DIR OUT_DIR}"
COMPRESS="${PACKAGE_COMPRESS:-xz}"
MAIN_BINARIES=(kyukyu-gateway kyukyu-hospital kyukyu)
DRILL_BINARIES=(kyukyu-card-sim kyukyu-eligibility-sim kyukyu-netsim)
# Resource bundles that Bundle.module looks for next to the executable (the tablet UI, the ER board, GRDB's).
BUNDLES=(myna-kyukyu_KyukyuGateway.resources myna-kyukyu_KyukyuReceiver.resources GRDB_GRDB.resources)
PREFIX=usr/lib/myna-kyukyu

say() { echo "package: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in patchelf dpkg-deb dpkg-shlibdeps strip ldd; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh)"; done
for b in "${MAIN_BINARIES[@]}" "${DRILL_BINARIES[@]}"; do [ -x "$BIN/$b" ] || die "$BIN/$b is not built"; done
for r in "${BUNDLES[@]}"; do [ -d "$BIN/$r" ] || die "$BIN/$r is missing (a resource bundle of the build)"; done

if [ -z "${SWIFT_RUNTIME_DIR:-}" ]; then
  swift_bin="$(readlink -f "$(command -v swift)")" || die "no swift in PATH; set SWIFT_RUNTIME_DIR"
  SWIFT_RUNTIME_DIR="$(dirname "$(dirname "$swift_bin")")/lib/swift/linux"
fi
[ -f "$SWIFT_RUNTIME_DIR/libswiftCore.so" ] || die "no libswiftCore.so in $SWIFT_RUNTIME_DIR; set SWIFT_RUNTIME_DIR"
SWIFT_RUNTIME_DIR="$(readlink -f "$SWIFT_RUNTIME_DIR")"

if [ -z "${PACKAGE_VERSION:-}" ]; then
  PACKAGE_VERSION="0.1.0+git$(git log -1 --format=%cd --date=format:%Y%m%d%H%M).$(git rev-parse --short=8 HEAD)"
fi
ARCH="$(dpkg --print-architecture)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/build"
rm -rf "$WORK"
mkdir -p "$WORK"

# MARK: - staging

stage_binaries() { # ROOT NAME...
  local root="$1"; shift
  mkdir -p "$root/$PREFIX/bin" "$root/usr/bin"
  local b
  for b in "$@"; do
    install -m 0755 "$BIN/$b" "$root/$PREFIX/bin/$b"
    strip --strip-unneeded "$root/$PREFIX/bin/$b"
    patchelf --set-rpath '$ORIGIN/../lib' "$root/$PREFIX/bin/$b"
    ln -s "../lib/myna-kyukyu/bin/$b" "$root/usr/bin/$b"
  done
}

# The Swift toolchain's libraries the executables load (ldd follows them transitively).
swift_libraries() { # FILE...
  local f
  for f in "$@"; do ldd "$f"; done | awk -v dir="$SWIFT_RUNTIME_DIR/" 'index($3, dir) == 1 { print $3 }' | sort -u
}

MAIN="$WORK/myna-kyukyu"
DRILL="$WORK/myna-kyukyu-drill"
stage_binaries "$MAIN" "${MAIN_BINARIES[@]}"
stage_binaries "$DRILL" "${DRILL_BINARIES[@]}"
for r in "${BUNDLES[@]}"; do
  cp -R "$BIN/$r" "$MAIN/$PREFIX/bin/$r"
done
mkdir -p "$MAIN/$PREFIX/lib"
libs="$(swift_libraries "${MAIN_BINARIES[@]/#/$BIN/}" "${DRILL_BINARIES[@]/#/$BIN/}")"
[ -n "$libs" ] || die "ldd found no Swift runtime library under $SWIFT_RUNTIME_DIR (a static build needs none: unexpected here)"
while IFS= read -r lib; do
  install -m 0644 "$lib" "$MAIN/$PREFIX/lib/$(basename "$lib")"
  strip --strip-unneeded "$MAIN/$PREFIX/lib/$(basename "$lib")"
  # Their own RUNPATH is $ORIGIN already (each other, side by side); set it anyway, nothing else.
  patchelf --set-rpath '$ORIGIN' "$MAIN/$PREFIX/lib/$(basename "$lib")"
done <<<"$libs"
install -m 0755 deploy/package/kyukyu-new-keyring "$MAIN/$PREFIX/bin/kyukyu-new-keyring"
ln -s ../lib/myna-kyukyu/bin/kyukyu-new-keyring "$MAIN/usr/bin/kyukyu-new-keyring"

# Units, users, tmpfiles, configuration, docs.
mkdir -p "$MAIN/lib/systemd/system" "$DRILL/lib/systemd/system"
install -m 0644 deploy/systemd/kyukyu-gateway.service deploy/systemd/kyukyu-hospital.service "$MAIN/lib/systemd/system/"
install -m 0644 deploy/systemd/kyukyu-eligibility-sim.service deploy/systemd/kyukyu-card-sim@.service \
  deploy/systemd/kyukyu-netsim@.service "$DRILL/lib/systemd/system/"
mkdir -p "$MAIN/usr/lib/sysusers.d" "$MAIN/usr/lib/tmpfiles.d" "$DRILL/usr/lib/sysusers.d"
install -m 0644 deploy/package/myna-kyukyu.sysusers "$MAIN/usr/lib/sysusers.d/myna-kyukyu.conf"
install -m 0644 deploy/package/myna-kyukyu.tmpfiles "$MAIN/usr/lib/tmpfiles.d/myna-kyukyu.conf"
install -m 0644 deploy/package/myna-kyukyu-drill.sysusers "$DRILL/usr/lib/sysusers.d/myna-kyukyu-drill.conf"
mkdir -p "$MAIN/etc/kyukyu"
install -m 0644 deploy/config/gateway.json deploy/config/hospital.json "$MAIN/etc/kyukyu/"
doc="$MAIN/usr/share/doc/myna-kyukyu"
mkdir -p "$doc/examples/prometheus"
install -m 0644 docs/operations.md docs/gateway-configuration.md docs/hospital-configuration.md docs/vault.md "$doc/"
install -m 0644 README.md "$doc/README.project.md"
install -m 0644 deploy/README.md "$doc/README.md"
install -m 0644 deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml "$doc/examples/prometheus/"
install -m 0644 deploy/package/copyright "$doc/copyright"
ddoc="$DRILL/usr/share/doc/myna-kyukyu-drill"
mkdir -p "$ddoc/examples"
install -m 0644 deploy/package/drill-README.md "$ddoc/README.md"
install -m 0644 docs/card-simulator.md docs/network-simulator.md "$ddoc/"
install -m 0644 deploy/package/eligibility-sim.env deploy/package/card-sim.env deploy/package/netsim.env "$ddoc/examples/"
install -m 0644 deploy/package/copyright "$ddoc/copyright"

# MARK: - dependencies (computed)

# (DEBIAN/ first: dpkg-shlibdeps resolves $ORIGIN in RUNPATH against the package root it finds by it.)
mkdir -p "$MAIN/DEBIAN" "$DRILL/DEBIAN"

# dpkg-shlibdeps needs a debian/control beside it; the bundled Swift libraries are found through -l and belong to no
# Debian package, so they add nothing (--ignore-missing-info: they are ours, in this package).
shlibdeps() { # ROOT FILE...
  local root="$1"; shift
  local dir="$WORK/shlibdeps"
  rm -rf "$dir"; mkdir -p "$dir/debian"
  printf 'Source: myna-kyukyu\n\nPackage: myna-kyukyu\nArchitecture: any\n' >"$dir/debian/control"
  (cd "$dir" && dpkg-shlibdeps -O --ignore-missing-info -l"$MAIN/$PREFIX/lib" "$@" 2>"$dir/warnings") \
    | sed -n 's/^shlibs:Depends=//p'
  # Anything but the expected "no dependency information" for our own libraries is shown.
  grep -v "myna-kyukyu/lib/\|no dependency information found for\|binaries to analyze should already be\|useless dependency\|extract name and version from library name" \
    "$dir/warnings" >&2 || true
}
main_depends="$(shlibdeps "$MAIN" "${MAIN_BINARIES[@]/#/$MAIN/$PREFIX/bin/}" "$MAIN/$PREFIX/lib/"*.so)"
drill_depends="$(shlibdeps "$DRILL" "${DRILL_BINARIES[@]/#/$DRILL/$PREFIX/bin/}")"
[ -n "$main_depends" ] || die "dpkg-shlibdeps computed no dependencies for myna-kyukyu"
say "myna-kyukyu depends (dpkg-shlibdeps): $main_depends"
say "myna-kyukyu-drill depends (dpkg-shlibdeps): $drill_depends"

# MARK: - control

installed_size() { du -sk --apparent-size "$1" | cut -f1; }

cat >"$MAIN/DEBIAN/control" <<EOF
Package: myna-kyukyu
Version: $PACKAGE_VERSION
Architecture: $ARCH
Maintainer: Myna Kyukyu maintainers <kyukyu@invalid>
Section: misc
Priority: optional
Installed-Size: $(installed_size "$MAIN")
Depends: $main_depends, passwd
Recommends: pcscd, libccid, systemd
Suggests: myna-kyukyu-drill
Description: Myna Kyukyu field gateway, hospital receiver and CLI
 kyukyu-gateway reads a patient's My Number card through pcscd, fetches eligibility
 data from onshi, keeps it encrypted only as long as needed and forwards a FHIR summary
 to the receiving hospital; kyukyu-hospital is that hospital's receiver and ER board;
 kyukyu is the operator's CLI. Systemd units kyukyu-gateway.service and
 kyukyu-hospital.service, not enabled at install (see
 /usr/share/doc/myna-kyukyu/operations.md).
EOF
cat >"$DRILL/DEBIAN/control" <<EOF
Package: myna-kyukyu-drill
Version: $PACKAGE_VERSION
Architecture: $ARCH
Maintainer: Myna Kyukyu maintainers <kyukyu@invalid>
Section: misc
Priority: optional
Installed-Size: $(installed_size "$DRILL")
Depends: myna-kyukyu (= $PACKAGE_VERSION)${drill_depends:+, $drill_depends}, passwd
Recommends: pcscd, vsmartcard-vpcd
Description: Myna Kyukyu drill simulators (synthetic card, onshi stub, network)
 kyukyu-card-sim (a synthetic JPKI card for pcscd's vpcd reader),
 kyukyu-eligibility-sim (the onshi stub with a synthetic population) and
 kyukyu-netsim (a fault-injecting network), with their systemd units, for drills
 and training. Synthetic data only; never for a production gateway.
EOF
printf '/etc/kyukyu/gateway.json\n/etc/kyukyu/hospital.json\n' >"$MAIN/DEBIAN/conffiles"
for s in postinst prerm postrm; do
  install -m 0755 "deploy/package/myna-kyukyu.$s" "$MAIN/DEBIAN/$s"
  install -m 0755 "deploy/package/myna-kyukyu-drill.$s" "$DRILL/DEBIAN/$s"
done

# MARK: - build

for root in "$MAIN" "$DRILL"; do
  name="$(basename "$root")"
  deb="$OUT/${name}_${PACKAGE_VERSION}_${ARCH}.deb"
  rm -f "$OUT/${name}_"*.deb
  dpkg-deb --root-owner-group -Z"$COMPRESS" --build "$root" "$deb" >/dev/null
  say "$deb ($(du -h "$deb" | cut -f1))"
done
rm -rf "$WORK"
