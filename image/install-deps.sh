#!/usr/bin/env bash
# Install what image/build.sh and image/test.sh need on a Debian bookworm
# host (amd64), as root.  Idempotent: a second run changes nothing and is fast.
#
#  - the Rust target aarch64-unknown-linux-musl (rustup)
#  - an aarch64 C cross compiler (ring builds a little C and assembly)
#  - qemu-system-arm / qemu-user-static from bookworm-backports
#    (bookworm's own qemu 7.2 would replace the machine's qemu-utils 10)
#  - image tools: genimage, squashfs-tools, mtools, dosfstools, e2fsprogs
#  - for image/test.sh: openssl (signs the iroh relay ClientInfo, makes
#    pebble's listener certificate), pebble + pebble-challtestsrv (the ACME
#    CA the domain-mode boot gets its certificate from)
#  - the Debian arm64 packages that stand in for what Buildroot builds
#    (kernel, busybox, Raspberry Pi firmware) are *downloaded* (not installed)
#    by image/build.sh into its cache, using the apt lists set up here.
set -euo pipefail

die() { echo "install-deps: ERROR: $*" >&2; exit 1; }
log() { echo "install-deps: $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get install)"
command -v apt-get >/dev/null || die "apt-get not found: a Debian host is required"

. /etc/os-release
codename=${VERSION_CODENAME:-bookworm}

# --- apt sources: backports (qemu) and non-free-firmware (raspi-firmware) ----
changed=0
src=/etc/apt/sources.list.d/chatrelay-image.sources
want="Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}
Components: non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"
if [ ! -f "$src" ] || [ "$(cat "$src")" != "$(printf '%s' "$want")" ]; then
    printf '%s' "$want" > "$src"
    changed=1
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    changed=1
fi

pkgs_main="gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-dev:arm64 genimage squashfs-tools mtools dosfstools e2fsprogs kmod cpio zstd xz-utils fdisk python3 gnupg openssh-client openssl pebble"
pkgs_bpo="qemu-system-arm qemu-user-static"

missing=""
for p in $pkgs_main $pkgs_bpo; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# qemu must be the backports one (>= 8) for the machines we use
if command -v qemu-system-aarch64 >/dev/null; then
    v=$(qemu-system-aarch64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
    [ "${v:-0}" -ge 8 ] || missing="$missing qemu-system-arm"
fi

# raspi-firmware's .deb and the arm64 kernel/busybox are fetched by build.sh;
# the lists must know them: update when sources changed or lists are missing.
if [ "$changed" = 1 ] || [ -n "$missing" ] || ! apt-cache show raspi-firmware >/dev/null 2>&1 \
   || ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
    log "apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed"
fi

if [ -n "$missing" ]; then
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # main packages (no backports pin), then qemu from backports
    main_missing=""; bpo_missing=""
    for p in $missing; do
        case " $pkgs_bpo " in *" $p "*) bpo_missing="$bpo_missing $p";; *) main_missing="$main_missing $p";; esac
    done
    if [ -n "$main_missing" ]; then
        apt-get install -y -q --no-install-recommends $main_missing >/dev/null \
            || die "apt-get install$main_missing failed"
    fi
    if [ -n "$bpo_missing" ]; then
        apt-get install -y -q --no-install-recommends -t "${codename}-backports" $bpo_missing >/dev/null \
            || die "apt-get install -t ${codename}-backports$bpo_missing failed"
    fi
fi

for t in depmod ssh-keygen gpg qemu-system-aarch64 qemu-aarch64-static genimage mksquashfs mcopy mkfs.vfat mkfs.ext4 aarch64-linux-gnu-gcc; do
    command -v "$t" >/dev/null || die "$t still missing after install"
done
apt-cache show raspi-firmware >/dev/null 2>&1 || die "raspi-firmware unknown to apt (non-free-firmware component)"

# --- Rust target ----------------------------------------------------------
command -v rustup >/dev/null || die "rustup not found: cannot add aarch64-unknown-linux-musl"
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-musl; then
    log "rustup target add aarch64-unknown-linux-musl"
    rustup target add aarch64-unknown-linux-musl \
        || die "rustup target add aarch64-unknown-linux-musl failed (is the Rust dist server reachable?)"
fi
log "ok: $(qemu-system-aarch64 --version | head -1)"
