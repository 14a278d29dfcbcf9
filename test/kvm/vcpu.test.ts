// The vCPU state machine and the VM ioctls: every exit is a typed object (SBI,
// MMIO, budget, internal error), wfi halts until a kick, memslot updates zap what
// the old slot translated and wait out running invalidations.

import { describe, expect, it } from 'vitest';
import { CSR_MEDELEG, CSR_MIDELEG, CSR_SIE, CSR_SSTATUS, CSR_STVEC, IRQ_SSI, MSTATUS_SIE } from '../../src/hart/csr.js';
import { isLeafSpte } from '../../src/kvm/mmu/spte.js';
import { FAULT_LIVELOCK, type VcpuExit } from '../../src/kvm/vcpu.js';
import { consume, runSync, sleepTicks } from '../../src/sched/index.js';
import { Prog, addi, csrw, ecall, jal, li, lr_w, lw, sc_w, sw, wfi } from '../hart/asm.js';
import {
  KiB,
  PAGE,
  RAM_GPA,
  UCALL_LOG,
  UCALL_SYNC,
  addMemslot,
  createVm,
  emitDone,
  expectClean,
  loadProg,
  runAudited,
  runUntilUcall,
  teardown,
  readGuest32,
  writeGuest,
} from './vm-harness.js';

describe('vCPU exits', () => {
  it('faults that never get through end run() with a livelock error instead of spinning', () => {
    // An invalidation that never ends: every fault on the range backs off. No
    // instruction begins, so no instruction budget can end the run; the fault count does.
    const t = createVm({ protocol: 'modern' });
    loadProg(t, new Prog(RAM_GPA | 0).emit(addi(10, 10, 1), jal(0, -4)));
    t.vm.mmuInvalidateInProgress = 1;
    t.vm.mmuInvalidateRangeStart = 0;
    t.vm.mmuInvalidateRangeEnd = 0x100000;
    let exit: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* t.vcpu.run({ maxInsns: 1000 });
    });
    const r = t.sched.run({ maxSteps: 5_000_000 });
    expect(r.status).toBe('done');
    expect(exit).toMatchObject({ reason: 'internal-error', message: expect.stringMatching(/^livelock: 65536 page faults in a row at pc 0x80000000 \(last retry, gva 0x80000000\)/) });
    expect(t.vcpu.faults.retry).toBe(FAULT_LIVELOCK);
    t.vm.mmuInvalidateInProgress = 0;
    teardown(t);
  });

  it('slow faults that never get through end sooner, by the simulated time they stalled', () => {
    // Each fault of a thrashing host (swap-in, reclaim) takes long: a thread that
    // burns 1M ticks a step stands in for it, so 64 faults span more than 2^24 ticks.
    const t = createVm({ protocol: 'modern' });
    loadProg(t, new Prog(RAM_GPA | 0).emit(addi(10, 10, 1), jal(0, -4)));
    t.vm.mmuInvalidateInProgress = 1;
    t.vm.mmuInvalidateRangeEnd = 0x100000;
    let exit: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* t.vcpu.run({ maxInsns: 1000 });
    });
    t.sched.spawn('thrash', function* () {
      while (exit === null) yield* consume(1 << 20);
    });
    expect(t.sched.run({ maxSteps: 1_000_000 }).status).toBe('done');
    expect(exit).toMatchObject({ reason: 'internal-error', message: expect.stringMatching(/^livelock: \d+ page faults in a row .* no instruction begun for \d+ ticks$/) });
    expect(t.vcpu.faults.retry).toBeLessThan(FAULT_LIVELOCK);
    expect(t.vcpu.faults.retry).toBeGreaterThanOrEqual(64);
    t.vm.mmuInvalidateInProgress = 0;
    teardown(t);
  });

  it('an ecall from S-mode exits with reason sbi, pc at the ecall; the VMM advances it', () => {
    const t = createVm({ protocol: 'modern' });
    const p = new Prog(RAM_GPA | 0);
    p.emit(li(17, 0x10), li(10, 7), ecall(), addi(10, 10, 1), li(11, UCALL_SYNC), sw(10, 11, 0));
    emitDone(p);
    loadProg(t, p);
    const exits: VcpuExit[] = [];
    t.sched.spawn('vcpu0', function* () {
      exits.push(yield* t.vcpu.run());
      expect(t.vcpu.hart.pc >>> 0).toBe(RAM_GPA + 16);
      expect(t.vcpu.hart.regs[17]).toBe(0x10);
      t.vcpu.hart.regs[10] = 100; // the SBI return value
      t.vcpu.hart.pc = (t.vcpu.hart.pc + 4) | 0;
      exits.push(yield* t.vcpu.run());
      expect(t.vcpu.hart.regs[10]).toBe(101);
    });
    expectClean(runAudited(t), t);
    expect(exits).toEqual([{ reason: 'sbi' }, { reason: 'mmio' }]);
    teardown(t);
  });

  it('an exception the guest did not delegate is an internal error naming it', () => {
    const t = createVm({ protocol: 'modern' });
    t.vcpu.hart.writeCsr(CSR_MEDELEG, 0);
    loadProg(t, new Prog(RAM_GPA | 0).emit(0));
    let exit: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* t.vcpu.run();
    });
    expectClean(runAudited(t), t);
    expect(exit).toMatchObject({ reason: 'internal-error' });
    expect((exit as unknown as { message: string }).message).toMatch(/exception 2 .*not delegated/);
  });

  it('run({ maxInsns }) exits with reason budget', () => {
    const t = createVm({ protocol: 'modern' });
    loadProg(t, new Prog(RAM_GPA | 0).emit(jal(0, 0)));
    let exit: VcpuExit | null = null;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* t.vcpu.run({ maxInsns: 5000, quantum: 700 });
    });
    expectClean(runAudited(t), t);
    expect(exit).toEqual({ reason: 'budget' });
    expect(t.vcpu.instructions).toBe(5000);
    expect(t.vcpu.state).toBe('idle');
  });

  it('wfi halts the vCPU until an interrupt is made pending and it is kicked', () => {
    const t = createVm({ protocol: 'modern' });
    t.vcpu.hart.writeCsr(CSR_MIDELEG, 1 << IRQ_SSI);
    const p = new Prog(RAM_GPA | 0);
    p.emit(li(5, 0)); // patched: stvec
    p.emit(csrw(CSR_STVEC, 5), li(6, 1 << IRQ_SSI), csrw(CSR_SIE, 6), li(6, MSTATUS_SIE), csrw(CSR_SSTATUS, 6));
    p.label('idle').emit(wfi(), jal(0, -4));
    p.label('handler');
    emitDone(p);
    const words = p.assemble();
    const set = li(5, p.addr('handler'));
    words[0] = set[0]!;
    words[1] = set[1]!;
    runSync(writeGuest(t, RAM_GPA, words));
    let exit: VcpuExit | null = null;
    let haltedSeen = false;
    t.sched.spawn('vcpu0', function* () {
      exit = yield* runUntilUcall(t);
    });
    t.sched.spawn('irq', function* () {
      while (t.vcpu.state !== 'halted') yield* sleepTicks(10, 'poll');
      haltedSeen = true;
      yield* sleepTicks(1000, 'later');
      t.vcpu.hart.setInterruptPending(IRQ_SSI, true);
      t.vcpu.kick();
    });
    expectClean(runAudited(t), t);
    expect(haltedSeen).toBe(true);
    expect(exit).toEqual({ reason: 'mmio' });
    expect(t.ucall.done).toBe(true);
  });
});

