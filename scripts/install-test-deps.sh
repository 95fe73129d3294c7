#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine.
# Idempotent: a second run does (almost) nothing.
#
#   - Debian packages the tests use (gnupg: the e2e tests encrypt real
#     OpenPGP messages with gpg; chromium + zbar-tools: the pages test).
#   - <repo>/.venv with the pinned packages of tests/e2e/requirements.txt
#     (Delta Chat core as deltachat-rpc-server, its Python client, pytest...).
#     The venv is rebuilt when requirements.txt changes or the venv is broken.
#   - image/install-deps.sh, when the appliance part of the repo provides it.
#
# Environment: PYTHON (interpreter for the venv, default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
REQ=tests/e2e/requirements.txt

log() { echo "install-test-deps: $*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# --- Debian packages -------------------------------------------------------
need=()
command -v gpg >/dev/null 2>&1 || need+=(gnupg)
command -v timeout >/dev/null 2>&1 || need+=(coreutils)
# The web pages in a real browser, and the QR code in its screenshot
# (tests/e2e/test_pages_browser.py).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v zbarimg >/dev/null 2>&1 || need+=(zbar-tools)
# buildroot-check: Buildroot's kconfig (make, a C compiler), its
# utils/check-package (python-magic + flake8 for /usr/bin/python3, shellcheck),
# curl for the Buildroot download when ../shared is absent.
for t in make gcc curl shellcheck; do command -v "$t" >/dev/null 2>&1 || need+=("$t"); done
/usr/bin/python3 -c 'import magic' 2>/dev/null || need+=(python3-magic)
/usr/bin/python3 -c 'import flake8' 2>/dev/null || need+=(flake8)
# Buildroot's own host-tool check (support/dependencies/dependencies.sh), for
# the `make chatrelay-source` of buildroot-check and buildroot/build-package.sh.
for tp in which:debianutils file:file perl:perl wget:wget cpio:cpio unzip:unzip rsync:rsync \
          bc:bc cmp:diffutils g++:g++ patch:patch bzip2:bzip2 git:git xz:xz-utils; do
    command -v "${tp%%:*}" >/dev/null 2>&1 || need+=("${tp#*:}")
done
# ACME tests: a real ACME server with validation (pebble, pebble-challtestsrv as its DNS)
# and libfaketime for the "clock far in the past" case.
command -v pebble >/dev/null 2>&1 || need+=(pebble)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# Router tests: miniupnpd (nftables backend) as the router in network
# namespaces, upnpc to list its mappings.
command -v miniupnpd >/dev/null 2>&1 || need+=(miniupnpd miniupnpd-nftables)
command -v upnpc >/dev/null 2>&1 || need+=(miniupnpc)
# The strict iroh realtime e2e test drops UDP inside its own network namespace.
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi
# coturn: only its test clients (turnutils_uclient/_peer) are used, against
# our TURN server (tests/turn_coturn.rs). Its daemon must not run (it would
# hold UDP 3478): a policy-rc.d stops the package's start, and a systemd
# unit that started anyway is stopped and disabled.
if ! command -v turnutils_uclient >/dev/null 2>&1; then
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        apt_install coturn
        $SUDO rm -f /usr/sbin/policy-rc.d
    else
        apt_install coturn
    fi
fi
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled coturn >/dev/null 2>&1; then
    $SUDO systemctl disable --now coturn >/dev/null 2>&1 || true
fi

# --- Python venv -----------------------------------------------------------
PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then
    apt_install python3 python3-venv
    PY=python3
fi
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
    echo "install-test-deps: $PY is older than 3.10" >&2
    exit 1
fi
if ! "$PY" -m venv --help >/dev/null 2>&1 || ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi

want=$(sha256sum "$REQ" | cut -d' ' -f1)
stamp=$VENV/.requirements.sha256
venv_ok() {
    [ -x "$VENV/bin/python" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] &&
    "$VENV/bin/python" -c 'import deltachat_rpc_client, pytest, pytest_timeout, imap_tools, requests, aioice' 2>/dev/null &&
    [ -x "$VENV/bin/deltachat-rpc-server" ]
}
if venv_ok; then
    log "venv $VENV is up to date"
else
    log "creating venv $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ"
    echo "$want" > "$stamp"
    venv_ok || { echo "install-test-deps: venv check failed after install" >&2; exit 1; }
fi
log "deltachat-rpc-server $("$VENV/bin/deltachat-rpc-server" --version 2>&1 | tail -n1)"

# --- other parts' dependencies ----------------------------------------------
# Postfix + OpenDKIM: the federation interop peer and the DKIM test oracle of
# the Rust tests (cargo test).
if [ -f tests/postfix/install.sh ]; then
    log "running tests/postfix/install.sh"
    sh tests/postfix/install.sh
fi
# Dovecot: writes the upstream-style fixture of tests/import_upstream.rs
# (its own instance; the distribution's service stays off).
if [ -f tests/dovecot/install.sh ]; then
    log "running tests/dovecot/install.sh"
    $SUDO sh tests/dovecot/install.sh
fi
# The appliance image (image/test.sh).
if [ -f image/install-deps.sh ]; then
    log "running image/install-deps.sh"
    bash image/install-deps.sh
fi
# buildroot/build-package.sh (the buildroot-package stage): the stand-in
# external toolchain's C++ compiler (its C compiler, musl-dev:arm64 and the
# arm64 kernel headers come with image/install-deps.sh above).
if ! command -v aarch64-linux-gnu-g++ >/dev/null 2>&1; then apt_install g++-aarch64-linux-gnu; fi
log "done"
