#!/bin/sh
# Postfix + OpenDKIM for the federation interop tests (tests/federation_postfix.rs).
# Idempotent; the system Postfix instance is not started by this script.
set -eu
need=""
command -v postfix >/dev/null 2>&1 || need="$need postfix"
command -v opendkim >/dev/null 2>&1 || need="$need opendkim"
command -v opendkim-genkey >/dev/null 2>&1 || need="$need opendkim-tools"
if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections 2>/dev/null || true
    echo "postfix postfix/mailname string localhost" | debconf-set-selections 2>/dev/null || true
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $need
fi
# Keep the distribution's default instance off: the tests run their own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now postfix >/dev/null 2>&1 || true
fi
postfix -c /etc/postfix status >/dev/null 2>&1 && postfix -c /etc/postfix stop >/dev/null 2>&1 || true
exit 0
