#!/usr/bin/env bash
# Print the path of an unpacked, verified Buildroot 2026.05.1 tree (the
# release buildroot/ is written for), unpacking it once into a cache dir.
#
#   tree=$(bash scripts/buildroot-tree.sh)
#
# Where the tree comes from, first that applies:
#   1. ../shared/buildroot/buildroot-2026.05.1.tar.gz beside this checkout
#      (CI machines and the project's build hosts have it): a `git archive`
#      of the tag, checked against SHARED_SHA256 below and the commit id
#      git archive wrote into it;
#   2. otherwise buildroot.org's release tarball, downloaded once, checked
#      against RELEASE_SHA256 below.
# A tarball that fails its check is an error, never used.
#
# Env: CHATRELAY_BUILDROOT_SOURCE=shared|download forces one of the two;
#      CHATRELAY_BUILDROOT_CACHE (default ~/.cache/chatrelay-buildroot).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
VERSION=2026.05.1
# The commit the tag 2026.05.1 peels to.
COMMIT=cb857ba4c87a93e5265a9e4a3f32071abf39e14a
# ../shared/buildroot/buildroot-2026.05.1.tar.gz: `git archive` of that
# commit (not the release tarball, which also holds the generated manual, so
# its hash differs). sha256sum of the file as it is in ../shared.
SHARED_SHA256=fb92af67492fe4300821933c1d74b123b6c8629c72581169427fb459a52968d1
# https://buildroot.org/downloads/buildroot-2026.05.1.tar.xz, the release
# tarball. buildroot.org is not reachable from the machines this was written
# on, so this is the hash two public projects recorded for that file (one of
# them after checking Buildroot's signed release message, for the same
# commit as above); the download path checks the file against it.
RELEASE_SHA256=ae7f706f087b9ae9083a10a587368dfbf53103c28bf81c2d690198dc4090cb58
RELEASE_URL=https://buildroot.org/downloads/buildroot-$VERSION.tar.xz

CACHE=${CHATRELAY_BUILDROOT_CACHE:-${HOME:-/root}/.cache/chatrelay-buildroot}
SHARED=$REPO/../shared/buildroot/buildroot-$VERSION.tar.gz
die() { echo "buildroot-tree: $*" >&2; exit 1; }
log() { echo "buildroot-tree: $*" >&2; }

source=${CHATRELAY_BUILDROOT_SOURCE:-}
if [ -z "$source" ]; then
    if [ -f "$SHARED" ]; then source=shared; else source=download; fi
fi
mkdir -p "$CACHE"

case $source in
shared)
    tarball=$SHARED
    [ -f "$tarball" ] || die "$tarball does not exist"
    want=$SHARED_SHA256
    ;;
download)
    tarball=$CACHE/buildroot-$VERSION.tar.xz
    want=$RELEASE_SHA256
    if [ ! -f "$tarball" ] || [ "$(sha256sum < "$tarball" | cut -d' ' -f1)" != "$want" ]; then
        log "downloading $RELEASE_URL"
        curl -fsSL --retry 3 -o "$tarball.part" "$RELEASE_URL" || die "download of $RELEASE_URL failed"
        mv "$tarball.part" "$tarball"
    fi
    ;;
*) die "CHATRELAY_BUILDROOT_SOURCE must be shared or download, not '$source'" ;;
esac

got=$(sha256sum < "$tarball" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "$tarball: sha256 $got, expected $want"
if [ "$source" = shared ]; then
    id=$(gzip -dc "$tarball" | git get-tar-commit-id 2>/dev/null || true)
    [ "$id" = "$COMMIT" ] || die "$tarball: git archive of '$id', expected $COMMIT"
fi

dest=$CACHE/$want
tree=$dest/buildroot-$VERSION
if [ ! -f "$dest/.unpacked" ]; then
    rm -rf "$dest"
    mkdir -p "$dest.tmp"
    tar -C "$dest.tmp" -xf "$tarball" || die "cannot unpack $tarball"
    [ -f "$dest.tmp/buildroot-$VERSION/Makefile" ] || die "$tarball holds no buildroot-$VERSION/"
    mv "$dest.tmp" "$dest"
    touch "$dest/.unpacked"
fi
grep -qx "export BR2_VERSION := $VERSION" "$tree/Makefile" || die "$tree is not Buildroot $VERSION"
log "Buildroot $VERSION from $source tarball ($want)"
echo "$tree"
