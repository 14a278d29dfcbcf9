// One scripted interleaving per race the design closes. Each test forces the
// interleaving with a ScriptPolicy (phases: run this thread until that holds), audits
// coherency before every scheduler step, and runs twice: with the mechanism (clean
// audit, good outcome) and with its test-only switch off (the bad outcome happens).

import { describe, expect, it } from 'vitest';
import { PG_dirty, PG_free, PG_swapcache, PTE_DIRTY, ptePfn, ptePresent } from '../../src/host/index.js';
import { folioReferenced } from '../../src/host/rmap.js';
import type { VcpuExit } from '../../src/kvm/vcpu.js';
import type { KvmProtocol, VmDebug } from '../../src/kvm/vm.js';
import { Completion, Scheduler, runSync, sleepTicks } from '../../src/sched/index.js';
import { Prog, addi, bne, li, lw, sw } from '../hart/asm.js';
import {
  KiB,
  PAGE,
  RAM_GPA,
  ScriptPolicy,
  UCALL_SYNC,
  createVm,
  emitDone,
  emitFail,
  expectClean,
  loadProg,
  readGuest32,
  runAudited,
  runUntilUcall,
  writeGuest,
} from './vm-harness.js';
import type { TestVm } from './vm-harness.js';

const X = RAM_GPA + 0x10000;
const V = 0x7a7a1234;

function hvaOf(t: TestVm, gpa: number): number {
  return t.ramHva + (gpa - RAM_GPA);
}
function hostPfn(t: TestVm, gpa: number): number {
  const pte = t.proc.mm.pt.get(hvaOf(t, gpa) >>> 12);
  return ptePresent(pte) ? ptePfn(pte) : -1;
}
function thread(t: TestVm, name: string) {
  return t.sched.threads.find((th) => th.name === name)!;
}

/** Builds a VM whose scheduler follows `phases` (built once the VM exists). */
function scripted(
  protocol: KvmProtocol,
  phases: (t: TestVm) => Array<{ thread: string; until: () => boolean }>,
  opts: { hostBytes?: number; guestBytes?: number } = {},
): TestVm {
  let inner: ScriptPolicy | null = null;
  const sched = new Scheduler({ policy: { name: 'script', pick: (r, l) => (inner === null ? 0 : inner.pick(r, l)) } });
  const t = createVm({ protocol, sched, hostBytes: opts.hostBytes ?? 256 * KiB, guestBytes: opts.guestBytes ?? 128 * KiB });
  inner = new ScriptPolicy(phases(t));
  return t;
}

type Switch = Exclude<keyof VmDebug, 'afterGup'>;
function setDebug(t: TestVm, off: Switch | null): void {
  if (off !== null) t.vm.debug[off] = true;
}

describe('an invalidation between get_user_pages and mmu_lock makes the fault retry', () => {
  for (const protocol of ['modern', 'v7'] as const) {
    for (const broken of [false, true]) {
      it(`${protocol}, ${broken ? 'noRetry: the spte maps a page the host dropped' : 'retry: the store lands in the new page'}`, () => {
        let pfn = -1;
        const t = scripted(protocol, (t) => [
          // The vCPU faults on X and holds the GUP reference, not yet mmu_lock.
          { thread: 'vcpu0', until: () => (pfn = hostPfn(t, X)) >= 0 && t.k.frames.gupRefs[pfn]! > 0 && t.vcpu.state === 'faulting' },
          // MADV_DONTNEED of X runs to completion (range_start finds no spte yet).
          { thread: 'madvise', until: () => thread(t, 'madvise').state === 'done' },
        ]);
        setDebug(t, broken ? 'noRetry' : null);
        const p = new Prog(RAM_GPA | 0);
        p.emit(li(8, X), li(6, V), sw(6, 8, 0));
        emitDone(p);
        loadProg(t, p);
        runSync(writeGuest(t, X, [1])); // X resident before the fault
        let exit: VcpuExit | null = null;
        t.sched.spawn('vcpu0', function* () {
          exit = yield* runUntilUcall(t);
        });
        t.sched.spawn('madvise', function* () {
          expect(yield* t.k.madvise(t.proc.mm, hvaOf(t, X), PAGE, 4)).toBe(0);
        });
        const r = runAudited(t, { stopOnProblem: !broken });
        expect(exit).toEqual({ reason: 'mmio' });
        const seen = runSync(readGuest32(t, X));
        if (!broken) {
          expectClean(r, t);
          expect(t.vm.stats.pfRetry).toBeGreaterThanOrEqual(1);
          expect(seen).toBe(V);
        } else {
          expect(r.problems.join('\n')).toMatch(/host pte of hva .* is not present|maps a free frame/);
          // The guest's store went to the dropped frame: the VMM sees zeroes.
          expect(seen).toBe(0);
        }
      });
    }
  }
});