describe('KVM_SET_USER_MEMORY_REGION', () => {
  const SLOT1_GPA = 0x90000000;
  function twoSlots() {
    const t = createVm({ protocol: 'modern', hostBytes: 256 * KiB });
    const hva = runSync(t.k.mmap(t.proc.mm, 4 * PAGE));
    runSync(addMemslot(t.vm, 1, SLOT1_GPA, 4 * PAGE, hva));
    runSync(t.k.accessWrite(t.proc.mm, hva + PAGE, new Uint8Array([0x44, 0x33, 0x22, 0x11])));
    const p = new Prog(RAM_GPA | 0);
    p.emit(li(8, SLOT1_GPA + PAGE), lw(6, 8, 0), li(10, UCALL_SYNC), sw(6, 10, 0));
    p.emit(li(8, 0xa0000000 + PAGE), lw(6, 8, 0), li(10, UCALL_SYNC), sw(6, 10, 0));
    emitDone(p);
    loadProg(t, p);
    return { t, hva };
  }

  it('delete zaps the old slot before unlocking; move makes the data appear at the new gpa', () => {
    const { t, hva } = twoSlots();
    const seen: number[] = [];
    t.sched.spawn('vcpu0', function* () {
      expect(yield* t.vcpu.run()).toEqual({ reason: 'mmio' });
      seen.push(t.vcpu.hart.regs[6]!);
      const old = t.vm.memslots.idToMemslot(1)!;
      expect(old.rmap.some((h) => h !== 0)).toBe(true);
      // Move slot 1 to 0xa0000000 (same hva): the old gfns' sptes go.
      const change = yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: 0xa0000000, memorySize: 4 * PAGE, userspaceAddr: hva });
      expect(change.kind).toBe('move');
      expect(old.rmap.every((h) => h === 0)).toBe(true);
      for (let i = 0; i < t.vm.sps.sptes.length; i += 1) {
        const s = t.vm.sps.sptes[i]!;
        if (isLeafSpte(s)) expect(t.vm.sps.spteGfn[i]! < SLOT1_GPA / 4096 || t.vm.sps.spteGfn[i]! >= SLOT1_GPA / 4096 + 4).toBe(true);
      }
      expect(yield* t.vcpu.run()).toEqual({ reason: 'mmio' });
      seen.push(t.vcpu.hart.regs[6]!);
      const del = yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: 0xa0000000, memorySize: 0, userspaceAddr: hva });
      expect(del.kind).toBe('delete');
      yield* runUntilUcall(t);
    });
    expectClean(runAudited(t), t);
    expect(seen).toEqual([0x11223344, 0x11223344]);
    teardown(t);
  });

  it('waits while an invalidation is running, so range_end meets the memslots range_start saw', () => {
    const { t, hva } = twoSlots();
    t.vm.mnActiveInvalidateCount = 1;
    let doneAt = -1;
    t.sched.spawn('ioctl', function* () {
      yield* t.vm.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: SLOT1_GPA, memorySize: 0, userspaceAddr: hva });
      doneAt = t.sched.now;
    });
    t.sched.spawn('end', function* () {
      yield* sleepTicks(500, 'invalidation in flight');
      expect(doneAt).toBe(-1);
      t.vm.mnActiveInvalidateCount = 0;
      t.vm.mnInvalidateWait.wakeAll();
    });
    expectClean(runAudited(t), t);
    expect(doneAt).toBeGreaterThanOrEqual(500);
    expect(t.vm.memslots.idToMemslot(1)).toBeUndefined();
  });
});

