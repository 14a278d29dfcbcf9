// The vCPU's translation cache under the VMM: every way guest memory changes
// without a guest store through the hart must drop the compiled code of what
// changed, as the sptes are dropped. Each case is one guest that runs a function
// until the block compiler has it, lets one path change that function, and runs it
// again: on both engines it must see the new bytes. A debug switch takes each
// invalidation away, and then the compiled guest runs the old bytes.
//
// The guest (S-mode, paging off unless said): f at F is `li a0, 1; ret`. main
// calls f WARM times, prints '0' + f() through the legacy SBI putchar (the
// marker: the gate acts right after that ecall, before the next instruction),
// lets the path change f, calls f WARM times again and prints '0' + f(). An
// illegal instruction (f read as zeroes) prints 'T'. So "12": the new code ran;
// "1T": zeroes ran; "11": the old code ran.

import { describe, expect, it } from 'vitest';
import { Prog, addi, bne, csrrs, csrw, ecall, jal, jalr, li, lw, sfence_vma, sw } from '../../src/hart/asm.js';
import type { Hart } from '../../src/hart/hart.js';
import { MADV_DONTNEED } from '../../src/host/kernel.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { SplitVirtqueue } from '../../src/vmm/devices/virtqueue.js';
import { Vmm, type VcpuGate, type VmmConfig } from '../../src/vmm/vmm.js';
import type { Task } from '../../src/sched/index.js';
import { elf32 } from './elf32.js';

const RAM = 0x80000000;
const PAGE = 4096;
const CSR_STVEC = 0x105;
const CSR_SATP = 0x180;
const CSR_SSTATUS = 0x100;
const SBI_EXT_DBCN = 0x4442434e;
/** f, alone on its page. */
const F = RAM + 2 * PAGE;
const WARM = 64;
const LI_A0_1 = addi(10, 0, 1);
const LI_A0_2 = addi(10, 0, 2);
const RET = jalr(0, 1, 0);
const NEW_F = new Uint8Array(new Int32Array([LI_A0_2, RET]).buffer);
/** The second version of f (NEW_F), on a page of its own. */
const F2 = RAM + 5 * PAGE;

interface Guest {
  elf: Uint8Array;
  /** pc right after the marker's ecall: where the gate changes f. */
  marked: number;
}

/**
 * `between`: code main runs after the marker (the guest's own part of the path).
 * With `sv32`, main turns paging on first: pages 3 and 4 are the root and a leaf
 * table that identity-maps the first 4 MiB of RAM (RWX, A and D set).
 */
function guest(between: (p: Prog) => void = () => {}, opts: { sv32?: boolean } = {}): Guest {
  const p = new Prog(RAM | 0);
  const callF = () => p.emit(li(5, F), jalr(1, 5, 0));
  const putc = () => p.emit(li(17, 1), ecall());
  if (opts.sv32) p.emit(li(5, (0x80000000 | ((RAM + 3 * PAGE) / PAGE)) | 0), csrw(CSR_SATP, 5), sfence_vma(0, 0));
  const la = p.words.length;
  p.emit(li(5, 0)); // la t0, trap: patched once the handler's address is known
  p.emit(csrw(CSR_STVEC, 5), li(9, WARM));
  p.label('warm');
  callF();
  p.emit(addi(9, 9, -1)).to('warm', (o) => bne(9, 0, o));
  p.emit(addi(10, 10, 0x30));
  putc();
  p.label('marked');
  between(p);
  p.emit(li(9, WARM));
  p.label('again');
  callF();
  p.emit(addi(9, 9, -1)).to('again', (o) => bne(9, 0, o));
  p.emit(addi(10, 10, 0x30));
  putc();
  p.emit(li(17, 8), ecall()).to('end', (o) => jal(0, o));
  p.label('trap').emit(li(10, 0x54));
  putc();
  p.emit(li(17, 8), ecall());
  p.label('end').to('end', (o) => jal(0, o));
  const words = p.assemble();
  const [lui0, addi0] = li(5, p.addr('trap'));
  words[la] = lui0!;
  words[la + 1] = addi0!;
  const image = new Uint8Array(6 * PAGE);
  const dv = new DataView(image.buffer);
  words.forEach((w, i) => dv.setInt32(i * 4, w, true));
  dv.setInt32(F - RAM, LI_A0_1, true);
  dv.setInt32(F - RAM + 4, RET, true);
  dv.setInt32(F2 - RAM, LI_A0_2, true);
  dv.setInt32(F2 - RAM + 4, RET, true);
  if (opts.sv32) {
    dv.setUint32(3 * PAGE + (RAM >>> 22) * 4, (((RAM + 4 * PAGE) / PAGE) << 10) | 0x1, true);
    for (let i = 0; i < 1024; i++) dv.setUint32(4 * PAGE + i * 4, ((RAM / PAGE + i) << 10) | 0xcf, true);
  }
  return { elf: elf32(RAM, image), marked: p.addr('marked') };
}

