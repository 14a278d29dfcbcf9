// Sv32 guests: the test builds guest page tables in guest memory; the vCPU translates
// through shadow pages built by walking them. The walk sets guest A/D, maps a clean
// gpte read-only until the first store, shadows megapages with 4 KiB sptes, and
// injects guest page faults into S-mode with stval.

import { describe, expect, it } from 'vitest';
import { CSR_SATP, CSR_SEPC, CSR_SCAUSE, CSR_STVAL, CSR_STVEC } from '../../src/hart/csr.js';
import { PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X, SATP_MODE_SV32 } from '../../src/hart/sv32.js';
import { isWritable, sptePfn } from '../../src/kvm/mmu/spte.js';
import type { VcpuExit } from '../../src/kvm/vcpu.js';
import { runSync } from '../../src/sched/index.js';
import { Prog, add, addi, beq, bne, csrr, csrw, li, lw, sfence_vma, sret, sw } from '../hart/asm.js';
import {
  KiB,
  RAM_GPA,
  UCALL_DONE,
  UCALL_LOG,
  createVm,
  emitDone,
  emitFail,
  expectClean,
  readGuest32,
  runAudited,
  runUntilUcall,
  teardown,
  writeGuest,
} from './vm-harness.js';
import type { TestVm } from './vm-harness.js';
import { ScriptPolicy } from './vm-harness.js';
import { patternProgram } from './guests.js';
import { Scheduler } from '../../src/sched/index.js';
import { ptePfn, ptePresent } from '../../src/host/index.js';

const ROOT = RAM_GPA + 0x1000;
const CODE_VA = 0x80000000;
const DATA_VA = 0x40000000;
const MEGA_VA = 0xc0000000;
const MEGA_GPA = RAM_GPA + 0x400000;
const HOLE_VA = 0x50000000;

/** Builds Sv32 tables in guest memory from the host side, like a guest kernel would. */
export class GuestPager {
  private next: number;
  constructor(
    readonly t: TestVm,
    readonly root = ROOT,
  ) {
    this.next = root + 0x1000;
  }
  private read(gpa: number): number {
    return runSync(readGuest32(this.t, gpa));
  }
  private write(gpa: number, v: number): void {
    runSync(writeGuest(this.t, gpa, [v]));
  }
  l1Pa(va: number): number {
    return this.root + (va >>> 22) * 4;
  }
  ptePa(va: number): number {
    const l1 = this.read(this.l1Pa(va));
    return (l1 >>> 10) * 4096 + ((va >>> 12) & 0x3ff) * 4;
  }
  map4k(va: number, gpa: number, flags: number): this {
    const l1 = this.read(this.l1Pa(va));
    if ((l1 & PTE_V) === 0) {
      this.write(this.l1Pa(va), ((this.next / 4096) << 10) | PTE_V);
      this.next += 0x1000;
    }
    this.write(this.ptePa(va), ((gpa / 4096) << 10) | flags);
    return this;
  }
  mapMega(va: number, gpa: number, flags: number): this {
    this.write(this.l1Pa(va), ((gpa / 4096) << 10) | flags);
    return this;
  }
  pte(va: number): number {
    return this.read(this.ptePa(va));
  }
  satp(): number {
    return SATP_MODE_SV32 | (this.root / 4096);
  }
}

/** Guest trap handler: logs scause, stval, sepc; skips the instruction; sret. */
function emitHandler(p: Prog): void {
  p.label('handler');
  p.emit(li(11, UCALL_LOG));
  p.emit(csrr(10, CSR_SCAUSE), sw(10, 11, 0), csrr(10, CSR_STVAL), sw(10, 11, 0), csrr(10, CSR_SEPC), sw(10, 11, 0));
  p.emit(addi(10, 10, 4), csrw(CSR_SEPC, 10), sret());
}

