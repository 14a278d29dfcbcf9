import { describe, expect, it } from 'vitest';
import { runSync } from '../../src/sched/index.js';
import { describeSbiCall, handleSbiCall, resetReasonToExitCode, type SbiContext, type SbiResult } from '../../src/vmm/sbi.js';
import {
  SBI_ERR_ALREADY_AVAILABLE, SBI_ERR_FAILED, SBI_ERR_INVALID_PARAM, SBI_ERR_NOT_SUPPORTED, SBI_SUCCESS,
  SBI_EXT_BASE, SBI_EXT_DBCN, SBI_EXT_HSM, SBI_EXT_IPI, SBI_EXT_RFENCE, SBI_EXT_SRST, SBI_EXT_TIME,
  SBI_HSM_STATE_STARTED, SBI_IMPL_ID_SHADOWVISOR, SBI_IMPL_VERSION, SBI_SPEC_VERSION,
} from '../../src/vmm/sbi-constants.js';

const RAM_BASE = 0x80000000;
const RAM_SIZE = 0x10000;

/** A hart-less SBI context: a byte array for RAM, arrays for console and timer. */
function fakeCtx(opts: { input?: string; failMemory?: boolean } = {}) {
  const ram = new Uint8Array(RAM_SIZE);
  const out: number[] = [];
  const input = [...Buffer.from(opts.input ?? '', 'latin1')];
  const timers: number[] = [];
  let ipis = 0;
  const fences: Array<[number | null, number | null]> = [];
  const ctx: SbiContext = {
    hartId: 0,
    machineIds: { mvendorid: 0, marchid: 0x5356, mimpid: 7 },
    console: {
      write: (b) => out.push(...b),
      read: (max) => Uint8Array.from(input.splice(0, max)),
    },
    setTimer: (t) => timers.push(t),
    sendIpi: () => void ipis++,
    sfenceVma: (gva, asid) => void fences.push([gva === null ? null : gva >>> 0, asid]),
    isGuestRam: (gpa, len) => gpa >= RAM_BASE && gpa + len <= RAM_BASE + RAM_SIZE,
    *readGuest(gpa, dst) {
      if (opts.failMemory) return SBI_ERR_FAILED;
      dst.set(ram.subarray(gpa - RAM_BASE, gpa - RAM_BASE + dst.length));
      return SBI_SUCCESS;
    },
    *writeGuest(gpa, src) {
      if (opts.failMemory) return SBI_ERR_FAILED;
      ram.set(src, gpa - RAM_BASE);
      return SBI_SUCCESS;
    },
  };
  return { ctx, ram, out, timers, fences, ipis: () => ipis, text: () => Buffer.from(out).toString('latin1') };
}

/** regs for one call: a7 = eid, a6 = fid, a0.. = args (int32 patterns, as in hart.regs). */
function regsFor(eid: number, fid: number, ...args: number[]): Int32Array {
  const r = new Int32Array(32);
  r[17] = eid;
  r[16] = fid;
  args.forEach((v, i) => (r[10 + i] = v));
  return r;
}

function call(ctx: SbiContext, eid: number, fid: number, ...args: number[]): SbiResult {
  return runSync(handleSbiCall(ctx, regsFor(eid, fid, ...args)));
}

const ok = (value: number) => ({ kind: 'return', error: SBI_SUCCESS, value: value | 0 });
const err = (error: number) => ({ kind: 'return', error, value: 0 });