/** Runs `action` once, on the vCPU thread, when the guest has just made its marker call. */
function gateAt(marked: number, action: (vmm: Vmm) => Task): { gate: VcpuGate; bind(vmm: Vmm): void; fired(): boolean } {
  let vmm: Vmm | null = null;
  let fired = false;
  return {
    bind: (v) => void (vmm = v),
    fired: () => fired,
    gate: {
      *enter(hart: Hart) {
        if (!fired && hart.pc === marked) {
          fired = true;
          yield* action(vmm!);
        }
        return Infinity;
      },
      leave() {},
    },
  };
}

interface Run {
  output: string;
  exitCode: number;
  compiled: number;
  vmm: Vmm;
}

function run(g: Guest, opts: {
  jit: boolean;
  protocol?: KvmProtocol;
  action?: (vmm: Vmm) => Task;
  config?: Partial<VmmConfig>;
  setup?: (vmm: Vmm) => void;
}): Run {
  const hook = gateAt(g.marked, opts.action ?? function* () {});
  const vmm = new Vmm({
    guestMemBytes: 256 * 1024, hostMemBytes: 512 * 1024, protocol: opts.protocol ?? 'modern', seed: 1, maxInsns: 1e6,
    gate: hook.gate,
    ...(opts.jit ? { jit: { threshold: 4 } } : {}),
    ...opts.config,
  });
  hook.bind(vmm);
  opts.setup?.(vmm);
  expect(vmm.boot(g.elf)).toBeNull();
  const r = vmm.run();
  if (opts.action !== undefined) expect(hook.fired(), 'the guest reached its marker').toBe(true);
  expect(r.stats.guest.warnings).toBe(0);
  return { output: r.output, exitCode: r.exitCode, compiled: vmm.vcpu!.hart.jit?.compiled ?? 0, vmm };
}

const ENGINES = [['interpreter', false], ['jit', true]] as const;

describe('code coherence under the VMM: a write through the VMM mapping', () => {
  // SBI DBCN console_read copies console input into guest memory (sbi.ts writeGuest).
  const dbcn = guest((p) => p.emit(li(17, SBI_EXT_DBCN), li(16, 1), li(10, NEW_F.length), li(11, F), li(12, 0), ecall()));

  it.each(ENGINES)('the SBI writing code (DBCN read into f): %s runs the new f', (_, jit) => {
    const r = run(dbcn, { jit, config: { consoleInput: NEW_F } });
    expect(r.output).toBe('12');
    if (jit) expect(r.compiled).toBeGreaterThan(0);
  });

  it('without the write path invalidating, the compiled guest runs the old f', () => {
    expect(run(dbcn, { jit: true, config: { consoleInput: NEW_F }, setup: (v) => void (v.debug.noWriteCodeInvalidate = true) }).output).toBe('11');
  });

  // A virtio device returning a buffer writes the used ring through the GuestMemory
  // every device is given. The driver put its used ring just before f, so the
  // element's id and len land on f: id `li a0, 2`, len `ret`.
  const marked = guest();
  const deviceWrite = function* (vmm: Vmm): Task {
    const q = new SplitVirtqueue(0, { num: 1, descGpa: RAM + PAGE, driverGpa: RAM + PAGE + 64, deviceGpa: F - 4 }, vmm.guestMemory(), false);
    yield* q.push(LI_A0_2 >>> 0, RET >>> 0);
  };

  it.each(ENGINES)('a virtio used-ring write over f: %s runs the new f', (_, jit) => {
    const r = run(marked, { jit, action: deviceWrite });
    expect(r.output).toBe('12');
    if (jit) expect(r.compiled).toBeGreaterThan(0);
  });

  it('without the write path invalidating, the compiled guest runs the old f', () => {
    expect(run(marked, { jit: true, action: deviceWrite, setup: (v) => void (v.debug.noWriteCodeInvalidate = true) }).output).toBe('11');
  });
});

