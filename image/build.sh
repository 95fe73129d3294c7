#!/usr/bin/env bash
# Build the appliance image on a Debian host *without* Buildroot, for the
# emulation test: Debian's arm64 kernel, busybox-static and raspi-firmware
# stand in for what Buildroot builds; everything the project owns (overlay,
# init scripts, post-build.sh, post-image.sh, genimage layout, hardware/
# config.txt + cmdline.txt, and the chatrelay binary cross-compiled from this
# checkout) is the real thing.
#
#   bash image/build.sh            -> $WORK/binaries/{sdcard.img,Image,initrd.img,*.dtb}
#
# Env: CHATRELAY_IMAGE_WORK (default: <repo>/target/image), CHATRELAY_IMAGE_BIN
# (use this static aarch64 binary instead of building one; CHATRELAY_BIN is the
# e2e tests' native binary and is ignored here), BOARD (default rpi3_64).
# Run image/install-deps.sh first (as root).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${CHATRELAY_IMAGE_WORK:-$REPO/target/image}
BOARD=${BOARD:-rpi3_64}
TRIPLE=aarch64-unknown-linux-musl
DL=$WORK/dl
DEB=$WORK/deb
ROOT=$WORK/target-root
BIN=$WORK/binaries

die() { echo "build.sh: ERROR: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }
for t in apt-get dpkg-deb mksquashfs genimage mcopy mkfs.vfat qemu-aarch64-static depmod cpio; do
    command -v "$t" >/dev/null || die "$t missing: run 'bash image/install-deps.sh' first"
done
mkdir -p "$DL" "$DEB" "$BIN"

# ---------------------------------------------------------------- chatrelay
if [ -n "${CHATRELAY_IMAGE_BIN:-}" ]; then
    relay=$CHATRELAY_IMAGE_BIN
else
    log "cross-compiling chatrelay for $TRIPLE"
    rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE" \
        || die "Rust target $TRIPLE missing: run 'bash image/install-deps.sh'"
    ( cd "$REPO" && CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
        AR_aarch64_unknown_linux_musl=aarch64-linux-gnu-ar \
        cargo build --release --locked --target "$TRIPLE" --bin chatrelay ) \
        || die "cross build of chatrelay failed"
    relay=${CARGO_TARGET_DIR:-$REPO/target}/$TRIPLE/release/chatrelay
fi
[ -f "$relay" ] || die "no chatrelay binary at $relay"
# must be a static aarch64 ELF: e_machine 0xb7, no PT_INTERP
python3 - "$relay" <<'EOF' || die "$relay is not a static aarch64 ELF"
import struct, sys
d = open(sys.argv[1], 'rb').read(1 << 16)
assert d[:4] == b'\x7fELF' and d[4] == 2 and struct.unpack_from('<H', d, 18)[0] == 0xb7
phoff, = struct.unpack_from('<Q', d, 32); phentsize, phnum = struct.unpack_from('<HH', d, 54)
assert all(struct.unpack_from('<I', d, phoff + i * phentsize)[0] != 3 for i in range(phnum)), 'dynamic'
EOF

# ---------------------------------------------------- Debian stand-in debs
fetch() { # fetch PKG[:arch]... into $DL (once); fails if apt cannot get them
    local need=()
    for p in "$@"; do
        local n=${p%%:*}
        ls "$DL/${n}_"*.deb >/dev/null 2>&1 || need+=("$p")
    done
    [ ${#need[@]} = 0 ] && return 0
    log "apt-get download ${need[*]}"
    ( cd "$DL" && apt-get download "${need[@]}" >/dev/null 2>"$WORK/apt-download.log" )
}
resolve_kernel() { # the versioned package behind Debian's linux-image-arm64
    local k
    k=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9][^ ]*-arm64\).*/\1/p' | head -n 1)
    [ -n "$k" ] || k=$(cd "$DL" && ls linux-image-*-arm64_*.deb 2>/dev/null | sed 's/_.*//' | head -n 1)
    [ -n "$k" ] || die "cannot resolve the arm64 kernel package (apt-get update? dpkg --add-architecture arm64?)"
    echo "$k"
}
userland="busybox-static:arm64 libc6:arm64 e2fsprogs:arm64 libext2fs2:arm64 libcom-err2:arm64 libblkid1:arm64
  libuuid1:arm64 libss2:arm64 fdisk:arm64 util-linux:arm64 libfdisk1:arm64 libsmartcols1:arm64 libmount1:arm64
  libselinux1:arm64 libpcre2-8-0:arm64 libreadline8:arm64 libtinfo6:arm64 libncursesw6:arm64
  dropbear-bin:arm64 libcrypt1:arm64 libtomcrypt1:arm64 libtommath1:arm64 libgmp10:arm64 zlib1g:arm64"
kpkg=$(resolve_kernel)
# shellcheck disable=SC2086
if ! fetch "$kpkg:arm64" raspi-firmware $userland; then
    # stale package lists (a superseded kernel ABI, say): refresh once, retry
    log "apt-get download failed; apt-get update and retry"
    apt-get update -q >/dev/null 2>&1 || true
    kpkg=$(resolve_kernel)
    # shellcheck disable=SC2086
    fetch "$kpkg:arm64" raspi-firmware $userland \
        || { cat "$WORK/apt-download.log" >&2; die "apt-get download failed (run image/install-deps.sh)"; }
fi
x() { # extract the deb of package $1 into $DEB/$1 (once); echo the dir
    local d=$DEB/$1
    if [ ! -d "$d" ]; then
        local f; f=$(ls "$DL/${1}_"*.deb | head -n 1)
        dpkg-deb -x "$f" "$d.tmp" && mv "$d.tmp" "$d"
    fi
    echo "$d"
}
KDIR=$(x "$kpkg")
KV=$(ls "$KDIR/lib/modules" | head -n 1)
FW=$(x raspi-firmware)

# ------------------------------------------------ stand-in target rootfs
log "assembling the root filesystem"
rm -rf "$ROOT"; mkdir -p "$ROOT"
# A Buildroot-like skeleton (system/skeleton + skeleton-init-sysv)
( cd "$ROOT"
  mkdir -p bin sbin lib usr/bin usr/sbin usr/lib etc/init.d dev proc sys tmp run root var mnt media
  ln -s ../tmp var/cache; ln -s ../tmp var/log; ln -s ../tmp var/lock; ln -s ../run var/run
  ln -s ../tmp var/tmp; ln -s ../tmp var/spool; mkdir -p var/lib; ln -s ../../tmp var/lib/misc
  chmod 1777 tmp; chmod 700 root
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n' > etc/passwd
  printf 'root::19000:0:99999:7:::\ndaemon:*:::::::\nnobody:*:::::::\n' > etc/shadow; chmod 600 etc/shadow
  printf 'root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n' > etc/group
  printf '/bin/sh\n' > etc/shells
  printf 'NAME=chatrelay\nID=chatrelay\nPRETTY_NAME="chatrelay appliance (Debian stand-in build)"\n' > etc/os-release
)
# busybox and its applet links
BB=$(x busybox-static)
cp "$BB/bin/busybox" "$ROOT/bin/busybox"
# glibc-linked e2fsprogs + sfdisk (Buildroot: BR2_PACKAGE_E2FSPROGS, util-linux fdisk)
for p in libc6 e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 libss2 fdisk libfdisk1 \
         libsmartcols1 libmount1 libselinux1 libpcre2-8-0 libreadline8 libtinfo6 libncursesw6 \
         libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g; do
    d=$(x "$p")
    for ld in lib lib/aarch64-linux-gnu usr/lib/aarch64-linux-gnu; do
        [ -d "$d/$ld" ] || continue
        mkdir -p "$ROOT/$ld"
        find "$d/$ld" -maxdepth 1 \( -name '*.so*' -o -name 'ld-linux*' \) -exec cp -a {} "$ROOT/$ld/" \;
    done
done
E2=$(x e2fsprogs)
for b in resize2fs mke2fs e2fsck; do cp "$E2/sbin/$b" "$ROOT/sbin/$b"; done
ln -s mke2fs "$ROOT/sbin/mkfs.ext4"
cp "$E2/etc/mke2fs.conf" "$ROOT/etc/mke2fs.conf"
cp "$(x fdisk)/sbin/sfdisk" "$ROOT/sbin/sfdisk"
cp "$(x util-linux)/usr/bin/partx" "$ROOT/sbin/partx"
# dropbear (Buildroot: BR2_PACKAGE_DROPBEAR), started only with /boot/authorized_keys
DB=$(x dropbear-bin)
cp "$DB/usr/sbin/dropbear" "$ROOT/usr/sbin/dropbear"
cp "$DB/usr/bin/dropbearkey" "$ROOT/usr/bin/dropbearkey"
qemu-aarch64-static "$ROOT/bin/busybox" --list-full | while read -r a; do
    [ -e "$ROOT/$a" ] || [ -L "$ROOT/$a" ] && continue
    mkdir -p "$ROOT/$(dirname "$a")"
    ln -s /bin/busybox "$ROOT/$a"
done
install -m 0755 "$relay" "$ROOT/usr/bin/chatrelay"
# the project's rootfs overlay, then its post-build script (as Buildroot does)
cp -a "$HERE/rootfs-overlay/." "$ROOT/"
bash "$HERE/post-build.sh" "$ROOT"
for b in sbin/sfdisk sbin/partx sbin/resize2fs sbin/mke2fs sbin/e2fsck usr/sbin/dropbear usr/bin/dropbearkey; do
    out=$(qemu-aarch64-static -L "$ROOT" "$ROOT/$b" -V 2>&1 || true)
    if echo "$out" | grep -q 'error while loading'; then
        die "stand-in $b does not run (missing library?)"
    fi
done

rm -f "$BIN/rootfs.squashfs"
mksquashfs "$ROOT" "$BIN/rootfs.squashfs" -comp zstd -all-root -noappend -quiet >/dev/null
log "rootfs.squashfs: $(du -k "$BIN/rootfs.squashfs" | cut -f1) KiB (chatrelay $(du -k "$relay" | cut -f1) KiB)"

# --------------------------------------------- kernel, DTBs, firmware
# Debian's vmlinuz is a gzip'd Image; the Pi firmware wants it plain.
zcat "$KDIR/boot/vmlinuz-$KV" > "$BIN/Image" 2>/dev/null || cp "$KDIR/boot/vmlinuz-$KV" "$BIN/Image"
rm -f "$BIN"/*.dtb
for dtb in bcm2837-rpi-3-b.dtb bcm2837-rpi-3-b-plus.dtb bcm2837-rpi-zero-2-w.dtb bcm2711-rpi-4-b.dtb \
           bcm2711-rpi-400.dtb bcm2711-rpi-cm4.dtb bcm2712-rpi-5-b.dtb; do
    f="$KDIR/usr/lib/linux-image-$KV/broadcom/$dtb"
    [ -f "$f" ] && cp "$f" "$BIN/"
done
rm -rf "$BIN/rpi-firmware"; mkdir -p "$BIN/rpi-firmware"
for f in bootcode.bin start.elf fixup.dat start4.elf fixup4.dat; do
    cp "$FW/usr/lib/raspi-firmware/$f" "$BIN/rpi-firmware/"
done

# Stand-in initramfs (Debian's kernel has its drivers as modules)
log "stand-in initramfs ($KV)"
ir=$WORK/initramfs
rm -rf "$ir"; mkdir -p "$ir/bin" "$ir/dev" "$ir/proc" "$ir/sys" "$ir/lib/modules/$KV"
cp "$BB/bin/busybox" "$ir/bin/busybox"
for a in sh modprobe insmod mount umount switch_root sleep cat mkdir ls; do ln -sf busybox "$ir/bin/$a"; done
mkdir -p "$ir/sbin"; ln -sf ../bin/busybox "$ir/sbin/modprobe"
install -m 0755 "$HERE/standin/init" "$ir/init"
mods="virtio_pci virtio_mmio virtio_blk virtio_net virtio-rng virtio_input squashfs ext4 crc32c_generic vfat
  nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 i6300esb bcm2835_wdt bcm2835-rng sdhci-iproc bcm2835
  dwc2 cdc_ether rndis_host smsc95xx"
printf '%s\n' $mods > "$ir/modules.list"
depmod -b "$KDIR" "$KV" 2>/dev/null
for m in $mods; do
    m2=$(echo "$m" | tr - _)
    grep -E "(^|/)($m|$m2)\.ko:" "$KDIR/lib/modules/$KV/modules.dep" | tr -d ':' | tr ' ' '\n' || true
done | sort -u | while read -r k; do
    [ -n "$k" ] || continue
    mkdir -p "$ir/lib/modules/$KV/$(dirname "$k")"
    cp "$KDIR/lib/modules/$KV/$k" "$ir/lib/modules/$KV/$k"
done
depmod -b "$ir" "$KV" 2>/dev/null
( cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1 ) > "$BIN/initrd.img"

# ------------------------------------------------------- the SD image
bash "$HERE/post-image.sh" "$BIN" "$BOARD" >&2
log "done: $BIN/sdcard.img ($(du -m "$BIN/sdcard.img" | cut -f1) MiB), kernel $KV"