describe('v7: invalidate_page (swap-out) between get_user_pages and mmu_lock (the 2008 race)', () => {
  for (const broken of [false, true]) {
    it(broken ? 'noRetry: the spte maps a page the host pte no longer maps' : 'the sequence moved: retry, swap in, map the page the host maps', () => {
      // The vCPU parks after get_user_pages of X until reclaim has unmapped X
      // (try_to_unmap clears the pte, then invalidate_page: seq++); reclaim sleeps
      // on swap I/O, which would otherwise let the vCPU run on.
      const t = createVm({ protocol: 'v7', hostBytes: 256 * KiB });
      const reclaimed = new Completion('x-reclaimed');
      let parked = false;
      t.vm.debug.afterGup = function* (vcpu) {
        if (parked || vcpu.translator.faultGva !== (X | 0)) return;
        parked = true;
        yield* reclaimed.wait();
      };
      setDebug(t, broken ? 'noRetry' : null);
      const p = new Prog(RAM_GPA | 0);
      p.emit(li(8, X), li(6, V), sw(6, 8, 0));
      emitDone(p);
      loadProg(t, p);
      runSync(writeGuest(t, X, [1]));
      let exit: VcpuExit | null = null;
      t.sched.spawn('vcpu0', function* () {
        exit = yield* runUntilUcall(t);
      });
      t.sched.spawn('reclaim', function* () {
        while (!parked) yield* sleepTicks(1, 'wait for the fault');
        for (let i = 0; i < 20 && hostPfn(t, X) >= 0; i++) yield* t.k.reclaim(64);
        expect(hostPfn(t, X)).toBe(-1);
        reclaimed.complete();
      });
      const r = runAudited(t, { stopOnProblem: !broken });
      expect(exit).toEqual({ reason: 'mmio' });
      if (!broken) {
        expectClean(r, t);
        expect(t.vm.stats.pfRetry).toBeGreaterThanOrEqual(1);
        expect(runSync(readGuest32(t, X))).toBe(V);
      } else {
        expect(r.problems.join('\n')).toMatch(/host pte of hva .* is not present/);
      }
    });
  }
});