describe('code coherence under the VMM: the host takes the page away', () => {
  const marked = guest();
  const fHva = (vmm: Vmm) => vmm.ramHva + (F - RAM);
  const dontneed = function* (vmm: Vmm): Task {
    expect(yield* vmm.kernel.madvise(vmm.proc.mm, fHva(vmm), PAGE, MADV_DONTNEED)).toBe(0);
  };

  // Zeroes trap at the first instruction, which the interpreter runs after the
  // zap's TLB flush: no compiled code of the freed frame can run before it, with
  // or without the zap dropping it. The swap cases below are the ones it decides.
  for (const protocol of ['modern', 'v7'] as const) {
    it.each(ENGINES)(`${protocol}: MADV_DONTNEED of f's page: %s reads f as zeroes`, (_, jit) => {
      const r = run(marked, { jit, protocol, action: dontneed });
      expect(r.output).toBe('1T');
      if (jit) expect(r.compiled).toBeGreaterThan(0);
    });
  }

  it.each(ENGINES)('pin: the spte keeps its pinned frame past DONTNEED, so %s runs the old f (as coherent as the sptes)', (_, jit) => {
    expect(run(marked, { jit, protocol: 'pin', action: dontneed }).output).toBe('11');
  });

  // Swap-out, then swap-in into another frame: the gate swaps out the second
  // version's page, then f's (the host's free list is a stack, so f's frame is
  // next out); the guest points f's virtual page at the second version, whose
  // swap-in lands in f's old frame. Same virtual pc, same frame, other bytes: only
  // the zap's drop tells them apart (the first call's first instruction is the
  // interpreter's, after the TLB miss; the next calls dispatch compiled code).
  const LEAF = RAM + 4 * PAGE;
  const remap = guest((p) => p.emit(li(5, LEAF + ((F - RAM) / PAGE) * 4), li(6, ((F2 / PAGE) << 10) | 0xcf), sw(6, 5, 0), sfence_vma(0, 0)), { sv32: true });
  const swapBoth = function* (vmm: Vmm): Task {
    for (const gpa of [F2, F]) {
      // Under the 2008 protocol a young page survives the first try (aging clears it).
      let kind = '';
      for (let tries = 0; tries < 3 && kind !== 'freed'; tries++) kind = (yield* vmm.kernel.reclaimUserPage(vmm.proc.mm, vmm.ramHva + (gpa - RAM))).kind;
      expect(kind).toBe('freed');
    }
  };

  for (const protocol of ['modern', 'v7'] as const) {
    it.each(ENGINES)(`${protocol}: f swapped out, its page remapped to a swapped-out second version: %s runs it`, (_, jit) => {
      const r = run(remap, { jit, protocol, action: swapBoth });
      expect(r.output).toBe('12');
      if (jit) expect(r.compiled).toBeGreaterThan(0);
    });

    it(`${protocol}: with the zap leaving the frame's compiled code, the compiled guest runs the swapped-out f`, () => {
      const r = run(remap, {
        jit: true, protocol, action: function* (vmm) {
          vmm.vm!.debug.noCodeDrop = true;
          yield* swapBoth(vmm);
        },
      });
      expect(r.output).toBe('11');
    });
  }
});

