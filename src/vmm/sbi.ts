// The SBI firmware the VMM plays for its S-mode guest, as KVM and kvmtool do for
// RISC-V guests (RISC-V SBI specification v2.0). One call in, one typed result out:
// handleSbiCall reads the convention registers, performs the call through an
// SbiContext (console, timer, guest memory) and says what the vCPU must do next.
// It never touches a hart, so every call and error code is testable alone. It is
// a Task rather than a plain function because DBCN reads guest RAM through the
// host: the page may be swapped out, and bringing it back sleeps.
// Counterpart: arch/riscv/kvm/vcpu_sbi*.c (in-kernel half) + kvmtool riscv/kvm-cpu.c
//
// Results:
//   return        a0 = error, a1 = value, pc past the ecall (every v0.2+ call)
//   legacy-return a0 only; a1 and every other register preserved (EIDs 0x00-0x0F)
//   reset         SRST or legacy shutdown: the VM stops, the call never returns
//   hart-stop     HSM hart_stop of the only hart: nothing can ever start it again
//   suspend       HSM default retentive suspend: idle until an interrupt, then
//                 return SBI_SUCCESS (the VMM does the waiting)
//
// Exit codes of a reset (reset_reason -> status of `shadowvisor run`):
//   0x00000000 no reason          -> 0
//   0x00000001 system failure     -> 1
//   0xE0000000 + N, N <= 255      -> N   (our implementation-specific reasons)
//   anything else                 -> SBI_ERR_INVALID_PARAM, the call returns
// Reboots (cold or warm) end the run the same way: a VMM process cannot reset
// itself, so like Firecracker we stop and let the caller decide.

import type { Task } from '../sched/index.js';
import {
  REG_A0, REG_A1, REG_A2, REG_A3, REG_A4, REG_A6, REG_A7,
  SBI_DBCN_MAX_CHUNK,
  SBI_ERR_ALREADY_AVAILABLE, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED, SBI_SUCCESS,
  SBI_EXT_0_1_CONSOLE_GETCHAR, SBI_EXT_0_1_CONSOLE_PUTCHAR, SBI_EXT_0_1_LAST, SBI_EXT_0_1_SET_TIMER,
  SBI_EXT_0_1_SHUTDOWN,
  SBI_EXT_BASE, SBI_EXT_BASE_GET_IMP_ID, SBI_EXT_BASE_GET_IMP_VERSION, SBI_EXT_BASE_GET_MARCHID,
  SBI_EXT_BASE_GET_MIMPID, SBI_EXT_BASE_GET_MVENDORID, SBI_EXT_BASE_GET_SPEC_VERSION, SBI_EXT_BASE_PROBE_EXT,
  SBI_EXT_DBCN, SBI_EXT_DBCN_CONSOLE_READ, SBI_EXT_DBCN_CONSOLE_WRITE, SBI_EXT_DBCN_CONSOLE_WRITE_BYTE,
  SBI_EXT_IPI, SBI_EXT_IPI_SEND_IPI,
  SBI_EXT_RFENCE, SBI_EXT_RFENCE_REMOTE_FENCE_I, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA, SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID,
  SBI_RFENCE_MAX_PAGES,
  SBI_EXT_HSM, SBI_EXT_HSM_HART_GET_STATUS, SBI_EXT_HSM_HART_START, SBI_EXT_HSM_HART_STOP,
  SBI_EXT_HSM_HART_SUSPEND, SBI_HSM_STATE_STARTED,
  SBI_EXT_SRST, SBI_EXT_SRST_RESET,
  SBI_EXT_TIME, SBI_EXT_TIME_SET_TIMER,
  SBI_IMPL_ID_SHADOWVISOR, SBI_IMPL_VERSION, SBI_SPEC_VERSION,
  SBI_SRST_REASON_EXIT_CODE_BASE, SBI_SRST_REASON_EXIT_CODE_MAX,
  SBI_SRST_RESET_REASON_NONE, SBI_SRST_RESET_REASON_SYSFAIL,
  SBI_SRST_RESET_TYPE_SHUTDOWN, SBI_SRST_RESET_TYPE_WARM_REBOOT,
  sbiExtensionName,
} from './sbi-constants.js';

