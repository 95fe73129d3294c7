#!/usr/bin/env bash
# Build the chatrelay package alone with real Buildroot 2026.05.1, through
# its cargo-package infrastructure, from a fresh output directory with
# per-package directories and parallel make:
#
#   bash buildroot/build-package.sh        # as root on Debian 12 (apt-get)
#
#   1. a stand-in external toolchain, since Buildroot's own (gcc, binutils,
#      musl sources) is not downloadable here: Debian's gcc-aarch64-linux-gnu
#      with Debian's aarch64 musl (musl-dev:arm64, musl:arm64) and kernel
#      headers (linux-libc-dev-arm64-cross) copied into a sysroot, behind a
#      small wrapper (Buildroot refuses Debian's compiler as it is: its
#      --with-sysroot=/ makes it a "distribution toolchain"). Rust on musl
#      needs a C++-capable toolchain in Buildroot's eyes, so g++ is there
#      too, but its libstdc++ is Debian's glibc one: C++ programs would not
#      link (chatrelay has no C++; ring's C builds fine);
#   2. host-rust-bin (Rust 1.96.1 from static.rust-lang.org, hash-checked by
#      Buildroot); rust-std for aarch64-unknown-linux-musl is fetched from
#      the dated dist path when the plain one has no copy;
#   3. make chatrelay -j2 with BR2_PER_PACKAGE_DIRECTORIES=y and
#      CHATRELAY_OVERRIDE_SRCDIR=<this checkout>, then the binary must be a
#      static aarch64 executable that runs (qemu-aarch64-static, if present);
#   4. the release path with Buildroot's own cargo: `make chatrelay-source`
#      of the release tarball (scripts/release-tarball.sh with that cargo)
#      passes its hash, and Buildroot's own vendoring of the plain source of
#      the same commit gives the same bytes.
#
# Env: BR_PKG_WORK (default <repo>/target/buildroot-package; its output/ is
# removed first), BR_PKG_DL (downloads, kept; default
# ~/.cache/chatrelay-buildroot/dl), BR_PKG_JOBS (default 2),
# BR_PKG_KEEP_OUTPUT=1 (reuse output/, for debugging this script).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${BR_PKG_WORK:-$REPO/target/buildroot-package}
DL=${BR_PKG_DL:-${HOME:-/root}/.cache/chatrelay-buildroot/dl}
JOBS=${BR_PKG_JOBS:-2}
RUST_VERSION=1.96.1
RUST_STD=rust-std-$RUST_VERSION-aarch64-unknown-linux-musl.tar.xz
RUST_STD_DATED=https://static.rust-lang.org/dist/2026-06-30/$RUST_STD
die() { echo "build-package: ERROR: $*" >&2; exit 1; }
log() { echo "build-package: $(date +%T) $*" >&2; }
t0=$(date +%s)

# --- host packages ----------------------------------------------------------
need=()
for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu linux-libc-dev-arm64-cross musl-dev:arm64 musl:arm64; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    log "apt-get install ${need[*]}"
    apt-get update -q >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null \
        || die "apt-get install ${need[*]} failed"
fi

BR=$(bash "$REPO/scripts/buildroot-tree.sh") || die "no Buildroot tree"
mkdir -p "$WORK" "$DL"
OUT=$WORK/output
# BR_PKG_KEEP_OUTPUT=1 continues in the old output dir (debugging only)
[ "${BR_PKG_KEEP_OUTPUT:-0}" = 1 ] || rm -rf "$OUT"