function setup(
  code: (p: Prog) => void,
  map?: (pg: GuestPager) => void,
  t: TestVm = createVm({ protocol: 'modern', hostBytes: 256 * KiB, guestBytes: 8192 * KiB }),
): { t: TestVm; pg: GuestPager; prog: Prog } {
  const prog = new Prog(CODE_VA | 0);
  prog.emit(li(5, 0)); // patched below: li t0, handler
  prog.emit(csrw(CSR_STVEC, 5));
  code(prog);
  emitHandler(prog);
  const words = prog.assemble();
  const h = li(5, prog.addr('handler'));
  words[0] = h[0]!;
  words[1] = h[1]!;
  runSync(writeGuest(t, RAM_GPA, words));
  const pg = new GuestPager(t);
  // Code: executable, A clear (the walk sets it), not writable.
  pg.map4k(CODE_VA, RAM_GPA, PTE_V | PTE_R | PTE_X);
  // The ucall page: no memslot behind it, so MMIO.
  pg.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
  map?.(pg);
  t.vcpu.hart.writeCsr(CSR_SATP, pg.satp());
  t.vcpu.hart.pc = CODE_VA | 0;
  return { t, pg, prog };
}

function run(t: TestVm, every = 1): VcpuExit | null {
  let exit: VcpuExit | null = null;
  t.sched.spawn('vcpu0', function* () {
    exit = yield* runUntilUcall(t);
  });
  expectClean(runAudited(t, { every }), t);
  return exit;
}