describe('range_start flushes the vCPU TLBs before dropping mmu_lock', () => {
  for (const broken of [false, true]) {
    it(broken ? 'noFlushBeforeUnlock: the vCPU writes through a stale TLB entry into a reused frame' : 'flush before unlock: a reused frame is safe', () => {
      let pfn = -1;
      const pattern = 0x0bad0000 | 0x5a5a;
      let otherPfn = -1;
      const other = { done: false };
      const t = scripted('modern', (t) => [
        // The guest loop has X in its store TLB.
        { thread: 'vcpu0', until: () => t.vcpu.hart.storeTag[(X >>> 12) & 511] === (X | 0) && t.vcpu.instructions > 3000 },
        // MADV_DONTNEED of X until its frame is back on the free list (range_end not run yet).
        { thread: 'madvise', until: () => (pfn >= 0 ? pfn : (pfn = hostPfnAt(t))) >= 0 && (t.k.frames.flags[pfn]! & PG_free) !== 0 },
        // Another process gets that frame and fills it.
        { thread: 'other', until: () => other.done },
        // The vCPU runs a quantum.
        { thread: 'vcpu0', until: () => t.vcpu.instructions > 12000 },
      ]);
      const hostPfnAt = (tt: TestVm): number => hostPfn(tt, X);
      setDebug(t, broken ? 'noFlushBeforeUnlock' : null);
      const p = new Prog(RAM_GPA | 0);
      p.emit(li(8, X), li(9, 0), li(18, 20000));
      p.label('loop').emit(addi(9, 9, 1), sw(9, 8, 0)).to('loop', (o) => bne(9, 18, o));
      emitDone(p);
      loadProg(t, p);
      const otherProc = t.k.createProcess('other');
      let exit: VcpuExit | null = null;
      t.sched.spawn('vcpu0', function* () {
        exit = yield* runUntilUcall(t, { quantum: 500 });
      });
      t.sched.spawn('madvise', function* () {
        expect(yield* t.k.madvise(t.proc.mm, hvaOf(t, X), PAGE, 4)).toBe(0);
      });
      let otherHva = 0;
      t.sched.spawn('other', function* () {
        while (pfn < 0 || !(t.k.frames.flags[pfn]! & PG_free)) yield* sleepTicks(1, 'wait');
        otherHva = yield* t.k.mmap(otherProc.mm, PAGE);
        const buf = new Uint8Array(PAGE);
        new DataView(buf.buffer).setInt32(0, pattern, true);
        expect(yield* t.k.accessWrite(otherProc.mm, otherHva, buf)).toBe(0);
        otherPfn = ptePfn(otherProc.mm.pt.get(otherHva >>> 12));
        other.done = true;
      });
      const r = runAudited(t, { stopOnProblem: !broken });
      expect(exit).toEqual({ reason: 'mmio' });
      expect(otherPfn).toBe(pfn); // the frame X had was reused by the other process
      const buf = new Uint8Array(4);
      runSync(t.k.accessRead(otherProc.mm, otherHva, buf));
      const otherSees = new DataView(buf.buffer).getInt32(0, true);
      if (!broken) {
        expectClean(r, t);
        expect(otherSees).toBe(pattern);
        expect(runSync(readGuest32(t, X))).toBe(20000);
      } else {
        expect(r.problems.join('\n')).toMatch(/TLB gva 0x80010000 -> pfn \d+: no present spte backs it/);
        // The guest's counter landed in the other process's page.
        expect(otherSees).not.toBe(pattern);
        expect(otherSees).toBeGreaterThan(0);
        expect(otherSees).toBeLessThanOrEqual(20000);
      }
    });
  }
});

