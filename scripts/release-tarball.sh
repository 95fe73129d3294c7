#!/usr/bin/env bash
# Make the release source tarball Buildroot downloads for the chatrelay
# package, and its hash:
#
#   bash scripts/release-tarball.sh                # the tag v<version>
#   bash scripts/release-tarball.sh --ref HEAD     # a trial from any commit
#     [--out DIR]          default <repo>/target/buildroot-release, which is
#                          where BR2_PACKAGE_CHATRELAY_RELEASE_SITE points by
#                          default
#     [--write-hash FILE]  also write a Buildroot .hash file (the project's
#                          is buildroot/package/chatrelay/chatrelay.hash)
#
# Output: DIR/chatrelay-<version>-cargo5.tar.gz and its .sha256; prints the
# hash line. The tarball is what Buildroot 2026.05's cargo download
# post-process writes when it vendors a plain source tarball of the same
# commit: the tree of `git archive REF` below chatrelay-<version>/, with
#   - VENDOR/ from `cargo vendor --manifest-path Cargo.toml --locked VENDOR`
#     and .cargo/config.toml replaced by what that command prints;
#   - packed as a reproducible POSIX tar: regular files and links only (no
#     directory entries), sorted by name in the C locale, owner and group 0
#     (numeric), modes go=u,go-w, every mtime set to the date of the first
#     file of the unvendored tree (a git archive: the commit date), pax
#     extended headers named %d/PaxHeaders/%f without atime/ctime/mtime
#     records, then gzip -6 -n.
# Because Buildroot finds VENDOR/ in it, it uses the tarball as it is.
# The bytes depend on the cargo, GNU tar and gzip used: for the same hash
# as a Buildroot build would compute, use the cargo of Buildroot's
# host-rust-bin (CARGO=<output>/host/bin/cargo; Buildroot 2026.05.1: 1.96.1)
# and GNU tar >= 1.35 (TAR=...), which Buildroot itself requires.
# Env: CARGO (default cargo), TAR (default tar), CARGO_HOME (crate cache;
# crates not in it come from crates.io).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "release-tarball: $*" >&2; exit 1; }

ref="" out=$REPO/target/buildroot-release hashfile=""
while [ $# -gt 0 ]; do
    case $1 in
    --ref) ref=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --write-hash) hashfile=${2:?}; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
CARGO=${CARGO:-cargo}
TAR=${TAR:-tar}

version=$(sed -n 's/^CHATRELAY_VERSION = //p' "$REPO/buildroot/package/chatrelay/chatrelay.mk")
[ -n "$version" ] || die "no CHATRELAY_VERSION in buildroot/package/chatrelay/chatrelay.mk"
crate_version=$(git -C "$REPO" show "${ref:-HEAD}:Cargo.toml" 2>/dev/null \
    | sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' | head -n 1)
ref=${ref:-v$version}
git -C "$REPO" rev-parse -q --verify "$ref^{commit}" >/dev/null \
    || die "no commit '$ref' (tag v$version first, or pass --ref HEAD for a trial)"
[ "$crate_version" = "$version" ] \
    || die "Cargo.toml at $ref says version '$crate_version', chatrelay.mk says $version"

base=chatrelay-$version
name=$base-cargo5.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The plain source, as a download of the tag would give it.
mkdir "$tmp/$base"
git -C "$REPO" archive --format=tar "$ref" | "$TAR" -C "$tmp/$base" -xf -
# (The whole list is read: `head` closing the pipe early made sort die of
# SIGPIPE, which pipefail turned into a failed run once the tree was large.)
first=$(cd "$tmp/$base" && find . -type f -print0 | LC_ALL=C sort -z |
    { IFS= read -r -d '' f; printf '%s' "$f"; cat >/dev/null; })
epoch=$(stat -c %Y "$tmp/$base/$first")

# Vendor the crates.
(cd "$tmp/$base" && mkdir -p .cargo &&
    "$CARGO" vendor --manifest-path Cargo.toml --locked VENDOR >.cargo/config.toml) 2>"$tmp/vendor.log" \
    || { cat "$tmp/vendor.log" >&2; die "cargo vendor failed"; }

# Pack.
date=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%S+00:00)
(cd "$tmp/$base" && find . ! -type d | LC_ALL=C sort) >"$tmp/files"
(cd "$tmp/$base" && "$TAR" -cf - --format=posix \
    --pax-option="delete=atime,delete=ctime,delete=mtime,exthdr.name=%d/PaxHeaders/%f,exthdr.mtime={$date}" \
    --numeric-owner --owner=0 --group=0 --mode=go=u,go-w --mtime="$date" \
    --transform="s#^\./#$base/#S" -T "$tmp/files") | gzip -6 -n >"$tmp/$name"

mkdir -p "$out"
mv "$tmp/$name" "$out/$name"
sum=$(sha256sum "$out/$name" | cut -d' ' -f1)
line="sha256  $sum  $name"
echo "$line" >"$out/$name.sha256"
if [ -n "$hashfile" ]; then
    commit=$(git -C "$REPO" rev-parse "$ref^{commit}")
    {
        echo "# Locally computed by scripts/release-tarball.sh from $ref ($commit):"
        echo "# the cargo5 tarball, crates vendored as Buildroot 2026.05 vendors them."
        echo "# Developer builds with CHATRELAY_OVERRIDE_SRCDIR are not hashed."
        echo "$line"
    } >"$hashfile"
fi
echo "release-tarball: $out/$name ($(du -h "$out/$name" | cut -f1); $("$CARGO" --version); $("$TAR" --version | head -n 1))" >&2
echo "$line"