describe('Sv32 guest through shadow pages', () => {
  it('translates, sets guest A/D by the walk, maps a clean gpte read-only until the first store', () => {
    const { t, pg } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), li(6, 0x1234), sw(6, 8, 0)); // store to a clean RW page
        p.emit(li(9, DATA_VA + 0x1000), lw(7, 9, 0)); // load only
        p.emit(lw(7, 8, 0)).to('fail', (o) => bne(7, 6, o));
        emitDone(p);
        p.label('fail');
        emitFail(p, 7);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R | PTE_W);
        pg.map4k(DATA_VA + 0x1000, RAM_GPA + 0x11000, PTE_V | PTE_R | PTE_W);
      },
    );
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail).toBeNull();
    expect(t.ucall.done).toBe(true);
    expect(runSync(readGuest32(t, RAM_GPA + 0x10000))).toBe(0x1234);
    expect(pg.pte(CODE_VA) & (PTE_A | PTE_D)).toBe(PTE_A);
    expect(pg.pte(DATA_VA) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(pg.pte(DATA_VA + 0x1000) & (PTE_A | PTE_D)).toBe(PTE_A);
    // The load-only page is mapped, read-only, by a shadow spte.
    const tr = t.vcpu.translator;
    const sps = t.vm.sps;
    const l1 = sps.spteAt(tr.root * 1024 + (DATA_VA >>> 22));
    const leaf = sps.spteAt((l1 >>> 9) * 1024 + 1);
    expect(isWritable(leaf)).toBe(false);
    expect(sptePfn(leaf)).toBeGreaterThan(0);
    expect(t.vm.stats.pfGuest).toBe(0);
    teardown(t);
  });

  it('injects guest page faults into S-mode with scause/stval/sepc', () => {
    let loadPc = 0;
    let storePc = 0;
    const { t } = setup(
      (p) => {
        p.emit(li(8, HOLE_VA));
        loadPc = p.here;
        p.emit(lw(7, 8, 0)); // not mapped: load page fault
        p.emit(li(9, DATA_VA));
        storePc = p.here;
        p.emit(sw(7, 9, 0)); // read-only: store page fault
        p.emit(li(9, DATA_VA + 0x1000));
        p.emit(lw(7, 9, 0)); // user page from S with SUM=0: load page fault
        emitDone(p);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R);
        pg.map4k(DATA_VA + 0x1000, RAM_GPA + 0x11000, PTE_V | PTE_R | PTE_W | PTE_U);
      },
    );
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.done).toBe(true);
    const log = t.ucall.log.map((v) => v >>> 0);
    expect(log).toEqual([13, HOLE_VA, loadPc >>> 0, 15, DATA_VA, storePc >>> 0, 13, DATA_VA + 0x1000, (storePc + 12) >>> 0]);
    expect(t.vm.stats.pfGuest).toBe(3);
    teardown(t);
  });

  it('shadows a guest megapage with 4 KiB sptes of a direct page', () => {
    const { t } = setup(
      (p) => {
        p.emit(li(8, MEGA_VA + 0x1234), li(6, 0x777), sw(6, 8, 0), lw(7, 8, 0)).to('fail', (o) => bne(7, 6, o));
        p.emit(li(8, MEGA_VA + 0x3ff000), sw(6, 8, 0));
        emitDone(p);
        p.label('fail');
        emitFail(p, 7);
      },
      (pg) => pg.mapMega(MEGA_VA, MEGA_GPA, PTE_V | PTE_R | PTE_W),
    );
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail).toBeNull();
    expect(runSync(readGuest32(t, MEGA_GPA + 0x1234))).toBe(0x777);
    expect(runSync(readGuest32(t, MEGA_GPA + 0x3ff000))).toBe(0x777);
    const sps = t.vm.sps;
    const l1 = sps.spteAt(t.vcpu.translator.root * 1024 + (MEGA_VA >>> 22));
    const child = l1 >>> 9;
    expect(sps.role[child]! & 2).toBe(2); // direct
    expect(sps.spteGfn[child * 1024 + 1]).toBe(MEGA_GPA / 4096 + 1);
    teardown(t);
  });

  it('a changed gpte takes effect at sfence.vma', () => {
    const { t } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), lw(6, 8, 0)); // old mapping: reads 0x1111
        // Rewrite the leaf gpte to point at the second page (gpte pa known at build time).
        p.emit(li(9, 0), li(10, 0)); // patched by the test: t4 = gpte pa, a0 = new gpte
        p.emit(sw(10, 9, 0), sfence_vma(8, 0), lw(7, 8, 0)); // new mapping: reads 0x2222
        p.emit(li(11, UCALL_LOG), sw(6, 11, 0), sw(7, 11, 0));
        emitDone(p);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R | PTE_A);
        // The guest writes its own tables: map the L0 table of DATA_VA writable.
        pg.map4k(DATA_VA + 0x5000, pg.ptePa(DATA_VA) - (pg.ptePa(DATA_VA) % 4096), PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
      },
    );
    const pg = new GuestPager(t);
    const gptePa = pg.ptePa(DATA_VA);
    runSync(writeGuest(t, RAM_GPA + 0x10000, [0x1111]));
    runSync(writeGuest(t, RAM_GPA + 0x20000, [0x2222]));
    // Patch "li s1 / li a0" (words 6.. of the code): rebuild them in place.
    const va = DATA_VA + 0x5000 + (gptePa % 4096);
    const newGpte = (((RAM_GPA + 0x20000) / 4096) << 10) | PTE_V | PTE_R | PTE_A;
    const words = [...li(9, va), ...li(10, newGpte)];
    // The patched li pair follows "li s0; lw" (2 + 1 words) after the 3-word prologue.
    runSync(writeGuest(t, RAM_GPA + 4 * 6, words));
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.vcpu.translator.sfenceCalls).toBeGreaterThan(0);
    expect(t.ucall.log).toEqual([0x1111, 0x2222]);
    teardown(t);
  });
});

describe('Sv32 under memory pressure', () => {
  it.each(['modern', 'v7'] as const)('%s: a pattern over identity-mapped RAM 2x host RAM survives; guest tables swap too', (protocol) => {
    const guestBytes = 512 * KiB;
    const t = createVm({ protocol, hostBytes: 256 * KiB, guestBytes });
    const code = patternProgram(RAM_GPA + 0x10000, RAM_GPA + guestBytes);
    const pg = new GuestPager(t, RAM_GPA + 0x4000);
    runSync(writeGuest(t, RAM_GPA, code.assemble()));
    for (let off = 0; off < guestBytes; off += 4096) pg.map4k(RAM_GPA + off, RAM_GPA + off, PTE_V | PTE_R | PTE_W | PTE_X);
    pg.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    t.vcpu.hart.writeCsr(CSR_SATP, pg.satp());
    const exit = run(t, 17);
    expect(exit).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail).toBeNull();
    expect(t.ucall.done).toBe(true);
    expect(t.k.stats().pswpout).toBeGreaterThan(64);
    expect(t.k.stats().pswpin).toBeGreaterThan(32);
    // Every data page was written, so every leaf gpte is accessed and dirty.
    for (let off = 0x10000; off < guestBytes; off += 0x10000) expect(pg.pte(RAM_GPA + off) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    teardown(t);
  });
});