describe('SBI Base extension', () => {
  const { ctx } = fakeCtx();
  it('reports spec version 2.0', () => {
    expect(SBI_SPEC_VERSION).toBe(0x02000000);
    expect(call(ctx, SBI_EXT_BASE, 0)).toEqual(ok(0x02000000));
  });
  it('reports our implementation id and version', () => {
    expect(call(ctx, SBI_EXT_BASE, 1)).toEqual(ok(SBI_IMPL_ID_SHADOWVISOR));
    // Not one of the spec's registered ids (0 BBL .. 11 bhyve).
    expect(SBI_IMPL_ID_SHADOWVISOR).toBeGreaterThan(11);
    expect(call(ctx, SBI_EXT_BASE, 2)).toEqual(ok(SBI_IMPL_VERSION));
  });
  it.each([
    ['legacy set_timer', 0x00, 1],
    ['legacy putchar', 0x01, 1],
    ['legacy getchar', 0x02, 1],
    ['legacy clear_ipi', 0x03, 0],
    ['legacy send_ipi', 0x04, 0],
    ['legacy shutdown', 0x08, 1],
    ['reserved legacy 0x09', 0x09, 0],
    ['BASE', SBI_EXT_BASE, 1],
    ['TIME', SBI_EXT_TIME, 1],
    ['HSM', SBI_EXT_HSM, 1],
    ['SRST', SBI_EXT_SRST, 1],
    ['DBCN', SBI_EXT_DBCN, 1],
    ['IPI', SBI_EXT_IPI, 1],
    ['RFENCE', SBI_EXT_RFENCE, 1],
    ['unknown', 0x12345678, 0],
  ])('probe_extension(%s) = %i', (_name, eid, want) => {
    expect(call(ctx, SBI_EXT_BASE, 3, eid)).toEqual(ok(want));
  });
  it('returns the machine ids from the context', () => {
    expect(call(ctx, SBI_EXT_BASE, 4)).toEqual(ok(0));
    expect(call(ctx, SBI_EXT_BASE, 5)).toEqual(ok(0x5356));
    expect(call(ctx, SBI_EXT_BASE, 6)).toEqual(ok(7));
  });
  it('answers an unknown function with SBI_ERR_NOT_SUPPORTED', () => {
    expect(call(ctx, SBI_EXT_BASE, 7)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
    expect(call(ctx, SBI_EXT_BASE, -1)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });
});

describe('IPI and RFENCE on one hart', () => {
  it('send_ipi to this hart raises SSIP; to no hart does nothing; to another hart is INVALID_PARAM', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_IPI, 0, 1, 0)).toEqual(ok(0));
    expect(f.ipis()).toBe(1);
    expect(call(f.ctx, SBI_EXT_IPI, 0, 0, -1)).toEqual(ok(0)); // base -1: every hart
    expect(f.ipis()).toBe(2);
    expect(call(f.ctx, SBI_EXT_IPI, 0, 0, 0)).toEqual(ok(0));
    expect(f.ipis()).toBe(2);
    expect(call(f.ctx, SBI_EXT_IPI, 0, 2, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(f.ctx, SBI_EXT_IPI, 0, 1, 1)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(f.ctx, SBI_EXT_IPI, 0, 3, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(f.ipis()).toBe(2);
    expect(call(f.ctx, SBI_EXT_IPI, 1, 1, 0)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });

  it('remote_sfence_vma is a local sfence.vma per page, or a full one', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_RFENCE, 1, 1, 0, 0x40001234, 0x2000)).toEqual(ok(0));
    expect(f.fences).toEqual([[0x40001000, null], [0x40002000, null], [0x40003000, null]]);
    f.fences.length = 0;
    call(f.ctx, SBI_EXT_RFENCE, 1, 1, 0, 0, 0); // start = size = 0: everything
    call(f.ctx, SBI_EXT_RFENCE, 1, 1, 0, 0x1000, -1); // size 2^32 - 1: everything
    call(f.ctx, SBI_EXT_RFENCE, 1, 1, 0, 0, 65 * 4096); // past the page bound: everything
    expect(f.fences).toEqual([[null, null], [null, null], [null, null]]);
    f.fences.length = 0;
    expect(call(f.ctx, SBI_EXT_RFENCE, 2, 0, -1, 0xc0000000 | 0, 4096, 0x201)).toEqual(ok(0));
    expect(f.fences).toEqual([[0xc0000000, 0x001]]); // the ASID is 9 bits on Sv32
    f.fences.length = 0;
    expect(call(f.ctx, SBI_EXT_RFENCE, 0, 1, 0)).toEqual(ok(0)); // fence.i: nothing cached to drop
    expect(call(f.ctx, SBI_EXT_RFENCE, 1, 0, 0, 0, 0)).toEqual(ok(0)); // no hart in the mask
    expect(f.fences).toEqual([]);
    expect(call(f.ctx, SBI_EXT_RFENCE, 1, 4, 0, 0, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    for (const fid of [3, 4, 5, 6, 7]) expect(call(f.ctx, SBI_EXT_RFENCE, fid, 1, 0)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });
});

describe('unknown extensions', () => {
  it('return SBI_ERR_NOT_SUPPORTED for every unimplemented EID', () => {
    const { ctx } = fakeCtx();
    for (const eid of [0x504d55 /* PMU */, 0x535441 /* STA */, 0x12345678, -1]) {
      expect(call(ctx, eid, 0)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
    }
  });
  it('legacy EIDs without an implementation answer in a0 only', () => {
    const { ctx } = fakeCtx();
    for (const eid of [0x03, 0x04, 0x05, 0x06, 0x07, 0x09, 0x0f]) {
      expect(call(ctx, eid, 0)).toEqual({ kind: 'legacy-return', a0: SBI_ERR_NOT_SUPPORTED });
    }
  });
});

describe('legacy console', () => {
  it('putchar writes the low byte and returns 0 in a0', () => {
    const f = fakeCtx();
    expect(call(f.ctx, 0x01, 99, 0x141)).toEqual({ kind: 'legacy-return', a0: 0 });
    expect(f.text()).toBe('A');
  });
  it('getchar returns the next byte, then -1 when there is no input', () => {
    const f = fakeCtx({ input: 'hi' });
    expect(call(f.ctx, 0x02, 0)).toEqual({ kind: 'legacy-return', a0: 0x68 });
    expect(call(f.ctx, 0x02, 0)).toEqual({ kind: 'legacy-return', a0: 0x69 });
    expect(call(f.ctx, 0x02, 0)).toEqual({ kind: 'legacy-return', a0: -1 });
  });
});

describe('timer', () => {
  it('TIME set_timer passes the 64-bit value from a0 (low) and a1 (high)', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_TIME, 0, 0x89abcdef | 0, 0x12)).toEqual(ok(0));
    expect(f.timers).toEqual([0x12 * 2 ** 32 + 0x89abcdef]);
  });
  it('(uint64_t)-1 arrives as a value no instruction clock reaches', () => {
    const f = fakeCtx();
    call(f.ctx, SBI_EXT_TIME, 0, -1, -1);
    expect(f.timers[0]).toBeGreaterThan(2 ** 63);
  });
  it('legacy set_timer is the same call with the legacy return', () => {
    const f = fakeCtx();
    expect(call(f.ctx, 0x00, 0, 1000, 0)).toEqual({ kind: 'legacy-return', a0: 0 });
    expect(f.timers).toEqual([1000]);
  });
  it('TIME with an unknown fid is not supported and arms nothing', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_TIME, 1, 5)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
    expect(f.timers).toEqual([]);
  });
});