export interface SbiConsole {
  write(bytes: Uint8Array): void;
  /** Up to `max` bytes of pending input; empty when there is none (never blocks). */
  read(max: number): Uint8Array;
}

export interface SbiContext {
  readonly hartId: number;
  readonly console: SbiConsole;
  /** mvendorid/marchid/mimpid the Base extension reports (0 is always legal). */
  readonly machineIds?: { mvendorid: number; marchid: number; mimpid: number };
  /**
   * Programs the supervisor timer: STIP is cleared now and raised once the `time`
   * CSR reaches stimeValue (a double, exact below 2^53; 2^64 - 1 means never).
   */
  setTimer(stimeValue: number): void;
  /** Sets SSIP on the calling hart (an IPI to itself). */
  sendIpi(): void;
  /**
   * What sfence.vma does on the calling hart: for one page (gva) or every page
   * (null), of one ASID or of all (null). RFENCE on a single hart is this.
   */
  sfenceVma(gva: number | null, asid: number | null): void;
  /** Whether [gpa, gpa + len) is guest RAM (S-mode "accessible physical addresses"). */
  isGuestRam(gpa: number, len: number): boolean;
  /**
   * Copies guest-physical memory through the VMM's host mapping of guest RAM, so it
   * may fault pages in or sleep on swap. Returns SBI_SUCCESS or an SBI error
   * (SBI_ERR_FAILED when the host access failed, e.g. the VMM was OOM-killed).
   */
  readGuest(gpa: number, dst: Uint8Array): Task<number>;
  writeGuest(gpa: number, src: Uint8Array): Task<number>;
}

export type SbiResult =
  | { readonly kind: 'return'; readonly error: number; readonly value: number }
  | { readonly kind: 'legacy-return'; readonly a0: number }
  | {
    readonly kind: 'reset';
    /** SBI_SRST_RESET_TYPE_*; the legacy shutdown reports SHUTDOWN. */
    readonly resetType: number;
    readonly resetReason: number;
    readonly exitCode: number;
  }
  | { readonly kind: 'hart-stop' }
  | { readonly kind: 'suspend' };

/** Extensions probe_extension reports as available (value 1). */
export const SBI_SUPPORTED_EXTENSIONS: readonly number[] = [
  SBI_EXT_0_1_SET_TIMER,
  SBI_EXT_0_1_CONSOLE_PUTCHAR,
  SBI_EXT_0_1_CONSOLE_GETCHAR,
  SBI_EXT_0_1_SHUTDOWN,
  SBI_EXT_BASE,
  SBI_EXT_TIME,
  SBI_EXT_IPI,
  SBI_EXT_RFENCE,
  SBI_EXT_HSM,
  SBI_EXT_SRST,
  SBI_EXT_DBCN,
];

const TWO32 = 4294967296;

function ret(error: number, value = 0): SbiResult {
  return { kind: 'return', error, value: value | 0 };
}

function legacy(a0: number): SbiResult {
  return { kind: 'legacy-return', a0: a0 | 0 };
}

/**
 * reset_reason -> exit status, or -1 for a reason we do not implement (the
 * caller answers SBI_ERR_INVALID_PARAM, as the spec requires for reserved and
 * unimplemented reasons).
 */
export function resetReasonToExitCode(reason: number): number {
  const r = reason >>> 0;
  if (r === SBI_SRST_RESET_REASON_NONE) return 0;
  if (r === SBI_SRST_RESET_REASON_SYSFAIL) return 1;
  if (r >= SBI_SRST_REASON_EXIT_CODE_BASE && r <= SBI_SRST_REASON_EXIT_CODE_MAX) return r - SBI_SRST_REASON_EXIT_CODE_BASE;
  return -1;
}

