// SBI numbers, spelled as in the RISC-V Supervisor Binary Interface
// Specification v2.0 (riscv-non-isa/riscv-sbi-doc): extension and function
// ids, error codes, and the argument values the calls define.
// Counterpart: arch/riscv/include/asm/sbi.h

// ---- calling convention: a7 = EID, a6 = FID, a0..a5 args; a0 = error, a1 = value

/** Registers of the convention, as x-register numbers (index into hart.regs). */
export const REG_A0 = 10;
export const REG_A1 = 11;
export const REG_A2 = 12;
export const REG_A3 = 13;
export const REG_A4 = 14;
export const REG_A5 = 15;
export const REG_A6 = 16;
export const REG_A7 = 17;

// ---- standard errors (binary encoding chapter, "Standard SBI Errors")

export const SBI_SUCCESS = 0;
export const SBI_ERR_FAILED = -1;
export const SBI_ERR_NOT_SUPPORTED = -2;
export const SBI_ERR_INVALID_PARAM = -3;
export const SBI_ERR_DENIED = -4;
export const SBI_ERR_INVALID_ADDRESS = -5;
export const SBI_ERR_ALREADY_AVAILABLE = -6;
export const SBI_ERR_ALREADY_STARTED = -7;
export const SBI_ERR_ALREADY_STOPPED = -8;
export const SBI_ERR_NO_SHMEM = -9;
export const SBI_ERR_INVALID_STATE = -10;
export const SBI_ERR_BAD_RANGE = -11;

export const SBI_ERROR_NAMES: Readonly<Record<number, string>> = {
  [SBI_SUCCESS]: 'SBI_SUCCESS',
  [SBI_ERR_FAILED]: 'SBI_ERR_FAILED',
  [SBI_ERR_NOT_SUPPORTED]: 'SBI_ERR_NOT_SUPPORTED',
  [SBI_ERR_INVALID_PARAM]: 'SBI_ERR_INVALID_PARAM',
  [SBI_ERR_DENIED]: 'SBI_ERR_DENIED',
  [SBI_ERR_INVALID_ADDRESS]: 'SBI_ERR_INVALID_ADDRESS',
  [SBI_ERR_ALREADY_AVAILABLE]: 'SBI_ERR_ALREADY_AVAILABLE',
  [SBI_ERR_ALREADY_STARTED]: 'SBI_ERR_ALREADY_STARTED',
  [SBI_ERR_ALREADY_STOPPED]: 'SBI_ERR_ALREADY_STOPPED',
  [SBI_ERR_NO_SHMEM]: 'SBI_ERR_NO_SHMEM',
  [SBI_ERR_INVALID_STATE]: 'SBI_ERR_INVALID_STATE',
  [SBI_ERR_BAD_RANGE]: 'SBI_ERR_BAD_RANGE',
};

// ---- legacy extensions (EIDs 0x00-0x0F): a6 ignored, result in a0 only

export const SBI_EXT_0_1_SET_TIMER = 0x00;
export const SBI_EXT_0_1_CONSOLE_PUTCHAR = 0x01;
export const SBI_EXT_0_1_CONSOLE_GETCHAR = 0x02;
export const SBI_EXT_0_1_CLEAR_IPI = 0x03;
export const SBI_EXT_0_1_SEND_IPI = 0x04;
export const SBI_EXT_0_1_REMOTE_FENCE_I = 0x05;
export const SBI_EXT_0_1_REMOTE_SFENCE_VMA = 0x06;
export const SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID = 0x07;
export const SBI_EXT_0_1_SHUTDOWN = 0x08;
export const SBI_EXT_0_1_LAST = 0x0f;

// ---- Base (EID 0x10)

export const SBI_EXT_BASE = 0x10;
export const SBI_EXT_BASE_GET_SPEC_VERSION = 0;
export const SBI_EXT_BASE_GET_IMP_ID = 1;
export const SBI_EXT_BASE_GET_IMP_VERSION = 2;
export const SBI_EXT_BASE_PROBE_EXT = 3;
export const SBI_EXT_BASE_GET_MVENDORID = 4;
export const SBI_EXT_BASE_GET_MARCHID = 5;
export const SBI_EXT_BASE_GET_MIMPID = 6;

/** Minor in bits 23:0, major in bits 30:24, bit 31 zero. */
export const SBI_SPEC_VERSION_MAJOR = 2;
export const SBI_SPEC_VERSION_MINOR = 0;
export const SBI_SPEC_VERSION = (SBI_SPEC_VERSION_MAJOR << 24) | SBI_SPEC_VERSION_MINOR;

/**
 * Implementation id. The spec's table assigns 0..11 (BBL, OpenSBI, Xvisor, KVM,
 * RustSBI, Diosix, Coffer, Xen, PolarFire HSS, coreboot, oreboot, bhyve). We are
 * none of them and have no assigned number, so we answer with a value far above
 * that table, ASCII "SV" (0x5356), so a guest that keys quirks off the id never
 * mistakes us for a registered implementation.
 */