describe('SRST', () => {
  it.each([
    ['shutdown, no reason', 0, 0, 0],
    ['shutdown, system failure', 0, 1, 1],
    ['cold reboot', 1, 0, 0],
    ['warm reboot, failure', 2, 1, 1],
    ['implementation reason: exit 42', 0, 0xe000002a, 42],
    ['implementation reason: exit 255', 0, 0xe00000ff, 255],
  ])('%s -> exit %i', (_n, type, reason, code) => {
    const { ctx } = fakeCtx();
    expect(call(ctx, SBI_EXT_SRST, 0, type, reason | 0)).toEqual({ kind: 'reset', resetType: type, resetReason: reason >>> 0, exitCode: code });
  });
  it.each([
    ['reserved type', 3, 0],
    ['vendor type', 0xf0000000, 0],
    ['reserved reason', 0, 2],
    ['implementation reason out of our range', 0, 0xe0000100],
    ['vendor reason', 0, 0xf0000000],
  ])('%s -> SBI_ERR_INVALID_PARAM', (_n, type, reason) => {
    const { ctx } = fakeCtx();
    expect(call(ctx, SBI_EXT_SRST, 0, type | 0, reason | 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
  });
  it('unknown fid is not supported', () => {
    const { ctx } = fakeCtx();
    expect(call(ctx, SBI_EXT_SRST, 1, 0, 0)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });
  it('legacy shutdown resets with exit 0', () => {
    const { ctx } = fakeCtx();
    expect(call(ctx, 0x08, 0)).toEqual({ kind: 'reset', resetType: 0, resetReason: 0, exitCode: 0 });
  });
  it('maps reasons to exit codes', () => {
    expect(resetReasonToExitCode(0)).toBe(0);
    expect(resetReasonToExitCode(1)).toBe(1);
    expect(resetReasonToExitCode(0xe0000007 | 0)).toBe(7);
    expect(resetReasonToExitCode(2)).toBe(-1);
  });
});

describe('HSM with one hart', () => {
  const { ctx } = fakeCtx();
  it('hart_start of the running hart is SBI_ERR_ALREADY_AVAILABLE', () => {
    expect(call(ctx, SBI_EXT_HSM, 0, 0, 0x80000000 | 0, 0)).toEqual(err(SBI_ERR_ALREADY_AVAILABLE));
  });
  it('hart_start of a hart that does not exist is SBI_ERR_INVALID_PARAM', () => {
    expect(call(ctx, SBI_EXT_HSM, 0, 1, 0x80000000 | 0, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
  });
  it('hart_get_status: STARTED for hart 0, invalid for others', () => {
    expect(call(ctx, SBI_EXT_HSM, 2, 0)).toEqual(ok(SBI_HSM_STATE_STARTED));
    expect(call(ctx, SBI_EXT_HSM, 2, 3)).toEqual(err(SBI_ERR_INVALID_PARAM));
  });
  it('hart_stop stops the only hart; retentive suspend idles', () => {
    expect(call(ctx, SBI_EXT_HSM, 1)).toEqual({ kind: 'hart-stop' });
    expect(call(ctx, SBI_EXT_HSM, 3, 0)).toEqual({ kind: 'suspend' });
  });
  it('suspend: non-retentive not supported, reserved and platform types invalid', () => {
    expect(call(ctx, SBI_EXT_HSM, 3, 0x80000000 | 0)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
    expect(call(ctx, SBI_EXT_HSM, 3, 1)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(ctx, SBI_EXT_HSM, 3, 0x10000000)).toEqual(err(SBI_ERR_INVALID_PARAM));
  });
  it('unknown fid is not supported', () => {
    expect(call(ctx, SBI_EXT_HSM, 4)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });
});

describe('DBCN', () => {
  it('console_write copies guest memory to the console and returns the count', () => {
    const f = fakeCtx();
    f.ram.set(Buffer.from('hello, sbi'), 0x100);
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 10, (RAM_BASE + 0x100) | 0, 0)).toEqual(ok(10));
    expect(f.text()).toBe('hello, sbi');
  });
  it('console_write of zero bytes succeeds without reading memory', () => {
    const f = fakeCtx({ failMemory: true });
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 0, 0, 0)).toEqual(ok(0));
  });
  it('console_write writes at most one chunk per call (partial write)', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 5000, RAM_BASE | 0, 0)).toEqual(ok(4096));
    expect(f.out.length).toBe(4096);
  });
  it('rejects memory outside RAM or above 4 GiB with SBI_ERR_INVALID_PARAM', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 4, 0x1000, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 16, (RAM_BASE + RAM_SIZE - 8) | 0, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 4, RAM_BASE | 0, 1)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(call(f.ctx, SBI_EXT_DBCN, 1, 4, 0x1000, 0)).toEqual(err(SBI_ERR_INVALID_PARAM));
    expect(f.out).toEqual([]);
  });
  it('reports a failed host access as SBI_ERR_FAILED', () => {
    const f = fakeCtx({ failMemory: true });
    expect(call(f.ctx, SBI_EXT_DBCN, 0, 4, RAM_BASE | 0, 0)).toEqual(err(SBI_ERR_FAILED));
  });
  it('console_read copies pending input into guest memory', () => {
    const f = fakeCtx({ input: 'abc' });
    expect(call(f.ctx, SBI_EXT_DBCN, 1, 2, (RAM_BASE + 0x10) | 0, 0)).toEqual(ok(2));
    expect(Buffer.from(f.ram.subarray(0x10, 0x12)).toString()).toBe('ab');
    expect(call(f.ctx, SBI_EXT_DBCN, 1, 8, (RAM_BASE + 0x10) | 0, 0)).toEqual(ok(1));
    expect(call(f.ctx, SBI_EXT_DBCN, 1, 8, (RAM_BASE + 0x10) | 0, 0)).toEqual(ok(0));
    expect(f.ram[0x10]).toBe(0x63);
  });
  it('console_write_byte writes one byte', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_DBCN, 2, 0x7a)).toEqual(ok(0));
    expect(f.text()).toBe('z');
  });
  it('unknown fid is not supported', () => {
    const f = fakeCtx();
    expect(call(f.ctx, SBI_EXT_DBCN, 3)).toEqual(err(SBI_ERR_NOT_SUPPORTED));
  });
});

describe('describeSbiCall', () => {
  it('names the extension and the result', () => {
    const regs = regsFor(SBI_EXT_DBCN, 2, 0x41);
    expect(describeSbiCall(regs, { kind: 'return', error: 0, value: 0 })).toBe('DBCN fid=2 a0=0x41 a1=0x0 a2=0x0 -> return error=0 value=0x0');
  });
});