describe("zapping a dirty spte carries dirty to the host page before the host pte is cleared", () => {
  // The state arises naturally: X is out in swap; the guest's load faults it back in
  // (a read swap-in keeps the swap copy: the page is clean in the swap cache, its host
  // pte writable but clean), and KVM maps it writable because the host pte is. The
  // guest's store then goes through the spte: only the spte's D bit knows the page
  // changed. Reclaim finds a clean page with an up-to-date-looking swap copy and frees
  // it without pageout unless KVM carried D to the page when it zapped the spte.
  for (const protocol of ['modern', 'v7'] as const) {
    for (const broken of [false, true]) {
      it(`${protocol}, ${broken ? 'noDirtyCarry: reclaim drops the guest write' : 'dirty carried: the write survives swap-out and swap-in'}`, () => {
        const t = createVm({ protocol, hostBytes: 256 * KiB, guestBytes: 128 * KiB });
        setDebug(t, broken ? 'noDirtyCarry' : null);
        const p = new Prog(RAM_GPA | 0);
        p.emit(li(8, X), lw(5, 8, 0), li(6, V), sw(6, 8, 0)); // load (swap-in, writable spte), store through it
        p.emit(li(10, UCALL_SYNC), sw(0, 10, 0)); // the host reclaims X now
        p.emit(lw(7, 8, 0)).to('fail', (o) => bne(7, 6, o));
        emitDone(p);
        p.label('fail');
        emitFail(p, 7);
        loadProg(t, p);
        runSync(writeGuest(t, X, [1]));
        const k = t.k;
        const fr = k.frames;
        const xPage = hvaOf(t, X) >>> 12;
        let atSync = { pteDirty: true, pageFlags: 0, word: 0 };
        let pswpoutAtReclaim = 0;
        let exit: VcpuExit | null = null;
        t.sched.spawn('vcpu0', function* () {
          // X (value 1) goes out to swap before the guest starts.
          for (let i = 0; i < 50 && hostPfn(t, X) >= 0; i++) yield* k.reclaim(64);
          expect(hostPfn(t, X)).toBe(-1);
          const first = yield* t.vcpu.run();
          expect(first).toEqual({ reason: 'mmio' });
          expect(t.ucall.syncs).toBe(1);
          const pfn = hostPfn(t, X);
          atSync = {
            pteDirty: (t.proc.mm.pt.get(xPage) & PTE_DIRTY) !== 0,
            pageFlags: fr.flags[pfn]! & (PG_swapcache | PG_dirty),
            word: t.vm.ram32[(pfn << 10) + ((X % PAGE) >>> 2)]!,
          };
          pswpoutAtReclaim = k.stats().pswpout;
          for (let i = 0; i < 50 && hostPfn(t, X) >= 0; i++) yield* k.reclaim(64);
          expect(hostPfn(t, X)).toBe(-1);
          pswpoutAtReclaim = k.stats().pswpout - pswpoutAtReclaim;
          exit = yield* runUntilUcall(t);
        });
        const r = runAudited(t);
        expectClean(r, t);
        // The guest's store reached the frame, but neither the host pte nor the page
        // says so: the page is clean in the swap cache.
        expect(atSync).toEqual({ pteDirty: false, pageFlags: PG_swapcache, word: V });
        expect(exit).toEqual({ reason: 'mmio' });
        if (!broken) {
          expect(pswpoutAtReclaim).toBeGreaterThan(0);
          expect(t.ucall.fail).toBeNull();
          expect(t.ucall.done).toBe(true);
        } else {
          // Nothing dirty was resident: reclaim wrote nothing, and the guest reads back
          // the stale swap copy.
          expect(pswpoutAtReclaim).toBe(0);
          expect(t.ucall.fail).toBe(1);
        }
      });
    }
  }
});

