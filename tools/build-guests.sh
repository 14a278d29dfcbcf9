#!/usr/bin/env bash
# Builds every guest program in guest-programs/ into guest-programs/bin (or
# --out DIR). --check rebuilds into a temporary directory and compares the
# result byte for byte with the committed images, so CI catches a source
# change that was committed without its binary (or a toolchain that drifted).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/guest-programs"
out="$src/bin"
check=0

usage() { echo "usage: $0 [--out DIR] [--check]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ $# -ge 2 ] || usage; out="$2"; shift 2 ;;
    --check) check=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown option: $1" >&2; usage ;;
  esac
done

CC="${RISCV_CC:-riscv64-unknown-elf-gcc}"
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "error: $CC not found; install Debian's gcc-riscv64-unknown-elf" >&2
  exit 127
fi

# No -g and a fixed prefix map: the images must not depend on where or when
# they were built. No build-id either (it hashes nothing useful here).
CFLAGS=(
  -march=rv32ima_zicsr_zifencei -mabi=ilp32 -O2
  -ffreestanding -nostdlib -nostartfiles -static
  -fno-tree-loop-distribute-patterns -fno-pic -mcmodel=medany
  -Wall -Wextra -Werror
  "-ffile-prefix-map=$src=."
  -I"$src/common" -T "$src/common/link.ld"
  -Wl,--build-id=none -Wl,--no-warn-rwx-segments
)
C_RUNTIME=("$src/common/crt0.S" "$src/common/runtime.c")

COREMARK_SRCS="coremark/core_list_join.c coremark/core_main.c coremark/core_matrix.c coremark/core_state.c coremark/core_util.c coremark/port/core_portme.c coremark/port/ee_printf.c"
# -w: EEMBC's sources are kept as they are, warnings and all.
COREMARK_FLAGS="-I$src/coremark -I$src/coremark/port -w"

# name | sources (relative to guest-programs/) | extra flags
PROGRAMS=(
  "hello|hello.c|"
  "bench-loop|bench-loop.c|"
  "bench-loop-sv32|bench-loop.c|-DPAGING"
  "bench-mem|bench-mem.c|"
  "bench-mem-sv32|bench-mem.c|-DPAGING"
  "coremark-lite|coremark-lite.c|"
  "coremark-lite-sv32|coremark-lite.c|-DPAGING"
  "isa-alu|isa-alu.S|"
  "isa-branch|isa-branch.S|"
  "isa-mem|isa-mem.S|"
  "isa-m|isa-m.S|"
  "isa-a|isa-a.S|"
  "isa-trap|isa-trap.S|"
  "isa-sv32|isa-sv32.S|"
  "selftest-fail|selftest-fail.S|"
  "spin|spin.S|"
  "flood|flood.S|"
  "htif-low-exit|htif-low-exit.S|"
  "htif-syscall|htif-syscall.c|"
  # EEMBC CoreMark, unmodified, with our port (coremark/port, see its README).
  "coremark|$COREMARK_SRCS|$COREMARK_FLAGS"
  "coremark-sv32|$COREMARK_SRCS|$COREMARK_FLAGS -DPAGING"
  # The same at 5000 iterations: with coremark.elf, what 1000 more cost once
  # start-up and the JIT's warm-up are paid (npm run bench, process section).
  "coremark-5k|$COREMARK_SRCS|$COREMARK_FLAGS -DITERATIONS=5000"
)

build_into() {
  local dir="$1"
  mkdir -p "$dir"
  local entry name srcs extra files f
  for entry in "${PROGRAMS[@]}"; do
    IFS='|' read -r name srcs extra <<<"$entry"
    files=()
    for f in $srcs; do files+=("$src/$f"); done
    # Assembly tests bring their own entry; C programs use the shared runtime.
    case "$srcs" in
      *.c) files=("${C_RUNTIME[@]}" "${files[@]}") ;;
    esac
    # Objects get fixed names in a private directory: ld names every object
    # without an STT_FILE symbol (assembly sources) after its file, and a
    # random temporary name would make the image differ from build to build.
    local objdir objs=()
    objdir="$(mktemp -d)"
    for f in "${files[@]}"; do
      local obj
      obj="$(basename "${f%.*}").o"
      # shellcheck disable=SC2086
      (cd "$objdir" && "$CC" "${CFLAGS[@]}" $extra -c -o "$obj" "$f")
      objs+=("$obj")
    done
    (cd "$objdir" && "$CC" "${CFLAGS[@]}" -o "$dir/$name.elf" "${objs[@]}")
    rm -rf "$objdir"
  done
  # ---- S-mode guests for the VMM (guest-programs/sguest -> sguest-*.elf): own
  # entry, linker script and variants, so they live in their own script.
  RISCV_CC="$CC" "$root/tools/build-sguest.sh" --out "$dir"
  # ---- the vendored riscv-tests (ISA suites and benchmarks) -> riscv-tests/
  RISCV_CC="$CC" "$root/tools/build-riscv-tests.sh" --out "$dir/riscv-tests" >/dev/null
}

if [ "$check" = 1 ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  build_into "$tmp"
  status=0
  for f in "$tmp"/*.elf "$tmp"/riscv-tests/*.elf; do
    b="${f#"$tmp"/}"
    if [ ! -f "$out/$b" ]; then
      echo "missing from $out: $b" >&2; status=1
    elif ! cmp -s "$f" "$out/$b"; then
      echo "differs: $b" >&2; status=1
    fi
  done
  for f in "$out"/*.elf "$out"/riscv-tests/*.elf; do
    [ -e "$f" ] || continue
    b="${f#"$out"/}"
    [ -f "$tmp/$b" ] || { echo "stale (no source builds it): $b" >&2; status=1; }
  done
  if [ "$status" = 0 ]; then
    echo "guest images match their sources ($(ls "$tmp"/*.elf "$tmp"/riscv-tests/*.elf | wc -l) checked)"
  else
    echo "guest images are out of date: run tools/build-guests.sh and commit guest-programs/bin" >&2
  fi
  exit "$status"
fi

build_into "$out"
echo "built $(ls "$out"/*.elf "$out"/riscv-tests/*.elf | wc -l) guest images in $out"
