#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine.
# Idempotent: a second run does (almost) nothing.
#
#   - Debian packages the tests use (gnupg: the e2e tests encrypt real
#     OpenPGP messages with gpg).
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
# The strict iroh realtime e2e test drops UDP inside its own network namespace.
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then apt_install "${need[@]}"; fi

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
    "$VENV/bin/python" -c 'import deltachat_rpc_client, pytest, pytest_timeout, imap_tools, requests' 2>/dev/null &&
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
# The appliance image (image/test.sh).
if [ -f image/install-deps.sh ]; then
    log "running image/install-deps.sh"
    bash image/install-deps.sh
fi
log "done"