describe('aging clears spte accessed bits so a page the guest keeps touching outlives an idle one', () => {
  const H = RAM_GPA + 0x10000;
  const I = RAM_GPA + 0x11000;
  for (const broken of [null, 'noAgeFlush', 'noAgeClear'] as const) {
    it(broken ?? 'young tracked', () => {
      const t = createVm({ protocol: 'modern', hostBytes: 256 * KiB, guestBytes: 128 * KiB });
      setDebug(t, broken);
      const p = new Prog(RAM_GPA | 0);
      p.emit(li(8, H), li(19, I), lw(5, 19, 0), li(9, 0), li(18, 300000));
      p.label('loop').emit(lw(5, 8, 0), addi(9, 9, 1)).to('loop', (o) => bne(9, 18, o));
      emitDone(p);
      loadProg(t, p);
      runSync(writeGuest(t, H, [1]));
      runSync(writeGuest(t, I, [2]));
      const young: Array<[number, number]> = [];
      let hotEvicted = false;
      let idleEvicted = false;
      let exit: VcpuExit | null = null;
      t.sched.spawn('vcpu0', function* () {
        exit = yield* runUntilUcall(t, { quantum: 1000 });
      });
      t.sched.spawn('aging', function* () {
        yield* sleepTicks(5000, 'let the guest start');
        for (let round = 0; round < 4; round++) {
          const h = yield* folioReferenced(t.k, hostPfn(t, H));
          const i = yield* folioReferenced(t.k, hostPfn(t, I));
          young.push([h, i]);
          yield* sleepTicks(5000, 'next round');
        }
        // Reclaim page by page while the guest runs.
        for (let n = 0; n < 30; n++) {
          yield* t.k.reclaim(1);
          if (hostPfn(t, H) < 0) hotEvicted = true;
          if (hostPfn(t, I) < 0) idleEvicted = true;
          yield* sleepTicks(2000, 'guest runs');
        }
      });
      const r = runAudited(t, { every: 7 });
      expectClean(r, t);
      expect(exit).toEqual({ reason: 'mmio' });
      const later = young.slice(1);
      if (broken === null) {
        expect(later.every(([h]) => h === 1)).toBe(true);
        expect(later.every(([, i]) => i === 0)).toBe(true);
        expect([hotEvicted, idleEvicted]).toEqual([false, true]);
      } else if (broken === 'noAgeFlush') {
        // The guest keeps hitting its TLB entry: A is never set again, H looks idle
        // and is reclaimed although the guest uses it all the time.
        expect(later.every(([h]) => h === 0)).toBe(true);
        expect(hotEvicted).toBe(true);
      } else {
        // Nothing is ever old again: the idle page looks as busy as the hot one and
        // reclaim cannot take it.
        expect(later.every(([, i]) => i === 1)).toBe(true);
        expect(idleEvicted).toBe(false);
      }
      expect(t.vm.stats.ageCalls).toBeGreaterThanOrEqual(8);
    });
  }
});

describe('process exit runs release, which zaps every spte while a vCPU is mid-fault', () => {
  for (const broken of [false, true]) {
    it(broken ? 'noReleaseZap: sptes and TLB entries outlive the frames' : 'release zaps: nothing touches a freed frame', () => {
      let pfn = -1;
      const t = scripted('modern', (t) => [
        { thread: 'vcpu0', until: () => (pfn = hostPfn(t, X)) >= 0 && t.k.frames.gupRefs[pfn]! > 0 && t.vcpu.state === 'faulting' },
        { thread: 'exit', until: () => thread(t, 'exit').state === 'done' },
      ]);
      setDebug(t, broken ? 'noReleaseZap' : null);
      const p = new Prog(RAM_GPA | 0);
      p.emit(li(8, X), li(6, V), sw(6, 8, 0));
      emitDone(p);
      loadProg(t, p);
      runSync(writeGuest(t, X, [1]));
      const exits: VcpuExit[] = [];
      let insnsAfterExit = -1;
      t.sched.spawn('vcpu0', function* () {
        exits.push(yield* runUntilUcall(t));
        // The VMM tries again after the error: the vCPU must not run guest code from
        // frames the exit freed.
        t.vcpu.hart.pc = RAM_GPA | 0;
        const before = t.vcpu.instructions;
        exits.push(yield* t.vcpu.run());
        insnsAfterExit = t.vcpu.instructions - before;
      });
      t.sched.spawn('exit', () => t.k.exitProcess(t.proc));
      const r = runAudited(t, { stopOnProblem: !broken });
      expect(exits[0]?.reason).toBe('internal-error');
      expect(t.vm.released).toBe(true);
      if (!broken) {
        expectClean(r, t);
        expect(insnsAfterExit).toBe(0);
        expect(t.vm.sps.nUsedMmuPages).toBe(0);
        runSync(t.vm.destroy());
        expect(t.k.frames.nrFree).toBe(t.k.frames.nrFrames);
      } else {
        expect(r.problems.join('\n')).toMatch(/maps a free frame/);
        expect(insnsAfterExit).toBeGreaterThan(0);
      }
    });
  }
});

