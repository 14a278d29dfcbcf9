#!/usr/bin/env bash
# Builds the Linux guest: an rv32 Linux 6.12 Image from Debian's linux-source-6.12
# (tinyconfig + guest-programs/linux/shadowvisor.config), our nolibc PID 1
# (guest-programs/linux/init.c) and an initramfs (cpio newc: /dev, /dev/console,
# /init) into guest-programs/bin/linux-Image and linux-initramfs.cpio.
#
# The kernel tree is unpacked and built outside the repository, in --work DIR
# (default /tmp/linux-build); a second run reuses it and rebuilds only what
# changed. Reproducible: fixed KBUILD_BUILD_TIMESTAMP/USER/HOST, no build-id,
# file-prefix maps, and a fixed mtime in the cpio.
#
#   --work DIR    where the kernel is unpacked and built
#   --out DIR     where the images go (default guest-programs/bin)
#   --jobs N      make -jN (default 2)
#   --init-only   rebuild init and the initramfs against an already built tree
#   --check       build into a temporary --out and compare with guest-programs/bin
#
# Needs (Debian bookworm): linux-source-6.12 gcc-riscv64-linux-gnu flex bison bc
# libelf-dev libssl-dev cpio.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/guest-programs/linux"
out="$root/guest-programs/bin"
work=/tmp/linux-build
jobs=2
init_only=0
check=0
usage() { echo "usage: $0 [--work DIR] [--out DIR] [--jobs N] [--init-only] [--check]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --work) [ $# -ge 2 ] || usage; work="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --jobs) [ $# -ge 2 ] || usage; jobs="$2"; shift 2 ;;
    --init-only) init_only=1; shift ;;
    --check) check=1; shift ;;
    *) usage ;;
  esac
done

if [ $check -eq 1 ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  args=(--work "$work" --out "$tmp" --jobs "$jobs")
  [ $init_only -eq 1 ] && args+=(--init-only)
  "$0" "${args[@]}"
  # Debian's security archive replaces linux-source-6.12 with each stable update:
  # the kernel then cannot match (its version string alone differs), so say so
  # and hold only the init to its bytes.
  version() { grep -a -o -m1 'Linux version [0-9][0-9.]*' "$1" | cut -d' ' -f3; }
  status=0
  for f in linux-initramfs.cpio $([ $init_only -eq 1 ] || echo linux-Image); do
    if [ "$f" = linux-Image ] && [ "$(version "$tmp/$f")" != "$(version "$root/guest-programs/bin/$f")" ]; then
      echo "NOT COMPARED: linux-Image: linux-source is $(version "$tmp/$f"), the committed Image is" \
        "$(version "$root/guest-programs/bin/$f"); run tools/build-linux.sh and commit guest-programs/bin/linux-*" >&2
      continue
    fi
    if cmp -s "$tmp/$f" "$root/guest-programs/bin/$f"; then echo "ok: $f"; else echo "DIFFERS: $f" >&2; status=1; fi
  done
  exit $status
fi

tarball=/usr/src/linux-source-6.12.tar.xz
CROSS=riscv64-linux-gnu-
export ARCH=riscv CROSS_COMPILE=$CROSS
export KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026'
export KBUILD_BUILD_USER=shadowvisor KBUILD_BUILD_HOST=shadowvisor KBUILD_BUILD_VERSION=1
export SOURCE_DATE_EPOCH=1767225600
export LC_ALL=C TZ=UTC

mkdir -p "$work" "$out"
ksrc="$work/linux-source-6.12"
if [ ! -f "$ksrc/Makefile" ]; then
  [ -f "$tarball" ] || { echo "error: $tarball missing; apt-get install linux-source-6.12" >&2; exit 127; }
  echo "unpacking $tarball into $work"
  tar -C "$work" -xf "$tarball"
fi
kout="$work/out"
mkdir -p "$kout"
# The build directory's path must not reach the image (__FILE__ in WARN and BUG).
KMAKE=(make -C "$ksrc" O="$kout" -j"$jobs" KCFLAGS="-ffile-prefix-map=$ksrc=. -ffile-prefix-map=$kout=.")

if [ $init_only -eq 0 ]; then
  "${KMAKE[@]}" tinyconfig >/dev/null
  "$ksrc/scripts/kconfig/merge_config.sh" -m -O "$kout" "$kout/.config" "$src/shadowvisor.config" >/dev/null
  "${KMAKE[@]}" olddefconfig >/dev/null
  # Every option of the fragment must have survived olddefconfig (a dependency
  # we missed silently drops one).
  missing=0
  while IFS= read -r line; do
    case "$line" in
      CONFIG_*=*) grep -qx "$line" "$kout/.config" || { echo "error: $line did not stick" >&2; missing=1; } ;;
      '# CONFIG_'*' is not set') opt="${line#\# }"; opt="${opt%% *}"; ! grep -q "^$opt=" "$kout/.config" || { echo "error: $opt is set" >&2; missing=1; } ;;
    esac
  done <"$src/shadowvisor.config"
  [ $missing -eq 0 ] || exit 1
  "${KMAKE[@]}" Image
  "${KMAKE[@]}" headers_install INSTALL_HDR_PATH="$work/headers" >/dev/null
fi

# PID 1 against the kernel's nolibc: no libc, no libgcc, static, no build-id.
initdir="$work/init"
mkdir -p "$initdir"
(cd "$initdir" && "${CROSS}gcc" -march=rv32ima_zicsr_zifencei -mabi=ilp32 -Os -static -nostdlib \
  -fno-asynchronous-unwind-tables -fno-ident -fno-stack-protector -fno-pic -no-pie \
  -Wall -Wextra -Werror "-ffile-prefix-map=$src=." \
  -include "$ksrc/tools/include/nolibc/nolibc.h" -I "$ksrc/tools/include/nolibc" -I "$work/headers/include" \
  -Wl,--build-id=none -Wl,-melf32lriscv \
  -o init "$src/init.c")

cat >"$initdir/list" <<EOF
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
file /init $initdir/init 0755 0 0
EOF
"$kout/usr/gen_init_cpio" -t "$SOURCE_DATE_EPOCH" "$initdir/list" >"$out/linux-initramfs.cpio"

if [ $init_only -eq 0 ]; then
  cp "$kout/arch/riscv/boot/Image" "$out/linux-Image"
  cp "$kout/.config" "$work/config-used"
fi
ls -l "$out"/linux-*