/** Performs the SBI call whose arguments are in regs (an x-register file: a0 = regs[10]). */
export function* handleSbiCall(ctx: SbiContext, regs: ArrayLike<number>): Task<SbiResult> {
  const eid = regs[REG_A7]! | 0;
  const fid = regs[REG_A6]! | 0;
  const a0 = regs[REG_A0]! | 0;
  const a1 = regs[REG_A1]! | 0;
  const a2 = regs[REG_A2]! | 0;

  if (eid >= 0 && eid <= SBI_EXT_0_1_LAST) return legacyCall(ctx, eid, a0, a1);

  switch (eid) {
    case SBI_EXT_BASE:
      return baseCall(ctx, fid, a0);

    case SBI_EXT_TIME:
      if (fid !== SBI_EXT_TIME_SET_TIMER) return ret(SBI_ERR_NOT_SUPPORTED);
      // RV32 passes the 64-bit stime_value in a0 (low) and a1 (high).
      ctx.setTimer((a1 >>> 0) * TWO32 + (a0 >>> 0));
      return ret(SBI_SUCCESS);

    case SBI_EXT_IPI: {
      if (fid !== SBI_EXT_IPI_SEND_IPI) return ret(SBI_ERR_NOT_SUPPORTED);
      const self = hartMaskHasSelf(ctx, a0, a1);
      if (self === null) return ret(SBI_ERR_INVALID_PARAM);
      if (self) ctx.sendIpi();
      return ret(SBI_SUCCESS);
    }

    case SBI_EXT_RFENCE:
      return rfenceCall(ctx, fid, a0, a1, a2, regs[REG_A3]! | 0, regs[REG_A4]! | 0);

    case SBI_EXT_HSM:
      return hsmCall(ctx, fid, a0);

    case SBI_EXT_SRST: {
      if (fid !== SBI_EXT_SRST_RESET) return ret(SBI_ERR_NOT_SUPPORTED);
      const type = a0 >>> 0;
      // 3..0xEFFFFFFF are reserved and 0xF0000000.. are platform types we have none of.
      if (type > SBI_SRST_RESET_TYPE_WARM_REBOOT) return ret(SBI_ERR_INVALID_PARAM);
      const exitCode = resetReasonToExitCode(a1);
      if (exitCode < 0) return ret(SBI_ERR_INVALID_PARAM);
      return { kind: 'reset', resetType: type, resetReason: a1 >>> 0, exitCode };
    }

    case SBI_EXT_DBCN:
      return yield* dbcnCall(ctx, fid, a0, a1, a2);

    default:
      return ret(SBI_ERR_NOT_SUPPORTED);
  }
}

function legacyCall(ctx: SbiContext, eid: number, a0: number, a1: number): SbiResult {
  switch (eid) {
    case SBI_EXT_0_1_SET_TIMER:
      ctx.setTimer((a1 >>> 0) * TWO32 + (a0 >>> 0));
      return legacy(0);
    case SBI_EXT_0_1_CONSOLE_PUTCHAR:
      ctx.console.write(Uint8Array.of(a0 & 0xff));
      return legacy(0);
    case SBI_EXT_0_1_CONSOLE_GETCHAR: {
      const b = ctx.console.read(1);
      return legacy(b.length > 0 ? b[0]! : -1);
    }
    case SBI_EXT_0_1_SHUTDOWN:
      return { kind: 'reset', resetType: SBI_SRST_RESET_TYPE_SHUTDOWN, resetReason: SBI_SRST_RESET_REASON_NONE, exitCode: 0 };
    default:
      // The v0.1 IPI and remote fences (0x03-0x07) take a hart mask by virtual
      // address: use IPI/RFENCE instead. 0x09-0x0F are reserved.
      return legacy(SBI_ERR_NOT_SUPPORTED);
  }
}

