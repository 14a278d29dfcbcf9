#!/usr/bin/env bash
# Builds the S-mode guests in guest-programs/sguest (SBI only, entered in S-mode
# by OpenSBI or by the shadowvisor VMM) into guest-programs/bin/sguest-*.elf,
# or into --out DIR. Called by tools/build-guests.sh, so its --check covers them.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/guest-programs/sguest"
out="$root/guest-programs/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done

CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
CFLAGS=(
  -march=rv32ima_zicsr_zifencei -mabi=ilp32 -O2
  -ffreestanding -nostdlib -nostartfiles -static
  -fno-tree-loop-distribute-patterns -fno-pic -mcmodel=medany
  -Wall -Wextra -Werror
  "-ffile-prefix-map=$root/guest-programs=."
  -I"$src" -T "$src/sguest.ld"
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments
)

# name | program source | extra flags
PROGRAMS=(
  "sguest-hello|hello.c|"
  "sguest-workload|workload.c|-DDATA_MIB=12"
  # For tests: 2 MiB of data right at the start of RAM, so 4 MiB of guest RAM
  # over 2 MiB of host RAM already swaps. Not runnable under OpenSBI (its home).
  "sguest-small|workload.c|-DDATA_MIB=2 -Wl,--defsym=SGUEST_BASE=0x80000000"
  "sguest-fault-forever|hostile.c|-DFAULT_FOREVER"
  "sguest-flood-dbcn|hostile.c|-DFLOOD_DBCN"
  "sguest-flood-uart|hostile.c|-DFLOOD_UART"
  # A virtio-balloon driver of our own (1 MiB of data, needs 8 MiB of guest RAM).
  "sguest-balloon|balloon.c|"
)

mkdir -p "$out"
for entry in "${PROGRAMS[@]}"; do
  IFS='|' read -r name prog extra <<<"$entry"
  # Fixed object names in a private directory keep the image independent of
  # temporary paths (see build-guests.sh).
  objdir="$(mktemp -d)"
  objs=()
  for f in entry.S sbi.c "$prog"; do
    obj="$(basename "${f%.*}").o"
    # shellcheck disable=SC2086
    (cd "$objdir" && "$CC" "${CFLAGS[@]}" $extra -c -o "$obj" "$src/$f")
    objs+=("$obj")
  done
  # shellcheck disable=SC2086
  (cd "$objdir" && "$CC" "${CFLAGS[@]}" $extra -o "$out/$name.elf" "${objs[@]}")
  rm -rf "$objdir"
done
