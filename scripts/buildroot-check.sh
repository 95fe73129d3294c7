#!/usr/bin/env bash
# The buildroot-check stage of scripts/test.sh:
#   1. buildroot/check against Buildroot 2026.05.1 (scripts/buildroot-tree.sh:
#      ../shared's tarball, else buildroot.org's release) must pass;
#   2. the same check must FAIL on throwaway copies of the tree that are
#      broken on purpose (a defconfig that does not survive savedefconfig,
#      a package .mk check-package rejects, a Config.in that does not load).
#      A check that cannot fail proves nothing;
#   3. scripts/buildroot-release-check.sh: the release tarball is
#      reproducible and Buildroot downloads it with the hash it was given.
#
#   bash scripts/buildroot-check.sh        # exit 0: all of the above held
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
t0=$(date +%s)
die() { echo "buildroot-check: $*" >&2; exit 1; }

BR=$(bash "$REPO/scripts/buildroot-tree.sh") || die "no Buildroot tree"
# check-package needs python-magic and flake8 (Debian: python3-magic, flake8,
# for /usr/bin/python3; a pyenv python3 earlier in PATH may lack them).
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for p in python3 /usr/bin/python3; do
        if "$p" -c 'import magic, flake8' 2>/dev/null; then PY=$p; break; fi
    done
fi
[ -n "$PY" ] || die "no python3 with python-magic and flake8 (run scripts/install-test-deps.sh)"
export PYTHON=$PY

echo "--- buildroot/check on the tree as committed"
bash "$REPO/buildroot/check" "$BR" || die "buildroot/check failed on the committed tree"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# copy_tree NAME: a throwaway copy of the parts of the repo a check reads,
# with only chatrelay_rpi3_64_defconfig (each savedefconfig costs ~10 s)
copy_tree() {
    local d=$tmp/$1
    mkdir -p "$d"
    cp -a "$REPO/buildroot" "$REPO/image" "$REPO/hardware" "$d/"
    find "$d/buildroot/configs" -name '*_defconfig' ! -name chatrelay_rpi3_64_defconfig -delete
    echo "$d"
}
# expect_fail NAME PATTERN...: the check of copy NAME must exit 1 and print
# every PATTERN (one grep -E each)
passed=0
expect_fail() {
    local name=$1; shift
    local log=$tmp/$name.log rc pat
    bash "$tmp/$name/buildroot/check" "$BR" >"$log" 2>&1
    rc=$?
    [ "$rc" = 1 ] || { sed 's/^/    /' "$log"; die "$name: check exited $rc, expected 1"; }
    for pat in "$@"; do
        grep -Eq "$pat" "$log" || { sed 's/^/    /' "$log"; die "$name: no line matching '$pat'"; }
    done
    echo "ok   broken tree '$name': check fails ($(grep -c '^FAIL' "$log") FAIL lines)"
    passed=$((passed + 1))
}

echo "--- buildroot/check on broken copies (each must fail)"
# 1. an option the defconfig sets that Buildroot does not know, and a
#    check-package violation (trailing blank) in the package .mk
d=$(copy_tree unnormalised)
echo 'BR2_PACKAGE_CHATRELAY_NO_SUCH_OPTION=y' >>"$d/buildroot/configs/chatrelay_rpi3_64_defconfig"
sed -i 's/^CHATRELAY_LICENSE = .*/& /' "$d/buildroot/package/chatrelay/chatrelay.mk"
expect_fail unnormalised \
    '^FAIL chatrelay_rpi3_64_defconfig: (savedefconfig differs|kconfig warnings)' \
    '^FAIL check-package' 'chatrelay\.mk:[0-9]+: line contains trailing whitespace'
# 2. a defconfig that has drifted: an option dropped that the committed
#    file must keep (savedefconfig puts it back... or not: any diff fails)
d=$(copy_tree drifted)
sed -i '/^BR2_PACKAGE_CHATRELAY=y$/d; s/^BR2_PACKAGE_XZ=y$/BR2_PACKAGE_CHATRELAY=y\nBR2_PACKAGE_XZ=y/' \
    "$d/buildroot/configs/chatrelay_rpi3_64_defconfig"
expect_fail drifted '^FAIL chatrelay_rpi3_64_defconfig: savedefconfig differs'
# 3. a Config.in kconfig cannot read: no defconfig loads
d=$(copy_tree unparsable)
echo 'source "$BR2_EXTERNAL_CHATRELAY_PATH/package/chatrelay/Config.in.missing"' \
    >>"$d/buildroot/package/chatrelay/Config.in"
expect_fail unparsable '^FAIL chatrelay_rpi3_64_defconfig: does not load'

echo "--- the package's release path"
bash "$REPO/scripts/buildroot-release-check.sh" "$BR" || die "release path check failed"

echo "buildroot-check: committed tree passes, $passed broken copies fail, release path holds; $(( $(date +%s) - t0 )) s"