function baseCall(ctx: SbiContext, fid: number, a0: number): SbiResult {
  switch (fid) {
    case SBI_EXT_BASE_GET_SPEC_VERSION:
      return ret(SBI_SUCCESS, SBI_SPEC_VERSION);
    case SBI_EXT_BASE_GET_IMP_ID:
      return ret(SBI_SUCCESS, SBI_IMPL_ID_SHADOWVISOR);
    case SBI_EXT_BASE_GET_IMP_VERSION:
      return ret(SBI_SUCCESS, SBI_IMPL_VERSION);
    case SBI_EXT_BASE_PROBE_EXT:
      return ret(SBI_SUCCESS, SBI_SUPPORTED_EXTENSIONS.includes(a0) ? 1 : 0);
    case SBI_EXT_BASE_GET_MVENDORID:
      return ret(SBI_SUCCESS, ctx.machineIds?.mvendorid ?? 0);
    case SBI_EXT_BASE_GET_MARCHID:
      return ret(SBI_SUCCESS, ctx.machineIds?.marchid ?? 0);
    case SBI_EXT_BASE_GET_MIMPID:
      return ret(SBI_SUCCESS, ctx.machineIds?.mimpid ?? 0);
    default:
      return ret(SBI_ERR_NOT_SUPPORTED);
  }
}

/**
 * Whether (hart_mask, hart_mask_base) names the calling hart; null when it names
 * a hart that does not exist (SBI_ERR_INVALID_PARAM). base = -1 means every hart.
 */
function hartMaskHasSelf(ctx: SbiContext, mask: number, base: number): boolean | null {
  if ((base | 0) === -1) return true;
  const bit = ctx.hartId - (base >>> 0);
  const others = bit >= 0 && bit < 32 ? (mask & ~(1 << bit)) : mask;
  if (others !== 0) return null;
  return bit >= 0 && bit < 32 && (mask & (1 << bit)) !== 0;
}

/**
 * RFENCE for one hart: the fences are the caller's own. FENCE.I needs nothing (the
 * hart caches no decoded instructions); SFENCE.VMA over a range is one sfence.vma
 * per page, or a full one past SBI_RFENCE_MAX_PAGES. No H extension: the HFENCEs
 * (fid 3..6) are not supported.
 */
function rfenceCall(ctx: SbiContext, fid: number, mask: number, base: number, start: number, size: number, asid: number): SbiResult {
  if (fid !== SBI_EXT_RFENCE_REMOTE_FENCE_I && fid !== SBI_EXT_RFENCE_REMOTE_SFENCE_VMA && fid !== SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID) {
    return ret(SBI_ERR_NOT_SUPPORTED);
  }
  const self = hartMaskHasSelf(ctx, mask, base);
  if (self === null) return ret(SBI_ERR_INVALID_PARAM);
  if (!self || fid === SBI_EXT_RFENCE_REMOTE_FENCE_I) return ret(SBI_SUCCESS);
  const a = fid === SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID ? asid & 0x1ff : null;
  const s = start >>> 0;
  const n = size >>> 0;
  // The whole address space when start and size are both 0 or size is 2^XLEN - 1.
  const pages = n === 0 ? 0 : Math.ceil((s % 4096 + n) / 4096);
  if ((s === 0 && n === 0) || n === 0xffffffff || pages > SBI_RFENCE_MAX_PAGES || s + n > TWO32) {
    ctx.sfenceVma(null, a);
  } else {
    for (let i = 0; i < pages; i++) ctx.sfenceVma((((s & ~0xfff) >>> 0) + i * 4096) | 0, a);
  }
  return ret(SBI_SUCCESS);
}