describe('memory the guest may not write', () => {
  it('a store to a KVM_MEM_READONLY slot exits to the VMM as MMIO; loads read the RAM', () => {
    const t = createVm({ protocol: 'modern' });
    const ROM = 0x90000000;
    const hva = runSync(t.k.mmap(t.proc.mm, PAGE));
    runSync(t.k.accessWrite(t.proc.mm, hva, new Uint8Array([0x78, 0x56, 0x34, 0x12])));
    runSync(addMemslot(t.vm, 1, ROM, PAGE, hva, 2 /* KVM_MEM_READONLY */));
    const writes: Array<[number, number]> = [];
    const bus = t.vcpu.hart.bus;
    const write = bus.write.bind(bus);
    bus.write = (pa, w, v) => {
      if (pa >= ROM && pa < ROM + PAGE) writes.push([pa, v]);
      else write(pa, w, v);
    };
    const p = new Prog(RAM_GPA | 0);
    p.emit(li(8, ROM + 8), lw(6, 8, -8), li(7, 99), sw(7, 8, 0), lw(9, 8, -8));
    emitDone(p);
    loadProg(t, p);
    t.sched.spawn('vcpu0', function* () {
      expect(yield* runUntilUcall(t)).toEqual({ reason: 'mmio' });
    });
    expectClean(runAudited(t), t);
    expect(writes).toEqual([[ROM + 8, 99]]);
    expect(t.vcpu.hart.regs[6]).toBe(0x12345678);
    expect(t.vcpu.hart.regs[9]).toBe(0x12345678);
    expect(t.vm.dump()).toMatch(/slot 1: gpa 0x90000000-0x90001000 .* ro/);
    teardown(t);
  });
});

describe('LR/SC between vCPUs', () => {
  it("another vCPU's store between LR and SC makes the SC fail instead of losing that store", () => {
    const t = createVm({ protocol: 'modern' });
    const DATA = RAM_GPA + 0x1000;
    const p0 = new Prog(RAM_GPA | 0);
    p0.emit(li(10, DATA), lr_w(5, 10));
    p0.emit(li(6, UCALL_SYNC), sw(0, 6, 0)); // exit to the test: vCPU 1 runs now
    p0.emit(li(7, 5), sc_w(28, 7, 10), li(6, UCALL_LOG), sw(28, 6, 0));
    emitDone(p0);
    loadProg(t, p0);
    const p1 = new Prog((RAM_GPA + 0x800) | 0);
    p1.emit(li(10, DATA), li(5, 9), sw(5, 10, 0), jal(0, 0));
    loadProg(t, p1);
    const vcpu1 = t.vm.createVcpu(1, { bus: { read: () => 0, write: () => undefined } });
    vcpu1.hart.priv = t.vcpu.hart.priv;
    vcpu1.hart.pc = (RAM_GPA + 0x800) | 0;
    t.sched.spawn('vcpus', function* () {
      expect(yield* t.vcpu.run()).toEqual({ reason: 'mmio' });
      expect(yield* vcpu1.run({ maxInsns: 20 })).toEqual({ reason: 'budget' });
      expect(yield* t.vcpu.run()).toEqual({ reason: 'mmio' });
    });
    expectClean(runAudited(t), t);
    expect(t.ucall.done).toBe(true);
    expect(t.ucall.log).toEqual([1]); // sc.w wrote nonzero: failed
    expect(runSync(readGuest32(t, DATA))).toBe(9);
    teardown(t);
  });
});
