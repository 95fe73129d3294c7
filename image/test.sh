#!/usr/bin/env bash
# The appliance's emulation test: build the image from this checkout (Debian
# stand-ins for what Buildroot builds, the real cross-compiled chatrelay),
# then boot it under QEMU and check it from the host (image/emutest.py).
#
#   bash image/install-deps.sh    # once, as root
#   bash image/test.sh            # ends with "N passed, M failed"; exit 1 on failure
#
# Env: IMAGE_TEST_SKIP_BUILD=1 reuses target/image/binaries;
#      IMAGE_TEST_{IMAPS,SMTPS,HTTPS,SSH,RPI}_PORT fix the host ports
#      (127.0.0.1 only; default: free ports picked at start).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
t0=$(date +%s)

fail() { echo "image/test.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

for t in qemu-system-aarch64 genimage mksquashfs mcopy gpg ssh-keygen sfdisk; do
    command -v "$t" >/dev/null || fail "$t missing: run 'bash image/install-deps.sh' first"
done
if [ "${IMAGE_TEST_SKIP_BUILD:-0}" != 1 ]; then
    bash "$HERE/build.sh" || fail "image/build.sh failed"
fi
tb=$(date +%s)
echo "image/test.sh: build stage $((tb - t0)) s"

PY=python3
[ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python
"$PY" "$HERE/emutest.py"
rc=$?
echo "image/test.sh: total $(( $(date +%s) - t0 )) s (build $((tb - t0)) s, emulation $(( $(date +%s) - tb )) s)"
exit $rc
