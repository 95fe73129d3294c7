#!/bin/sh
# Dovecot (Debian) for the import-upstream test (tests/import_upstream.rs):
# it writes the upstream-style fixture at test time. Idempotent; the
# distribution's dovecot service is kept off (the test runs its own
# instance from a private config, as an unprivileged process tree).
set -eu
if ! command -v doveadm >/dev/null 2>&1 || [ ! -x /usr/sbin/dovecot ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Do not start the service during installation (policy-rc.d, see
    # /usr/share/doc/init-system-helpers/README.policy-rc.d).
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends dovecot-core dovecot-imapd || { [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d; exit 1; }
    [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now dovecot >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
# A distribution instance (if one was started anyway) is stopped.
if [ -f /run/dovecot/master.pid ]; then
    doveadm -c /etc/dovecot/dovecot.conf stop >/dev/null 2>&1 || true
fi
exit 0
