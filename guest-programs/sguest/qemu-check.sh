#!/usr/bin/env bash
# Cross-check: runs the sguest images under qemu-system-riscv32 -machine virt.
# With an rv32 OpenSBI (-bios default) when QEMU has one; otherwise with the
# minimal M-mode SBI in qemu/ (Debian's QEMU ships only the riscv64 OpenSBI).
# Usage: guest-programs/sguest/qemu-check.sh [IMAGE.elf ...]
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/../bin"
CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
bios=default
if [ ! -e /usr/share/qemu/opensbi-riscv32-generic-fw_dynamic.bin ] && [ -z "${QEMU_BIOS:-}" ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$CC" -march=rv32ima_zicsr_zifencei -mabi=ilp32 -O2 -ffreestanding -nostdlib -nostartfiles -static \
    -mcmodel=medany -Wall -Wextra -Werror -T "$here/qemu/shim.ld" -Wl,--no-warn-rwx-segments \
    -o "$tmp/shim.elf" "$here/qemu/shim-entry.S" "$here/qemu/shim.c" || exit 1
  bios="$tmp/shim.elf"
fi
bios="${QEMU_BIOS:-$bios}"
images=("$@")
[ ${#images[@]} -gt 0 ] || images=("$bin/sguest-hello.elf" "$bin/sguest-workload.elf")
status=0
for img in "${images[@]}"; do
  echo "== qemu-system-riscv32 -machine virt -nographic -bios $( [ "$bios" = default ] && echo default || echo shim.elf ) -kernel $(basename "$img")"
  timeout 120 qemu-system-riscv32 -machine virt -m 128M -nographic -bios "$bios" -kernel "$img" </dev/null
  rc=$?
  echo "== exit status $rc"
  [ $rc -eq 0 ] || status=1
done
exit $status
