#!/usr/bin/env bash
# Cross-check: boots guest-programs/bin/linux-Image with its initramfs on
# qemu-system-riscv32 -machine virt (an independent hart, MMU and firmware) and
# expects the init's PASS line. With an rv32 OpenSBI when QEMU ships one;
# otherwise (Debian ships only the riscv64 OpenSBI) with the minimal M-mode SBI
# in guest-programs/sguest/qemu, which hands over at 0x80400000 with a1 = QEMU's
# device tree, where QEMU loads an rv32 Image next to a firmware.
# Usage: guest-programs/linux/qemu-check.sh [EXTRA QEMU ARGS...]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../bin"
shim="$here/../sguest/qemu"
CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
bios=/usr/share/qemu/opensbi-riscv32-generic-fw_dynamic.bin
if [ ! -e "$bios" ]; then
  "$CC" -march=rv32ima_zicsr_zifencei -mabi=ilp32 -O2 -ffreestanding -nostdlib -nostartfiles -static \
    -mcmodel=medany -Wall -Wextra -Werror -T "$shim/shim.ld" -Wl,--no-warn-rwx-segments \
    -o "$tmp/shim.elf" "$shim/shim-entry.S" "$shim/shim.c" || exit 1
  bios="$tmp/shim.elf"
fi
bios="${QEMU_BIOS:-$bios}"
start=$(date +%s.%N)
timeout 300 qemu-system-riscv32 -machine virt -cpu rv32,c=false,f=false,d=false -m 64M -nographic \
  -bios "$bios" -kernel "$bin/linux-Image" -initrd "$bin/linux-initramfs.cpio" \
  -append "earlycon=sbi console=hvc0" "$@" </dev/null | tee "$tmp/out"
rc=${PIPESTATUS[0]}
end=$(date +%s.%N)
echo "== qemu exit status $rc, $(echo "$end - $start" | bc) s"
grep -q '^shadowvisor-init: PASS' "$tmp/out" || { echo "== no PASS line" >&2; exit 1; }