describe('a gpte that changes between the walk and mmu_lock makes the fault retry', () => {
  it('re-walks and maps the new target', () => {
    const A = RAM_GPA + 0x10000;
    const B = RAM_GPA + 0x20000;
    let inner: ScriptPolicy | null = null;
    const sched = new Scheduler({ policy: { name: 'script', pick: (r, l) => (inner === null ? 0 : inner.pick(r, l)) } });
    const t0 = createVm({ protocol: 'modern', sched, hostBytes: 256 * KiB, guestBytes: 8192 * KiB });
    const { t, pg } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), li(6, 0x5151), sw(6, 8, 0));
        emitDone(p);
      },
      (pg) => pg.map4k(DATA_VA, A, PTE_V | PTE_R | PTE_W),
      t0,
    );
    const aHva = t.ramHva + (A - RAM_GPA);
    const gptePa = pg.ptePa(DATA_VA);
    inner = new ScriptPolicy([
      {
        thread: 'vcpu0',
        until: () => {
          const pte = t.proc.mm.pt.get(aHva >>> 12);
          return ptePresent(pte) && t.k.frames.gupRefs[ptePfn(pte)]! > 0 && t.vcpu.state === 'faulting';
        },
      },
      { thread: 'guest-os', until: () => t.sched.threads.find((th) => th.name === 'guest-os')!.state === 'done' },
    ]);
    runSync(writeGuest(t, A, [1]));
    t.sched.spawn('guest-os', function* () {
      // Another vCPU of the guest repoints the pte (as a guest kernel would, through memory).
      yield* writeGuest(t, gptePa, [((B / 4096) << 10) | PTE_V | PTE_R | PTE_W]);
    });
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.vm.stats.pfRetry).toBeGreaterThanOrEqual(1);
    expect(runSync(readGuest32(t, A))).toBe(1);
    expect(runSync(readGuest32(t, B))).toBe(0x5151);
    teardown(t);
  });
});

describe('guest megapages', () => {
  it('two megapage gptes over the same memory, one clean: a store through the clean one sets its D bit', () => {
    const MEGA2_VA = MEGA_VA + 0x400000;
    const { t, pg } = setup(
      (p) => {
        p.emit(li(9, MEGA2_VA + 0x40), lw(7, 9, 0)); // clean gpte: linked, read-only
        p.emit(li(8, MEGA_VA + 0x40), li(6, 0x55), sw(6, 8, 0)); // dirty gpte, same page: writable spte
        p.emit(li(6, 0x66), sw(6, 9, 0)); // a store through the clean gpte must reach the walk
        emitDone(p);
      },
      (pg) => {
        pg.mapMega(MEGA_VA, MEGA_GPA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        pg.mapMega(MEGA2_VA, MEGA_GPA, PTE_V | PTE_R | PTE_W);
      },
    );
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.done).toBe(true);
    const l1 = (va: number) => runSync(readGuest32(t, pg.l1Pa(va)));
    expect(l1(MEGA2_VA) & (PTE_A | PTE_D)).toBe(PTE_A | PTE_D);
    expect(runSync(readGuest32(t, MEGA_GPA + 0x40))).toBe(0x66);
    teardown(t);
  });
});

