#!/usr/bin/env bash
# Buildroot BR2_ROOTFS_POST_IMAGE_SCRIPT (also run by image/build.sh).
#   post-image.sh BINARIES_DIR BOARD
# BOARD is one of hardware/*/ (rpi3_64, rpi4_64, rpi5, zero2w_64), passed via
# BR2_ROOTFS_POST_SCRIPT_ARGS. Expects in BINARIES_DIR: Image, *.dtb,
# rootfs.squashfs, rpi-firmware/ (Buildroot's rpi-firmware package).
# Produces BINARIES_DIR/sdcard.img: MBR, 4 MiB aligned:
#   1 FAT32 "CHATRELAY" 64M  firmware, kernel, DTBs, config.txt, cmdline.txt
#   2 squashfs root (read-only)
#   3 ext4 "data" (grown to fill the card on first boot)
set -euo pipefail
B=${1:?usage: post-image.sh BINARIES_DIR BOARD}
BOARD=${2:?usage: post-image.sh BINARIES_DIR BOARD}
HERE=$(cd "$(dirname "$0")" && pwd)
HW=$HERE/../hardware/$BOARD
[ -d "$HW" ] || { echo "post-image: unknown board $BOARD (no $HW)" >&2; exit 1; }
for f in Image rootfs.squashfs; do
    [ -f "$B/$f" ] || { echo "post-image: $B/$f missing" >&2; exit 1; }
done

boot=$B/boot.d
rm -rf "$boot"; mkdir -p "$boot"
if [ -d "$B/rpi-firmware" ]; then
    for f in "$B"/rpi-firmware/*; do
        case "${f##*/}" in config.txt|cmdline.txt) continue;; esac
        cp -r "$f" "$boot/"
    done
fi
cp "$B"/*.dtb "$boot/" 2>/dev/null || true
cp "$B/Image" "$boot/Image"
cp "$HW/config.txt" "$HW/cmdline.txt" "$boot/"
cp "$HERE"/boot-files/* "$boot/"

files=
for f in "$boot"/*; do files="$files\"boot.d/${f##*/}\", "; done
files=${files%, }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/root/data"
sed -e "s|@BOOT_FILES@|$files|" "$HERE/genimage.cfg.in" > "$tmp/genimage.cfg"
rm -f "$B/sdcard.img"
genimage --config "$tmp/genimage.cfg" --rootpath "$tmp/root" --tmppath "$tmp/genimage.tmp" \
    --inputpath "$B" --outputpath "$B" >"$tmp/genimage.log" 2>&1 \
    || { cat "$tmp/genimage.log" >&2; exit 1; }
echo "post-image: $B/sdcard.img ($(du -m "$B/sdcard.img" | cut -f1) MiB)"
