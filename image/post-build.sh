#!/usr/bin/env bash
# Buildroot BR2_ROOTFS_POST_BUILD_SCRIPT (also run by image/build.sh on its
# stand-in root). $1 = TARGET_DIR. Runs after the rootfs overlay is copied.
# Makes the root fit a read-only squashfs with /data as the writable place.
set -euo pipefail
T=${1:?usage: post-build.sh TARGET_DIR}

# Buildroot package init scripts that we replace or must not run:
# syslogd/klogd (ours: S01logging, RAM only), seedrng/urandom (ours: S21seed
# in /data), ifupdown network (ours: S41network, DHCP on every interface),
# dropbear (ours: S51ssh, only with /boot/authorized_keys), watchdog (ours:
# S25watchdog), ntp; and servers the appliance does not run (busybox crond,
# telnetd, httpd, ifplugd).
for s in S01syslogd S01klogd S02klogd S02sysctl S15watchdog S20urandom S20seedrng \
         S40network S41ifplugd S49ntp S48sntp S49chrony S50crond S50telnet S50dropbear \
         S80dhcp-relay S80dhcp-server S90httpd; do
    rm -f "$T/etc/init.d/$s"
done

mkdir -p "$T/data" "$T/boot" "$T/run" "$T/tmp" "$T/proc" "$T/sys" "$T/dev" "$T/etc/chatrelay"
# /var/log must be a link into /tmp (Buildroot's skeleton has it already)
if [ ! -L "$T/var/log" ]; then mkdir -p "$T/var"; rm -rf "$T/var/log"; ln -s ../tmp "$T/var/log"; fi
ln -sfn ../run/resolv.conf "$T/etc/resolv.conf"
# root's ~/.ssh lives in RAM, filled from /boot/authorized_keys
mkdir -p "$T/root"; rm -rf "$T/root/.ssh"; ln -s ../run/ssh "$T/root/.ssh"

# No default password anywhere: root is locked ("*": no password login,
# public-key SSH still possible when the user enables it).
if [ -f "$T/etc/shadow" ]; then
    sed -i -e 's/^root:[^:]*:/root:*:/' "$T/etc/shadow"
fi
if [ -f "$T/etc/passwd" ]; then
    sed -i -e 's/^root:[^:]*:/root:x:/' "$T/etc/passwd"
fi

# Clock floor for boards without an RTC (S22clock)
echo "${SOURCE_DATE_EPOCH:-$(date +%s)}" > "$T/etc/chatrelay/build-time"

[ -x "$T/usr/bin/chatrelay" ] || { echo "post-build: $T/usr/bin/chatrelay missing" >&2; exit 1; }