describe('satp switches', () => {
  it('each guest root gets its own shadow root; switching back reuses it', () => {
    const ROOT2 = RAM_GPA + 0x40000;
    let satp2 = 0;
    const { t } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), lw(6, 8, 0)); // root 1: 0x1111
        p.emit(li(9, 0), li(9, 0)); // patched: li s1, satp2 (2 words) + spare
        p.emit(csrr(18, CSR_SATP), csrw(CSR_SATP, 9), lw(7, 8, 0)); // root 2: 0x2222
        p.emit(csrw(CSR_SATP, 18), lw(19, 8, 0)); // root 1 again
        p.emit(li(11, UCALL_LOG), sw(6, 11, 0), sw(7, 11, 0), sw(19, 11, 0));
        emitDone(p);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R | PTE_A);
        const pg2 = new GuestPager(pg.t, ROOT2);
        pg2.map4k(CODE_VA, RAM_GPA, PTE_V | PTE_R | PTE_X | PTE_A);
        pg2.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        pg2.map4k(DATA_VA, RAM_GPA + 0x20000, PTE_V | PTE_R | PTE_A);
        satp2 = pg2.satp();
      },
    );
    runSync(writeGuest(t, RAM_GPA + 0x10000, [0x1111]));
    runSync(writeGuest(t, RAM_GPA + 0x20000, [0x2222]));
    // The li pair sits after the 3-word prologue and "li s0; lw" (3 words).
    runSync(writeGuest(t, RAM_GPA + 4 * 6, [...li(9, satp2), ...li(9, satp2)]));
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.log).toEqual([0x1111, 0x2222, 0x1111]);
    expect(t.vcpu.translator.satpCalls).toBe(3); // the VMM's setup write, then the guest's two
    const roots = t.vm.sps.lruOrder().filter((sp) => (t.vm.sps.role[sp]! & 1) === 1);
    expect(roots.map((sp) => t.vm.sps.gfn[sp]).sort()).toEqual([ROOT / 4096, ROOT2 / 4096].sort());
    teardown(t);
  });
  it('a one-address sfence.vma reaches the shadow roots of other address spaces too', () => {
    // The guest rewrites root 2's level 1 entry for DATA_VA while running on root 1,
    // fences that address for all ASIDs, then switches to root 2: it must see the
    // new level 0 table, not the link root 2's shadow kept from its first visit.
    const ROOT2 = RAM_GPA + 0x40000;
    const L0_NEW = RAM_GPA + 0x50000;
    const WIN_VA = 0x70000000; // root 1's window onto root 2's root table
    const satp2 = SATP_MODE_SV32 | (ROOT2 / 4096);
    const { t } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), lw(6, 8, 0)); // root 1: 0x1111
        p.emit(li(9, satp2), csrr(18, CSR_SATP), csrw(CSR_SATP, 9), lw(7, 8, 0)); // root 2: 0x2222
        p.emit(csrw(CSR_SATP, 18)); // back to root 1
        p.emit(li(20, WIN_VA + (DATA_VA >>> 22) * 4), li(21, ((L0_NEW / 4096) << 10) | PTE_V), sw(21, 20, 0));
        // The load misses the TLB on root 1, so KVM applies the fence while root 1 is current.
        p.emit(sfence_vma(8, 0), lw(22, 8, 0));
        p.emit(csrw(CSR_SATP, 9), lw(19, 8, 0)); // root 2, new table: 0x3333
        p.emit(li(11, UCALL_LOG), sw(6, 11, 0), sw(7, 11, 0), sw(22, 11, 0), sw(19, 11, 0));
        emitDone(p);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R | PTE_A);
        pg.map4k(WIN_VA, ROOT2, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        const pg2 = new GuestPager(pg.t, ROOT2);
        pg2.map4k(CODE_VA, RAM_GPA, PTE_V | PTE_R | PTE_X | PTE_A);
        pg2.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        pg2.map4k(DATA_VA, RAM_GPA + 0x20000, PTE_V | PTE_R | PTE_A);
        runSync(writeGuest(pg.t, L0_NEW + ((DATA_VA >>> 12) & 0x3ff) * 4, [(((RAM_GPA + 0x30000) / 4096) << 10) | PTE_V | PTE_R | PTE_A]));
      },
    );
    runSync(writeGuest(t, RAM_GPA + 0x10000, [0x1111]));
    runSync(writeGuest(t, RAM_GPA + 0x20000, [0x2222]));
    runSync(writeGuest(t, RAM_GPA + 0x30000, [0x3333]));
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.log).toEqual([0x1111, 0x2222, 0x1111, 0x3333]);
    teardown(t);
  });
});

