#!/usr/bin/env bash
# Builds the vendored riscv-tests (guest-programs/riscv-tests: the RV32 ISA
# suites in their -p and -v environments, and the benchmarks) into
# guest-programs/bin/riscv-tests (or --out DIR). tools/build-guests.sh calls
# it, so `build-guests.sh --check` covers these images too.
#
# Flags follow upstream's isa/Makefile and benchmarks/Makefile, with the
# march we implement (no C, F or D) and fixed object names so that the
# images do not depend on where or when they were built.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/guest-programs/riscv-tests"
out="$root/guest-programs/bin/riscv-tests"

usage() { echo "usage: $0 [--out DIR]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    *) usage ;;
  esac
done

CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
MARCH=(-march=rv32ima_zicsr_zifencei -mabi=ilp32)
# picolibc for the headers only (string.h, stdio.h): -nostdlib links none of it.
COMMON=("${MARCH[@]}" --specs=picolibc.specs -static -mcmodel=medany -fvisibility=hidden -nostdlib -nostartfiles
  "-ffile-prefix-map=$src=." -Wl,--build-id=none -Wl,--no-warn-rwx-segments)

# printf's 64-bit division (benchmarks/common/syscalls.c) needs libgcc. There
# is no rv32ima multilib; rv32im's is the same code (libgcc uses no atomics).
LIBGCC="$("$CC" -march=rv32im -mabi=ilp32 -print-libgcc-file-name)"

mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# compile OBJDIR FLAGS... -- SOURCES...: one object per source, named after it.
compile() {
  local dir="$1"; shift
  local flags=()
  while [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  mkdir -p "$dir"
  local f
  for f in "$@"; do
    (cd "$dir" && "$CC" "${COMMON[@]}" "${flags[@]}" -c -o "$(basename "${f%.*}").o" "$f")
  done
}

# The test names of one suite, as its Makefrag lists them (SUITE_sc_tests =
# name ... with backslash continuations); read here so the build needs no make.
suite_tests() {
  sed -n "/^$1_sc_tests = *\\\\\$/,/^[^[:space:]]/p" "$src/isa/$1/Makefrag" \
    | grep -v "_sc_tests =" | grep -v "^[^[:space:]]" | tr -d '\\' | tr -s ' \t\n' ' '
}

count=0
for suite in rv32ui rv32um rv32ua rv32mi rv32si; do
  for t in $(suite_tests "$suite"); do
    name="$suite-p-$t"
    compile "$work/$name" -I"$src/env/p" -I"$src/isa/macros/scalar" -- "$src/isa/$suite/$t.S"
    (cd "$work/$name" && "$CC" "${COMMON[@]}" -T "$src/env/p/link.ld" -o "$out/$name.elf" "$t.o")
    count=$((count + 1))
    # The -v environment (user code under Sv32 with a tiny kernel that
    # demand-maps pages) exists for the user-level suites only, as upstream.
    case "$suite" in rv32ui|rv32um|rv32ua)
      name="$suite-v-$t"
      entropy="0x$(echo "$name" | md5sum | cut -c 1-7)"
      compile "$work/$name" -DENTROPY="$entropy" -ffreestanding -std=gnu99 -O2 \
        -I"$src/env/v" -I"$src/isa/macros/scalar" -- \
        "$src/env/v/entry.S" "$src/env/v/vm.c" "$src/env/v/string.c" "$src/isa/$suite/$t.S"
      # Objects in the order upstream's Makefile names the sources (a glob's order depends on the locale).
      (cd "$work/$name" && "$CC" "${COMMON[@]}" -T "$src/env/v/link.ld" -o "$out/$name.elf" entry.o vm.o string.o "$t.o")
      count=$((count + 1)) ;;
    esac
  done
done

# Benchmarks: each checks its result against reference data and exits
# non-zero when it differs. Dhrystone runs longer than upstream's 500 passes
# so that it is a benchmark of the hart rather than of start-up.
for b in dhrystone median multiply qsort rsort spmv towers vvadd; do
  extra=()
  [ "$b" = dhrystone ] && extra=(-DNUMBER_OF_RUNS=500000)
  srcs=("$src/benchmarks/common/crt.S" "$src/benchmarks/common/syscalls.c")
  for f in $(cd "$src/benchmarks/$b" && LC_ALL=C ls -- *.c); do srcs+=("$src/benchmarks/$b/$f"); done
  objs=()
  for f in "${srcs[@]}"; do f="$(basename "$f")"; objs+=("${f%.*}.o"); done
  compile "$work/bench-$b" -DPREALLOCATE=1 -DHTIF_CONSOLE -std=gnu99 -O2 -ffast-math -fno-common -fno-builtin-printf \
    -fno-tree-loop-distribute-patterns -Wno-implicit-int -Wno-implicit-function-declaration \
    -I"$src/env" -I"$src/benchmarks/common" -I"$src/benchmarks/$b" "${extra[@]}" -- "${srcs[@]}"
  (cd "$work/bench-$b" && "$CC" "${COMMON[@]}" -T "$src/benchmarks/common/test.ld" -o "$out/$b.elf" "${objs[@]}" "$LIBGCC")
  count=$((count + 1))
done

echo "built $count riscv-tests images in $out"
