#!/usr/bin/env bash
# THE test command of chatrelay: everything CI runs, in order.
#
#   1. install-deps   scripts/install-test-deps.sh (apt packages, .venv, image deps)
#   1b. buildroot-check  scripts/buildroot-check.sh: buildroot/check against
#                     Buildroot 2026.05.1 passes, and fails on broken copies;
#                     the release tarball's hash passes Buildroot's download
#   1c. buildroot-package  bash buildroot/build-package.sh: make chatrelay with
#                     real Buildroot (fresh output, per-package dirs, -j2)
#   2. build          cargo build --release
#   3. cargo-test     cargo test --release (unit + integration tests)
#   4. e2e            pytest tests/e2e against target/release/chatrelay, with
#                     real Delta Chat core (deltachat-rpc-server) from .venv
#   5. image          bash image/test.sh (when the appliance part provides it)
#
# Stops at the first failing stage with its exit code, and prints the time of
# every stage. Runs as root (tests bind the standard ports on 127.0.0.x).
#
# Environment:
#   CHATRELAY_E2E_ARGS      extra pytest arguments (e.g. "-k smtp -x")
#   CHATRELAY_SKIP_STAGES   space-separated stage names to leave out (local use
#                           only; CI sets nothing and so runs every stage)
#   *_TIMEOUT               per-stage limits in seconds, see below
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# OpenDKIM (an oracle of the Rust DKIM tests) refuses config and key files
# below a directory that other users can write, such as /tmp. When the
# checkout sits below one, build into a private target dir instead.
world_writable_ancestor() {
    local d=$ROOT
    while [ "$d" != "/" ]; do
        if [ -n "$(find "$d" -maxdepth 0 -perm -o+w 2>/dev/null)" ]; then return 0; fi
        d=$(dirname "$d")
    done
    return 1
}
if [ -z "${CARGO_TARGET_DIR:-}" ] && world_writable_ancestor; then
    export CARGO_TARGET_DIR="${HOME:-/root}/.cache/chatrelay-target/$(echo "$ROOT" | sha256sum | cut -c1-12)"
    mkdir -p "$CARGO_TARGET_DIR" && chmod 700 "${HOME:-/root}/.cache/chatrelay-target"
    echo "test.sh: $ROOT is below a world-writable directory; CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export CHATRELAY_BIN=${CHATRELAY_BIN:-$TARGET_DIR/release/chatrelay}

INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-1200}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800}
CARGO_TEST_TIMEOUT=${CARGO_TEST_TIMEOUT:-1800}
E2E_TIMEOUT=${E2E_TIMEOUT:-1500}
IMAGE_TEST_TIMEOUT=${IMAGE_TEST_TIMEOUT:-2700}
BUILDROOT_CHECK_TIMEOUT=${BUILDROOT_CHECK_TIMEOUT:-600}
BUILDROOT_PACKAGE_TIMEOUT=${BUILDROOT_PACKAGE_TIMEOUT:-1500}

T0=$(date +%s)
TIMINGS=()

print_timings() {
    echo
    echo "=== stage timings"
    local t
    for t in "${TIMINGS[@]}"; do echo "  $t"; done
    echo "  total: $(( $(date +%s) - T0 ))s"
}

skipped() { case " ${CHATRELAY_SKIP_STAGES:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# stage NAME TIMEOUT CMD...: run CMD under a time limit, record its time,
# stop everything on failure.
stage() {
    local name=$1 limit=$2; shift 2
    if skipped "$name"; then
        echo "=== stage $name: skipped (CHATRELAY_SKIP_STAGES)"
        TIMINGS+=("$(printf '%-14s skipped' "$name")")
        return 0
    fi
    echo
    echo "=== stage $name: $* (limit ${limit}s)"
    local start rc
    start=$(date +%s)
    timeout -k 30 "$limit" "$@"
    rc=$?
    TIMINGS+=("$(printf '%-14s %5ss  exit %s' "$name" "$(( $(date +%s) - start ))" "$rc")")
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "=== stage $name: TIMED OUT after ${limit}s"
        echo "=== stage $name: FAILED (exit $rc)"
        print_timings
        exit "$rc"
    fi
}

run_e2e() {
    # pytest exit codes: 0 all passed, 1 failures, 5 no test collected.
    # Collecting nothing means the harness is broken: that is a failure too.
    # shellcheck disable=SC2086
    "$ROOT/.venv/bin/python" -m pytest tests/e2e ${CHATRELAY_E2E_ARGS:-}
    local rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "e2e: pytest collected no tests (exit 5): treating as a failure"
        return 1
    fi
    return "$rc"
}

run_image_test() {
    if [ -f image/test.sh ]; then
        bash image/test.sh
    else
        echo "image/test.sh does not exist (yet): nothing to run"
    fi
}

# Inner entry points, so that `timeout` can run the shell functions above.
if [ "${1:-}" = "--stage" ]; then
    case "${2:-}" in
        e2e) run_e2e; exit $? ;;
        image) run_image_test; exit $? ;;
        *) echo "unknown stage ${2:-}" >&2; exit 2 ;;
    esac
fi

SELF=$ROOT/scripts/test.sh
stage install-deps "$INSTALL_TIMEOUT" bash scripts/install-test-deps.sh
stage buildroot-check "$BUILDROOT_CHECK_TIMEOUT" bash scripts/buildroot-check.sh
stage buildroot-package "$BUILDROOT_PACKAGE_TIMEOUT" bash buildroot/build-package.sh
stage build "$BUILD_TIMEOUT" cargo build --release
stage cargo-test "$CARGO_TEST_TIMEOUT" cargo test --release
stage e2e "$E2E_TIMEOUT" bash "$SELF" --stage e2e
stage image "$IMAGE_TEST_TIMEOUT" bash "$SELF" --stage image
print_timings
echo "scripts/test.sh: all stages passed"