describe('shadow page recycling (n_max_mmu_pages)', () => {
  it('more guest page tables than the bound: the oldest shadow pages are zapped and rebuilt, data intact', () => {
    const N = 32;
    const t0 = createVm({ protocol: 'modern', hostBytes: 512 * KiB, guestBytes: 8192 * KiB, nMaxMmuPages: 6 });
    const { t } = setup(
      (p) => {
        // for (round = 0; round < 2; round++) for (i = 0; i < N; i++) { if (round) check *va_i == i + 1; *va_i = i + 1 }
        p.emit(li(20, 0), li(21, 2));
        p.label('round').emit(li(8, DATA_VA), li(9, 0), li(18, N), li(22, 0x400000));
        p.label('next').emit(addi(9, 9, 1));
        p.to('skipcheck', (o) => beqz20(o));
        p.emit(lw(7, 8, 0)).to('fail', (o) => bne(7, 9, o));
        p.label('skipcheck').emit(sw(9, 8, 0), add(8, 8, 22)).to('next', (o) => bne(9, 18, o));
        p.emit(addi(20, 20, 1)).to('round', (o) => bne(20, 21, o));
        emitDone(p);
        p.label('fail');
        emitFail(p, 7);
      },
      (pg) => {
        for (let i = 0; i < N; i++) pg.map4k(DATA_VA + i * 0x400000, RAM_GPA + 0x100000 + i * 0x1000, PTE_V | PTE_R | PTE_W);
      },
      t0,
    );
    expect(run(t, 3)).toEqual({ reason: 'mmio' });
    expect(t.ucall.fail).toBeNull();
    expect(t.ucall.done).toBe(true);
    expect(t.vm.stats.mmuRecycled).toBeGreaterThan(N);
    expect(t.vm.sps.nUsedMmuPages).toBeLessThanOrEqual(8);
    for (let i = 0; i < N; i++) expect(runSync(readGuest32(t, RAM_GPA + 0x100000 + i * 0x1000))).toBe(i + 1);
    teardown(t);
  });
});

/** beq x20, x0: the first round skips the check. */
function beqz20(off: number): number {
  return beq(20, 0, off);
}

/** The page of a gpa above 2 GiB (a `& ~0xfff` would turn it into a negative int32). */
const pageOf = (gpa: number) => Math.floor(gpa / 4096) * 4096;

describe('sfence.vma x0, asid (one address space, every address)', () => {
  it("drops that ASID's translations, so its changed gpte takes effect, and keeps other ASIDs' and global ones", () => {
    const ROOT2 = RAM_GPA + 0x40000;
    const GLOB_VA = 0x90000000;
    const WIN_VA = 0x70000000; // root 1's window onto its own level 0 table for DATA_VA
    const ASID1 = 1;
    const ASID2 = 2;
    const satp2 = SATP_MODE_SV32 | (ASID2 << 22) | (ROOT2 / 4096);
    let l0 = 0;
    const { t, pg } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), lw(6, 8, 0)); // ASID 1: 0x1111
        p.emit(li(25, GLOB_VA), lw(23, 25, 0)); // global: 0x4444
        p.emit(li(9, satp2), csrr(18, CSR_SATP), csrw(CSR_SATP, 9), lw(7, 8, 0)); // ASID 2: 0x2222
        p.emit(csrw(CSR_SATP, 18)); // back to ASID 1
        p.emit(li(20, WIN_VA + ((DATA_VA >>> 12) & 0x3ff) * 4), li(21, (((RAM_GPA + 0x30000) / 4096) << 10) | PTE_V | PTE_R | PTE_A), sw(21, 20, 0));
        p.emit(li(24, ASID1), sfence_vma(0, 24), lw(22, 8, 0)); // the new gpte: 0x3333
        p.emit(li(11, UCALL_LOG), sw(6, 11, 0), sw(7, 11, 0), sw(22, 11, 0), sw(23, 11, 0));
        emitDone(p);
      },
      (pg) => {
        pg.map4k(DATA_VA, RAM_GPA + 0x10000, PTE_V | PTE_R | PTE_A);
        pg.map4k(GLOB_VA, RAM_GPA + 0x60000, PTE_V | PTE_R | PTE_A | PTE_G);
        l0 = pageOf(pg.ptePa(DATA_VA));
        pg.map4k(WIN_VA, l0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        const pg2 = new GuestPager(pg.t, ROOT2);
        pg2.map4k(CODE_VA, RAM_GPA, PTE_V | PTE_R | PTE_X | PTE_A);
        pg2.map4k(UCALL_DONE, UCALL_DONE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        pg2.map4k(DATA_VA, RAM_GPA + 0x20000, PTE_V | PTE_R | PTE_A);
        pg2.map4k(GLOB_VA, RAM_GPA + 0x60000, PTE_V | PTE_R | PTE_A | PTE_G);
      },
    );
    t.vcpu.hart.writeCsr(CSR_SATP, pg.satp() | (ASID1 << 22));
    runSync(writeGuest(t, RAM_GPA + 0x10000, [0x1111]));
    runSync(writeGuest(t, RAM_GPA + 0x20000, [0x2222]));
    runSync(writeGuest(t, RAM_GPA + 0x30000, [0x3333]));
    runSync(writeGuest(t, RAM_GPA + 0x60000, [0x4444]));
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.log).toEqual([0x1111, 0x2222, 0x3333, 0x4444]);
    const sps = t.vm.sps;
    const leafOf = (tableGpa: number, va: number) => {
      const sp = sps.findShadowPage(tableGpa / 4096, 0);
      return sp < 0 ? 0 : sps.spteAt(sp * 1024 + ((va >>> 12) & 0x3ff));
    };
    // ASID 2's translation of DATA_VA survived ASID 1's fence ...
    expect(sptePfn(leafOf(pageOf(new GuestPager(t, ROOT2).ptePa(DATA_VA)), DATA_VA))).not.toBe(0);
    // ... and so did the global one under ASID 1.
    expect(leafOf(pageOf(pg.ptePa(GLOB_VA)), GLOB_VA)).not.toBe(0);
    teardown(t);
  });
});