function hsmCall(ctx: SbiContext, fid: number, a0: number): SbiResult {
  // One hart, always STARTED while it can make calls: start finds it running, and
  // no other hartid exists.
  switch (fid) {
    case SBI_EXT_HSM_HART_START:
      return ret(a0 === ctx.hartId ? SBI_ERR_ALREADY_AVAILABLE : SBI_ERR_INVALID_PARAM);
    case SBI_EXT_HSM_HART_STOP:
      return { kind: 'hart-stop' };
    case SBI_EXT_HSM_HART_GET_STATUS:
      return a0 === ctx.hartId ? ret(SBI_SUCCESS, SBI_HSM_STATE_STARTED) : ret(SBI_ERR_INVALID_PARAM);
    case SBI_EXT_HSM_HART_SUSPEND: {
      const type = a0 >>> 0;
      if (type === 0) return { kind: 'suspend' };
      // Default non-retentive suspend is defined, but resuming at resume_addr with
      // fresh state is more than this VMM does.
      if (type === 0x80000000) return ret(SBI_ERR_NOT_SUPPORTED);
      return ret(SBI_ERR_INVALID_PARAM);
    }
    default:
      return ret(SBI_ERR_NOT_SUPPORTED);
  }
}

function* dbcnCall(ctx: SbiContext, fid: number, a0: number, a1: number, a2: number): Task<SbiResult> {
  switch (fid) {
    case SBI_EXT_DBCN_CONSOLE_WRITE:
    case SBI_EXT_DBCN_CONSOLE_READ: {
      const numBytes = a0 >>> 0;
      // Guest RAM lies below 4 GiB, so a non-zero high half never names RAM.
      if (a2 !== 0) return ret(SBI_ERR_INVALID_PARAM);
      const gpa = a1 >>> 0;
      if (numBytes === 0) return ret(SBI_SUCCESS, 0);
      if (!ctx.isGuestRam(gpa, numBytes)) return ret(SBI_ERR_INVALID_PARAM);
      // Partial transfers are allowed (both calls are non-blocking); the guest loops.
      const n = Math.min(numBytes, SBI_DBCN_MAX_CHUNK);
      if (fid === SBI_EXT_DBCN_CONSOLE_WRITE) {
        const buf = new Uint8Array(n);
        const err = yield* ctx.readGuest(gpa, buf);
        if (err !== SBI_SUCCESS) return ret(err);
        ctx.console.write(buf);
        return ret(SBI_SUCCESS, n);
      }
      const input = ctx.console.read(n);
      if (input.length === 0) return ret(SBI_SUCCESS, 0);
      const err = yield* ctx.writeGuest(gpa, input);
      if (err !== SBI_SUCCESS) return ret(err);
      return ret(SBI_SUCCESS, input.length);
    }
    case SBI_EXT_DBCN_CONSOLE_WRITE_BYTE:
      ctx.console.write(Uint8Array.of(a0 & 0xff));
      return ret(SBI_SUCCESS, 0);
    default:
      return ret(SBI_ERR_NOT_SUPPORTED);
  }
}

/** One line for traces and `info sbi`: "DBCN fid=0 a0=0x.. -> return error=0 value=5". */
export function describeSbiCall(regs: ArrayLike<number>, result: SbiResult): string {
  const h = (v: number) => '0x' + ((v ?? 0) >>> 0).toString(16);
  const args = `fid=${regs[REG_A6]! | 0} a0=${h(regs[REG_A0]!)} a1=${h(regs[REG_A1]!)} a2=${h(regs[REG_A2]!)}`;
  let res: string;
  switch (result.kind) {
    case 'return': res = `error=${result.error} value=${h(result.value)}`; break;
    case 'legacy-return': res = `a0=${result.a0}`; break;
    case 'reset': res = `type=${result.resetType} reason=${h(result.resetReason)} exit=${result.exitCode}`; break;
    default: res = '';
  }
  return `${sbiExtensionName(regs[REG_A7]!)} ${args} -> ${result.kind}${res ? ' ' + res : ''}`;
}
