#!/usr/bin/env bash
# The release path of the chatrelay Buildroot package, checked with
# Buildroot 2026.05.1 (part of scripts/buildroot-check.sh, so of the test
# command):
#   1. scripts/release-tarball.sh --ref HEAD makes the cargo5 tarball twice,
#      byte for byte the same (else no hash could be published);
#   2. in a throwaway copy of the tree, with the .hash file the script wrote,
#      `make chatrelay-source` downloads it from the default release site
#      (file://<checkout>/target/buildroot-release) through Buildroot's
#      download wrapper and hash check, with BR2_DOWNLOAD_FORCE_CHECK_HASHES
#      from the defconfig, and keeps it as is (already vendored);
#   3. Buildroot's hash check refuses the tarball with one byte changed, and
#      refuses it with the committed chatrelay.hash (no release tagged yet,
#      so no hash in it).
# The download dependency host-rustc (cargo, for vendoring) is dropped for
# step 2 on the command line: a vendored tarball needs no vendoring, and
# host-rust-bin is a 200 MB download. buildroot/build-package.sh runs the
# same download with host-rustc and then builds from it.
#
#   bash scripts/buildroot-release-check.sh [BUILDROOT_TREE]
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "buildroot-release-check: $*" >&2; exit 1; }
BR=${1:-$(bash "$REPO/scripts/buildroot-tree.sh")} || die "no Buildroot tree"
t0=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
name=chatrelay-$(sed -n 's/^CHATRELAY_VERSION = //p' "$REPO/buildroot/package/chatrelay/chatrelay.mk")-cargo5.tar.gz

# A copy of the parts of the repo the package reads; its release site is the
# default one, <copy>/target/buildroot-release.
copy=$tmp/repo
mkdir -p "$copy"
cp -a "$REPO/buildroot" "$REPO/image" "$REPO/hardware" "$copy/"
site=$copy/target/buildroot-release
hash=$copy/buildroot/package/chatrelay/chatrelay.hash

echo "--- release tarball from HEAD, twice"
line=$(bash "$REPO/scripts/release-tarball.sh" --ref HEAD --out "$site" --write-hash "$hash") \
    || die "release-tarball.sh failed"
again=$(bash "$REPO/scripts/release-tarball.sh" --ref HEAD --out "$tmp/again") \
    || die "release-tarball.sh failed (second run)"
[ "$line" = "$again" ] || die "not reproducible: '$line' then '$again'"
echo "ok   reproducible: $line"
tar -tzf "$site/$name" >"$tmp/list" && grep -q '^[^/]*/VENDOR/' "$tmp/list" || die "$name holds no VENDOR/"

echo "--- make chatrelay-source (Buildroot's download + hash check)"
out=$tmp/output dl=$tmp/dl
make -s -C "$BR" O="$out" BR2_EXTERNAL="$copy/buildroot" chatrelay_rpi3_64_defconfig >"$tmp/make.log" 2>&1 \
    || { cat "$tmp/make.log"; die "defconfig does not load"; }
grep -qx 'BR2_DOWNLOAD_FORCE_CHECK_HASHES=y' "$out/.config" || die "defconfig lost BR2_DOWNLOAD_FORCE_CHECK_HASHES"
if ! make -C "$BR" O="$out" BR2_DL_DIR="$dl" CHATRELAY_DOWNLOAD_DEPENDENCIES= chatrelay-source >>"$tmp/make.log" 2>&1; then
    tail -n 30 "$tmp/make.log"; die "make chatrelay-source failed"
fi
grep -q "^$name: OK (sha256: " "$tmp/make.log" || { tail -n 30 "$tmp/make.log"; die "no hash check OK in the log"; }
cmp -s "$site/$name" "$dl/chatrelay/$name" || die "Buildroot's copy differs from the release tarball"
echo "ok   Buildroot downloaded $name, hash OK, kept as is"

echo "--- Buildroot's hash check refuses what it must"
check_hash() { (cd "$BR" && support/download/check-hash "$@") >"$tmp/check.log" 2>&1; }
cp "$site/$name" "$tmp/$name" && printf 'x' >>"$tmp/$name"
check_hash "$tmp/$name" "$name" "$hash"
rc=$?
[ "$rc" = 2 ] && grep -q 'has wrong sha256 hash' "$tmp/check.log" \
    || { cat "$tmp/check.log"; die "a changed tarball was not refused as a wrong hash (exit $rc)"; }
echo "ok   changed tarball: wrong sha256 hash"
check_hash "$site/$name" "$name" "$REPO/buildroot/package/chatrelay/chatrelay.hash"
rc=$?
if grep -q "  $name\$" "$REPO/buildroot/package/chatrelay/chatrelay.hash"; then
    # a release is recorded: HEAD is not that release, so its hash must differ
    [ "$rc" = 2 ] || { cat "$tmp/check.log"; die "HEAD's tarball passed the committed hash of a release (exit $rc)"; }
    echo "ok   committed chatrelay.hash names a release; HEAD's tarball is not it"
else
    [ "$rc" = 3 ] && grep -q 'No hash found' "$tmp/check.log" \
        || { cat "$tmp/check.log"; die "committed chatrelay.hash without a hash did not refuse (exit $rc)"; }
    echo "ok   committed chatrelay.hash (no release yet): no hash found, refused"
fi
echo "buildroot-release-check: $(( $(date +%s) - t0 )) s"