describe('pte prefetch (FNAME(pte_prefetch))', () => {
  /** Loads one word from each of 16 pages of DATA_VA and logs their sum. */
  function sweep(flags: number, opts: { noPrefetch?: boolean } = {}) {
    const N = 16;
    const { t, pg } = setup(
      (p) => {
        p.emit(li(8, DATA_VA), li(9, 0), li(18, N), li(19, 0), li(22, 0x1000));
        p.label('next').emit(lw(7, 8, 0), add(19, 19, 7), add(8, 8, 22), addi(9, 9, 1)).to('next', (o) => bne(9, 18, o));
        p.emit(li(11, UCALL_LOG), sw(19, 11, 0));
        emitDone(p);
      },
      (pg) => {
        for (let i = 0; i < N; i++) pg.map4k(DATA_VA + i * 0x1000, RAM_GPA + 0x100000 + i * 0x1000, flags);
      },
    );
    for (let i = 0; i < N; i++) runSync(writeGuest(t, RAM_GPA + 0x100000 + i * 0x1000, [i + 1]));
    t.vm.debug.noPrefetch = opts.noPrefetch ?? false;
    const before = t.vm.stats.pfFixed;
    expect(run(t)).toEqual({ reason: 'mmio' });
    expect(t.ucall.log).toEqual([(N * (N + 1)) / 2]);
    const faults = t.vm.stats.pfFixed - before;
    const accessed = Array.from({ length: N }, (_, i) => (pg.pte(DATA_VA + i * 0x1000) & PTE_A) !== 0);
    teardown(t);
    return { faults, accessed };
  }

  it('fills the aligned group of 8 around a fault from accessed gptes whose host pages are present: 2 faults for 16 pages, not 16', () => {
    const on = sweep(PTE_V | PTE_R | PTE_A);
    const off = sweep(PTE_V | PTE_R | PTE_A, { noPrefetch: true });
    expect(off.faults - on.faults).toBe(14);
  });

  it('leaves a gpte without A alone: the guest sets A by touching it, so every page still faults', () => {
    const on = sweep(PTE_V | PTE_R);
    const off = sweep(PTE_V | PTE_R, { noPrefetch: true });
    expect(on.faults).toBe(off.faults);
    expect(on.accessed.every((a) => a)).toBe(true);
  });
});