export const SBI_IMPL_ID_SHADOWVISOR = 0x5356;
/** Implementation version: major << 16 | minor, the OpenSBI encoding. */
export const SBI_IMPL_VERSION = (0 << 16) | 1;

// ---- TIME (EID "TIME")

export const SBI_EXT_TIME = 0x54494d45;
export const SBI_EXT_TIME_SET_TIMER = 0;

// ---- IPI (EID "sPI") and RFENCE (EID "RFNC"), for the one hart there is

export const SBI_EXT_IPI = 0x735049;
export const SBI_EXT_IPI_SEND_IPI = 0;
export const SBI_EXT_RFENCE = 0x52464e43;
export const SBI_EXT_RFENCE_REMOTE_FENCE_I = 0;
export const SBI_EXT_RFENCE_REMOTE_SFENCE_VMA = 1;
export const SBI_EXT_RFENCE_REMOTE_SFENCE_VMA_ASID = 2;
/** A remote sfence over more pages than this flushes the whole address space. */
export const SBI_RFENCE_MAX_PAGES = 64;

// ---- HSM (EID "HSM")

export const SBI_EXT_HSM = 0x48534d;
export const SBI_EXT_HSM_HART_START = 0;
export const SBI_EXT_HSM_HART_STOP = 1;
export const SBI_EXT_HSM_HART_GET_STATUS = 2;
export const SBI_EXT_HSM_HART_SUSPEND = 3;

export const SBI_HSM_STATE_STARTED = 0;
export const SBI_HSM_STATE_STOPPED = 1;
export const SBI_HSM_STATE_START_PENDING = 2;
export const SBI_HSM_STATE_STOP_PENDING = 3;
export const SBI_HSM_STATE_SUSPENDED = 4;
export const SBI_HSM_STATE_SUSPEND_PENDING = 5;
export const SBI_HSM_STATE_RESUME_PENDING = 6;

// ---- SRST (EID "SRST")

export const SBI_EXT_SRST = 0x53525354;
export const SBI_EXT_SRST_RESET = 0;

export const SBI_SRST_RESET_TYPE_SHUTDOWN = 0;
export const SBI_SRST_RESET_TYPE_COLD_REBOOT = 1;
export const SBI_SRST_RESET_TYPE_WARM_REBOOT = 2;
export const SBI_SRST_RESET_REASON_NONE = 0;
export const SBI_SRST_RESET_REASON_SYSFAIL = 1;
/**
 * 0xE0000000-0xEFFFFFFF is "SBI implementation specific reset reason". We give
 * 0xE0000000 + N (N = 0..255) the meaning "exit with status N", so a test guest
 * can report which check failed the way an HTIF guest reports "test N".
 */
export const SBI_SRST_REASON_EXIT_CODE_BASE = 0xe0000000;
export const SBI_SRST_REASON_EXIT_CODE_MAX = 0xe00000ff;

// ---- DBCN (EID "DBCN")

export const SBI_EXT_DBCN = 0x4442434e;
export const SBI_EXT_DBCN_CONSOLE_WRITE = 0;
export const SBI_EXT_DBCN_CONSOLE_READ = 1;
export const SBI_EXT_DBCN_CONSOLE_WRITE_BYTE = 2;

/**
 * Bytes one DBCN write/read moves. The calls are non-blocking and may do partial
 * transfers (the caller loops), and a bound keeps a guest from making the VMM copy
 * its whole RAM in one call.
 */
export const SBI_DBCN_MAX_CHUNK = 4096;

export function sbiExtensionName(eid: number): string {
  switch (eid >>> 0) {
    case SBI_EXT_0_1_SET_TIMER: return 'legacy set_timer';
    case SBI_EXT_0_1_CONSOLE_PUTCHAR: return 'legacy console_putchar';
    case SBI_EXT_0_1_CONSOLE_GETCHAR: return 'legacy console_getchar';
    case SBI_EXT_0_1_CLEAR_IPI: return 'legacy clear_ipi';
    case SBI_EXT_0_1_SEND_IPI: return 'legacy send_ipi';
    case SBI_EXT_0_1_REMOTE_FENCE_I: return 'legacy remote_fence_i';
    case SBI_EXT_0_1_REMOTE_SFENCE_VMA: return 'legacy remote_sfence_vma';
    case SBI_EXT_0_1_REMOTE_SFENCE_VMA_ASID: return 'legacy remote_sfence_vma_asid';
    case SBI_EXT_0_1_SHUTDOWN: return 'legacy shutdown';
    case SBI_EXT_BASE: return 'BASE';
    case SBI_EXT_TIME: return 'TIME';
    case SBI_EXT_IPI: return 'IPI';
    case SBI_EXT_RFENCE: return 'RFENCE';
    case SBI_EXT_HSM: return 'HSM';
    case SBI_EXT_SRST: return 'SRST';
    case SBI_EXT_DBCN: return 'DBCN';
    default: return `0x${(eid >>> 0).toString(16)}`;
  }
}