describe('code coherence under the VMM: KVM writing a guest pte', () => {
  // KVM's walker sets A and D in guest ptes by writing the guest's table page
  // (cmpxchg_gpte), a write no vCPU store makes. A guest that runs code from its
  // own table page must see it. g is two words of the leaf table, run as code: the
  // pte of index K, (0x80020 << 10) | V | R | U, is `addi x0, x1, 0x200` while A is
  // clear, and OP-FP (illegal) once the walker has set A; the pte after it is `ret`
  // (it maps a page the guest never touches). main sets SUM (the pte maps a U
  // page), calls g WARM times, prints 'A', loads through the pte, which sets A,
  // calls g again and prints 'B': "AT" when the second round ran the new word.
  const LEAF = RAM + 4 * PAGE;
  const K = 1000;
  const G = LEAF + 4 * K;
  const PTE_K = (((RAM + 32 * PAGE) / PAGE) << 10) | 0x13;
  function pteGuest(): Uint8Array {
    const p = new Prog(RAM | 0);
    const putc = (c: number) => p.emit(li(10, c), li(17, 1), ecall());
    p.emit(li(5, (0x80000000 | ((RAM + 3 * PAGE) / PAGE)) | 0), csrw(CSR_SATP, 5), sfence_vma(0, 0));
    const la = p.words.length;
    // SUM before the first round: setting it later would flush the TLB, and the
    // first instruction after a TLB miss is always the interpreter's.
    p.emit(li(5, 0), csrw(CSR_STVEC, 5), li(5, 1 << 18), csrrs(0, CSR_SSTATUS, 5), li(9, WARM));
    p.label('warm').emit(li(5, G), jalr(1, 5, 0), addi(9, 9, -1)).to('warm', (o) => bne(9, 0, o));
    putc(0x41);
    p.emit(li(5, RAM + K * PAGE), lw(6, 5, 0), li(9, WARM));
    p.label('again').emit(li(5, G), jalr(1, 5, 0), addi(9, 9, -1)).to('again', (o) => bne(9, 0, o));
    putc(0x42);
    p.emit(li(17, 8), ecall()).to('end', (o) => jal(0, o));
    p.label('trap');
    putc(0x54);
    p.emit(li(17, 8), ecall());
    p.label('end').to('end', (o) => jal(0, o));
    const words = p.assemble();
    const [lui0, addi0] = li(5, p.addr('trap'));
    words[la] = lui0!;
    words[la + 1] = addi0!;
    const image = new Uint8Array(5 * PAGE);
    const dv = new DataView(image.buffer);
    words.forEach((w, i) => dv.setInt32(i * 4, w, true));
    dv.setUint32(3 * PAGE + (RAM >>> 22) * 4, ((LEAF / PAGE) << 10) | 0x1, true);
    for (let i = 0; i < 1024; i++) dv.setUint32(4 * PAGE + i * 4, ((RAM / PAGE + i) << 10) | 0xcf, true);
    dv.setUint32(G - RAM, PTE_K, true);
    dv.setInt32(G - RAM + 4, RET, true);
    return elf32(RAM, image);
  }
  const g = { elf: pteGuest(), marked: -1 };

  it('the pte word decodes as the test needs', () => {
    expect(PTE_K).toBe(addi(0, 1, 0x200));
    expect((PTE_K | 0x40) & 0x7f).toBe(0x53); // OP-FP: no F, illegal
  });

  it.each(ENGINES)('the walker setting A in a pte that is also code: %s runs the new word', (_, jit) => {
    const r = run(g, { jit });
    expect(r.output).toBe('AT');
    if (jit) expect(r.compiled).toBeGreaterThan(0);
  });

  it('without the walker invalidating, the compiled guest runs the old word', () => {
    // The gate's first call, at the entry, comes after KVM_CREATE_VM: the switch goes on there.
    const r = run({ elf: g.elf, marked: RAM | 0 }, { jit: true, action: function* (vmm) { vmm.vm!.debug.noGpteCodeInvalidate = true; } });
    expect(r.output).toBe('AB');
  });
});