# --- 1. the stand-in toolchain -----------------------------------------------
TC=$WORK/toolchain
SYSROOT=$TC/aarch64-linux-musl/sysroot
if [ ! -f "$TC/.done" ]; then
    log "stand-in toolchain in $TC"
    rm -rf "$TC"
    mkdir -p "$TC/bin" "$SYSROOT/usr/include" "$SYSROOT/usr/lib" "$SYSROOT/lib"
    cp -a /usr/include/aarch64-linux-musl/. "$SYSROOT/usr/include/"
    for d in asm asm-generic drm linux misc mtd rdma scsi sound video xen; do
        cp -a "/usr/aarch64-linux-gnu/include/$d" "$SYSROOT/usr/include/"
    done
    cp -a /usr/lib/aarch64-linux-musl/*.a /usr/lib/aarch64-linux-musl/*.o "$SYSROOT/usr/lib/"
    cp -a /lib/aarch64-linux-musl/libc.so "$SYSROOT/usr/lib/libc.so"
    ln -s ../usr/lib/libc.so "$SYSROOT/lib/ld-musl-aarch64.so.1"
    # The compiler: Debian's, on the musl sysroot (Buildroot's wrapper adds
    # its own --sysroot=<staging> after this one). It answers Buildroot's
    # probes as a relocatable toolchain would: -v shows this sysroot, not /.
    for c in gcc g++; do
        cat >"$TC/bin/aarch64-linux-musl-$c" <<EOF
#!/bin/sh
if [ "\$#" = 1 ] && [ "\$1" = -v ]; then
    aarch64-linux-gnu-$c -v 2>&1 | sed 's#--with-sysroot=/ #--with-sysroot=$SYSROOT #' >&2
    exit 0
fi
if [ "\$#" = 1 ] && [ "\$1" = -print-sysroot ]; then echo "$SYSROOT"; exit 0; fi
# Debian's gcc also searches its glibc dir outside any sysroot: answer for
# the musl libraries first (Buildroot finds the sysroot from libc.a's path)
for a in "\$@"; do
    case \$a in -print-file-name=*)
        for d in "$SYSROOT/usr/lib" "$SYSROOT/lib"; do
            if [ -e "\$d/\${a#-print-file-name=}" ]; then echo "\$d/\${a#-print-file-name=}"; exit 0; fi
        done ;;
    esac
done
exec aarch64-linux-gnu-$c --sysroot="$SYSROOT" -Wl,--dynamic-linker=/lib/ld-musl-aarch64.so.1 "\$@"
EOF
        chmod +x "$TC/bin/aarch64-linux-musl-$c"
    done
    ln -s aarch64-linux-musl-gcc "$TC/bin/aarch64-linux-musl-cc"
    for t in addr2line ar as c++filt elfedit gprof ld nm objcopy objdump ranlib readelf size strings strip; do
        ln -s "/usr/bin/aarch64-linux-gnu-$t" "$TC/bin/aarch64-linux-musl-$t"
    done
    for t in cpp gcc-ar gcc-nm gcc-ranlib; do
        ln -s "/usr/bin/aarch64-linux-gnu-$t" "$TC/bin/aarch64-linux-musl-$t"
    done
    touch "$TC/.done"
fi
gccv=$(aarch64-linux-gnu-gcc -dumpversion | cut -d. -f1)
hdrs=$(sed -n 's/^#define LINUX_VERSION_MAJOR \([0-9]*\)/\1/p; s/^#define LINUX_VERSION_PATCHLEVEL \([0-9]*\)/\1/p' \
    "$SYSROOT/usr/include/linux/version.h" | paste -sd_)
[ -n "$gccv" ] || die "cannot tell the gcc version"
[ -n "$hdrs" ] || die "cannot tell the kernel headers version"

# --- 2. Rust: rust-std for aarch64 musl from the dated path if need be -------
mkdir -p "$DL/rust-bin"
if [ ! -f "$DL/rust-bin/$RUST_STD" ] \
   && ! curl -fsS -o /dev/null -I "https://static.rust-lang.org/dist/$RUST_STD" 2>/dev/null; then
    log "fetching $RUST_STD from the dated dist path (Buildroot checks its hash)"
    curl -fsSL --retry 3 -o "$DL/rust-bin/$RUST_STD.part" "$RUST_STD_DATED" || die "cannot download $RUST_STD_DATED"
    mv "$DL/rust-bin/$RUST_STD.part" "$DL/rust-bin/$RUST_STD"
fi

# --- musl-compat-headers: Buildroot adds NetBSD's sys/queue.h to every musl
# toolchain, downloaded from raw.githubusercontent.com (or sources.buildroot.net).
# Where neither answers, hand it Debian's libbsd copy of that header under
# another name (so the NetBSD file's hash is not claimed for it), unhashed.
QUEUE_URL=https://raw.githubusercontent.com/NetBSD/src/03be82a6b173b3c62116b7a186067fed3004dd44/sys/sys/queue.h
QUEUEVARS=()
if ! curl -fsS -o /dev/null -I -m 20 "$QUEUE_URL" 2>/dev/null \
   && ! curl -fsS -o /dev/null -I -m 20 https://sources.buildroot.net/musl-compat-headers/queue.h 2>/dev/null; then
    q=$WORK/standin/queue-libbsd.h
    if [ ! -f "$q" ]; then
        log "sys/queue.h not downloadable: using Debian libbsd-dev's copy as a stand-in"
        rm -rf "$WORK/standin"; mkdir -p "$WORK/standin/deb"
        (cd "$WORK/standin" && apt-get download libbsd-dev >/dev/null 2>&1) || die "apt-get download libbsd-dev failed"
        dpkg-deb -x "$WORK"/standin/libbsd-dev_*.deb "$WORK/standin/deb"
        cp "$WORK/standin/deb/usr/include/bsd/sys/queue.h" "$q"
    fi
    # placed in the download dir, where Buildroot takes it from (its
    # downloaders cannot fetch a file:// extra download)
    mkdir -p "$DL/musl-compat-headers"
    cp "$q" "$DL/musl-compat-headers/queue-libbsd.h"
    QUEUEVARS=(MUSL_COMPAT_HEADERS_QUEUE_H="file://$q" BR_NO_CHECK_HASH_FOR=queue-libbsd.h)
fi

# --- 3. make chatrelay ---------------------------------------------------------
mkdir -p "$OUT"
cat >"$WORK/package_defconfig" <<EOF
BR2_aarch64=y
BR2_DL_DIR="$DL"
BR2_PER_PACKAGE_DIRECTORIES=y
BR2_TOOLCHAIN_EXTERNAL=y
BR2_TOOLCHAIN_EXTERNAL_CUSTOM=y
BR2_TOOLCHAIN_EXTERNAL_PATH="$TC"
BR2_TOOLCHAIN_EXTERNAL_CUSTOM_PREFIX="aarch64-linux-musl"
BR2_TOOLCHAIN_EXTERNAL_GCC_$gccv=y
BR2_TOOLCHAIN_EXTERNAL_HEADERS_$hdrs=y
BR2_TOOLCHAIN_EXTERNAL_CUSTOM_MUSL=y
BR2_TOOLCHAIN_EXTERNAL_CXX=y
BR2_TOOLCHAIN_EXTERNAL_OPENMP=y
BR2_TOOLCHAIN_EXTERNAL_HAS_SSP=y
BR2_INIT_NONE=y
BR2_SYSTEM_BIN_SH_NONE=y
# BR2_PACKAGE_BUSYBOX is not set
# BR2_TARGET_ROOTFS_TAR is not set
BR2_PACKAGE_CHATRELAY=y
EOF
echo "CHATRELAY_OVERRIDE_SRCDIR = $REPO" >"$OUT/local.mk"
# Debian 12's tar is 1.34; Buildroot would build host-tar (>= 1.35), whose
# source is not downloadable here. Its own check is for reproducible
# archives it creates, which this build does not make.
MAKEVARS=(TAR=/usr/bin/tar BR2_TAR_HOST_DEPENDENCY= "${QUEUEVARS[@]}")
make -s -C "$BR" O="$OUT" BR2_EXTERNAL="$HERE" defconfig BR2_DEFCONFIG="$WORK/package_defconfig" >"$WORK/defconfig.log" 2>&1 \
    || { cat "$WORK/defconfig.log"; die "the package defconfig does not load"; }
for opt in BR2_PER_PACKAGE_DIRECTORIES BR2_TOOLCHAIN_EXTERNAL_CUSTOM_MUSL "BR2_TOOLCHAIN_EXTERNAL_GCC_$gccv" \
           "BR2_TOOLCHAIN_EXTERNAL_HEADERS_$hdrs" BR2_PACKAGE_HOST_RUSTC BR2_PACKAGE_CHATRELAY; do
    grep -qx "$opt=y" "$OUT/.config" || die "$opt did not stick in .config (see $WORK/defconfig.log)"
done
log "make chatrelay -j$JOBS (log: $WORK/make.log)"
tb=$(date +%s)
if ! make -C "$BR" O="$OUT" "${MAKEVARS[@]}" -j"$JOBS" chatrelay >"$WORK/make.log" 2>&1; then
    tail -n 40 "$WORK/make.log"; die "make chatrelay failed"
fi
build_s=$(( $(date +%s) - tb ))
bin=$OUT/per-package/chatrelay/target/usr/bin/chatrelay
[ -f "$bin" ] || die "no $bin"
python3 - "$bin" <<'PY' || die "$bin is not a static aarch64 executable"
import struct, sys
d = open(sys.argv[1], 'rb').read(1 << 16)
assert d[:4] == b'\x7fELF' and d[4] == 2 and struct.unpack_from('<H', d, 18)[0] == 0xb7, 'not aarch64'
phoff, = struct.unpack_from('<Q', d, 32); phentsize, phnum = struct.unpack_from('<HH', d, 54)
assert all(struct.unpack_from('<I', d, phoff + i * phentsize)[0] != 3 for i in range(phnum)), 'dynamic'
PY
if command -v qemu-aarch64-static >/dev/null; then
    v=$(qemu-aarch64-static "$bin" version 2>&1) || die "$bin does not run under qemu-aarch64-static: $v"
    log "runs: $v"
fi
[ "${BR_PKG_KEEP_OUTPUT:-0}" = 1 ] || grep -q 'Syncing from source dir' "$WORK/make.log" \
    || die "the build did not use the override source dir"
log "make chatrelay: ${build_s} s; $(du -h "$bin" | cut -f1) static aarch64 binary"

# --- 4. the release path with Buildroot's cargo --------------------------------
cargo=$OUT/per-package/chatrelay/host/bin/cargo
[ -x "$cargo" ] || die "no Buildroot cargo at $cargo"
rel=$WORK/release
rm -rf "$rel"; mkdir -p "$rel/repo" "$rel/dl" "$rel/dl2"
cp -a "$REPO/buildroot" "$rel/repo/"
line=$(CARGO=$cargo bash "$REPO/scripts/release-tarball.sh" --ref HEAD --out "$rel/repo/target/buildroot-release" \
    --write-hash "$rel/repo/buildroot/package/chatrelay/chatrelay.hash") || die "release-tarball.sh failed"
name=$(echo "$line" | awk '{print $3}')
base=${name%-cargo5.tar.gz}
# In the same output dir (host-rustc is built there), as a release build:
# no override, the copy of the tree whose .hash the script wrote.
RELVARS=(BR2_EXTERNAL="$rel/repo/buildroot" CHATRELAY_OVERRIDE_SRCDIR= "${MAKEVARS[@]}")
# (a) Buildroot downloads the release tarball and accepts its hash
rm -rf "$OUT/build/$base"
if ! make -C "$BR" O="$OUT" "${RELVARS[@]}" BR2_DL_DIR="$rel/dl" chatrelay-source >"$rel/source.log" 2>&1; then
    tail -n 30 "$rel/source.log"; die "make chatrelay-source of the release tarball failed"
fi
grep -q "^$name: OK (sha256: " "$rel/source.log" || die "no hash OK for $name in $rel/source.log"
cmp -s "$rel/dl/chatrelay/$name" "$rel/repo/target/buildroot-release/$name" || die "Buildroot changed the release tarball"
log "release tarball: Buildroot's hash check OK, used as is ($line)"
# (b) Buildroot vendors the plain source of the same commit itself, as for a
# download of a tag: its result must pass the same hash (check-hash prints
# both hashes if not)
mkdir -p "$rel/plain-site"
rm -rf "$OUT/build/$base"    # (a)'s download stamp: download again
git -C "$REPO" archive --format=tar.gz --prefix="$base/" HEAD >"$rel/plain-site/$name"
if ! make -C "$BR" O="$OUT" "${RELVARS[@]}" BR2_DL_DIR="$rel/dl2" \
        BR2_PACKAGE_CHATRELAY_RELEASE_SITE="file://$rel/plain-site" chatrelay-source >"$rel/vendor.log" 2>&1; then
    tail -n 30 "$rel/vendor.log"; die "Buildroot's own vendoring of the plain source does not give the release tarball"
fi
grep -q "^$name: OK (sha256: " "$rel/vendor.log" || die "no hash OK in $rel/vendor.log"
grep -q 'automatically updated by Buildroot' "$rel/vendor.log" || die "Buildroot did not vendor (see $rel/vendor.log)"
log "Buildroot's own vendoring of the plain source gives the same bytes"
log "done in $(( $(date +%s) - t0 )) s (make chatrelay ${build_s} s)"
