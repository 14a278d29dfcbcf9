// The four secondary MMUs of the 2008 debate on one process, through the one host
// interface (SecondaryMmuHost): a GRU-like device TLB, an HMM-style interval mirror,
// an XPMEM-like exporter whose attacher maps the same frames, and KVM, whose guest
// RAM is the same range (a memslot over it; the guest's code in a second memslot of
// the same process), so its notifier sits on the same mm's list as the other three.
// The process, each device, the attacher and the guest own a fifth of the pages each
// and write them; all five read every page at random; the host swaps under a small RAM, ages the range
// (clear_young through every notifier), MADV_DONTNEEDs the process's pages and forks
// the process (its write-protect reaches every device). Every driver's audit runs
// before every scheduler step (KVM's is the coherency audit of its sptes and soft
// TLBs against the host); reads are checked against the writes that could
// linearize with them; at the end all five see every page's last write. Then the
// process exits with everything still registered: ->release tears each down, the
// drivers' own teardown afterwards sees nothing twice, and nothing is leaked. With any
// one driver's mechanism switched off, the same run fails on some seed.
// The same run on a process of the 2008 notifier has a v7 VM and the GRU only (the
// 2008 era cannot host the other two: see ERA_PATHS).

import { describe, expect, it } from 'vitest';
import { auditCoherency } from '../../src/check/coherency.js';
import { PRIV_S } from '../../src/hart/csr.js';
import { Prog, add, addi, beq, blt, bne, jal, li, lw, mul, or, sw, xor } from '../../src/hart/asm.js';
import { HostKernel, MADV_DONTNEED, checkInvariants, hostDebugView, secondaryMmuHost } from '../../src/host/index.js';
import type { NotifierEra } from '../../src/host/index.js';
import { countLeafSptes } from '../../src/kvm/inspect.js';
import type { Vcpu } from '../../src/kvm/vcpu.js';
import { Vm } from '../../src/kvm/vm.js';
import type { VmDebug } from '../../src/kvm/vm.js';
import { auditDmirror, auditDmirrorTeardown } from '../../src/hmm/audit.js';
import { Dmirror } from '../../src/hmm/dmirror.js';
import type { DmirrorDebug } from '../../src/hmm/dmirror.js';
import { auditGru, auditGruTeardown } from '../../src/gru/audit.js';
import { GruDevice } from '../../src/gru/gru.js';
import type { GruDebug } from '../../src/gru/gru.js';
import { Rng, Scheduler, preempt } from '../../src/sched/index.js';
import type { Task } from '../../src/sched/index.js';
import { auditXpmem, auditXpmemTeardown } from '../../src/xpmem/audit.js';
import { stamp, unstamp } from '../../src/xpmem/scenario.js';
import { XpmemSegment } from '../../src/xpmem/xpmem.js';
import type { XpmemAttachment, XpmemDebug } from '../../src/xpmem/xpmem.js';

const KiB = 1024;
const PAGE = 4096;

interface TogetherResult {
  problems: string[];
  pswpout: number;
  notifierCalls: number;
  forks: number;
  /** KVM's share: invalidations that hit its memslots, aging calls that found a young spte, faults fixed. */
  kvm: { invalidations: number; youngHits: number; faults: number };
}

interface TogetherDebug {
  gru?: Partial<GruDebug>;
  dmirror?: Partial<DmirrorDebug>;
  xpmem?: Partial<XpmemDebug>;
  kvm?: Partial<VmDebug>;
}

// The guest: paging off, so gva = gpa. Guest RAM is memslot 1 over the process's
// range (page i at DATA_GPA + i * PAGE); its code is memslot 0 on a page of its own.
const CODE_GPA = 0x80000000;
const DATA_GPA = 0x80100000;
/** The guest reports an op's result here (MMIO: a store exits to the VMM). */
const RESULT_MMIO = 0x10002000;
const OP_WRITE = 1;
const OP_READ = 2;

/**
 * One op per KVM_RUN, in registers as KVM_SET_REGS would put them: a0 = op, a1 = the
 * page's gpa, a2 = gen, a3 = page index. A write stores stamp(page, gen); a read
 * checks the page as unstamp does and reports its gen (0 for zeroes, -1 for anything
 * else). An op touches its page within one scheduler quantum, after its faults are
 * fixed, as accessWrite copies a page in one step: the stamp checks need whole-page
 * accesses, which a real guest would get from a lock.
 */
function guestProgram(): Prog {
  const [a0, a1, a2, a3] = [10, 11, 12, 13];
  const [t0, t1, t2, t3, t4, t5, t6, s0, s1] = [5, 6, 7, 28, 29, 30, 31, 8, 9];
  const p = new Prog(CODE_GPA);
  p.emit(li(t3, PAGE), li(t1, 0x9e3779b1), li(t6, RESULT_MMIO), li(t4, OP_READ));
  p.to('read', (o) => beq(a0, t4, o));
  p.emit(sw(a3, a1, 0), sw(a2, a1, 4), xor(t0, a3, a2), mul(t0, t0, t1), li(t2, 8));
  p.label('wloop').emit(add(t4, t0, t2), add(t5, a1, t2), sw(t4, t5, 0), addi(t2, t2, 4));
  p.to('wloop', (o) => blt(t2, t3, o));
  p.emit(sw(0, t6, 0), jal(0, 0));
  p.label('read').emit(lw(s0, a1, 0), lw(s1, a1, 4), or(t4, s0, s1));
  p.to('stamped', (o) => bne(t4, 0, o));
  p.emit(li(t2, 8));
  p.label('zloop').emit(add(t5, a1, t2), lw(t4, t5, 0));
  p.to('bad', (o) => bne(t4, 0, o));
  p.emit(addi(t2, t2, 4));
  p.to('zloop', (o) => blt(t2, t3, o));
  p.emit(sw(0, t6, 0), jal(0, 0));
  p.label('stamped');
  p.to('bad', (o) => bne(s0, a3, o));
  p.emit(xor(t0, s0, s1), mul(t0, t0, t1), li(t2, 8));
  p.label('cloop').emit(add(t5, a1, t2), lw(t4, t5, 0), add(s0, t0, t2));
  p.to('bad', (o) => bne(t4, s0, o));
  p.emit(addi(t2, t2, 4));
  p.to('cloop', (o) => blt(t2, t3, o));
  p.emit(sw(s1, t6, 0), jal(0, 0));
  p.label('bad').emit(li(t4, -1), sw(t4, t6, 0), jal(0, 0));
  return p;
}

/** A vCPU of the guest above, with the mailbox its ops report through. */
function guestVcpu(vm: Vm, id: number): { vcpu: Vcpu; op: (page: number, gen: number, write: boolean) => Task<number> } {
  let result: number | null = null;
  let vcpu: Vcpu | null = null;
  const bus = {
    read: () => 0,
    write: (pa: number, _w: number, value: number) => {
      if (pa !== RESULT_MMIO) throw new Error(`guest store to MMIO 0x${(pa >>> 0).toString(16)}`);
      result = value;
      vcpu!.requestExit('mmio');
    },
  };
  vcpu = vm.createVcpu(id, { bus });
  const v = vcpu;
  /** The gen read (a write: 0), or a message for the problem list as a thrown Error. */
  function* op(page: number, gen: number, write: boolean): Task<number> {
    const h = v.hart;
    h.priv = PRIV_S;
    h.pc = CODE_GPA | 0;
    h.regs[10] = write ? OP_WRITE : OP_READ;
    h.regs[11] = (DATA_GPA + page * PAGE) | 0;
    h.regs[12] = gen;
    h.regs[13] = page;
    result = null;
    // Whole ops in one quantum: the longest (a read) is about 6200 instructions.
    const exit = yield* v.run({ quantum: 1 << 15, maxInsns: 1 << 20 });
    if (exit.reason !== 'mmio' || result === null) throw new Error(`vcpu ${id}: ${JSON.stringify(exit)}`);
    return result;
  }
  return { vcpu: v, op };
}

type Path = 'process' | 'gru' | 'dmirror' | 'attacher' | 'kvm';

/**
 * Who takes part in each era. 2008: a v7 VM on a process of the 2008 notifier, with
 * the GRU (which has the 2008 invalidate_page) and nothing else: the HMM mirror's
 * mmu_interval_notifier is from 2019 (a 2008 mm refuses the insert: -EINVAL), and the
 * XPMEM exporter cannot recall under the 2008 notifier, whose only callback on the
 * swap-out path is invalidate_page under the PT lock, where its mutex and its
 * sleeping round trip are a lockdep report and an abandoned recall that leaves B a
 * stale pte (test/xpmem/xpmem.test.ts shows it).
 */
const ERA_PATHS: Record<NotifierEra, readonly Path[]> = {
  modern: ['process', 'gru', 'dmirror', 'attacher', 'kvm'],
  '2008': ['process', 'gru', 'kvm'],
};

function runTogether(seed: number, debug: TogetherDebug = {}, era: NotifierEra = 'modern'): TogetherResult {
  const sched = new Scheduler({ seed });
  const k = new HostKernel({ ramBytes: 128 * KiB, swapBytes: 1024 * KiB, swapReadLatency: 7, swapWriteLatency: 13, sched, era });
  const host = secondaryMmuHost(k);
  const debugView = hostDebugView(k);
  const modern = era === 'modern';
  const p = k.createProcess('shared', { era });
  const b = k.createProcess('attacher', { era });
  const nrPages = 32;
  const ops = 60;
  const rng = new Rng(seed ^ 0x70637);
  const problems: string[] = [];
  const hist: number[][] = Array.from({ length: nrPages }, () => [1]);
  const committed = new Int32Array(nrPages);
  const started = new Int32Array(nrPages);
  let nextGen = 2;
  let hva = 0;
  let gru: GruDevice | null = null;
  let dm: Dmirror | null = null;
  let seg: XpmemSegment | null = null;
  let att: XpmemAttachment | null = null;
  let vm: Vm | null = null;
  let kvmWriter: ReturnType<typeof guestVcpu> | null = null;
  let kvmReader: ReturnType<typeof guestVcpu> | null = null;
  let writers = 0;
  let forks = 0;

  const PATHS = ERA_PATHS[era];
  function* kvmAccess(w: ReturnType<typeof guestVcpu>, i: number, buf: Uint8Array, write: boolean): Task<number> {
    const gen = yield* w.op(i, write ? unstamp(i, buf) : 0, write);
    if (!write) {
      // The guest checked the page; hand the reader what it saw (gen 0: zeroes, -1: garbage).
      if (gen > 0) stamp(i, gen, buf);
      else buf.fill(gen === 0 ? 0 : 0xa5);
    }
    return 0;
  }
  /** reader: the path's reading thread (KVM's runs on a vCPU of its own). */
  function access(path: Path, i: number, buf: Uint8Array, write: boolean, reader = false): Task<number> {
    const at = hva + i * PAGE;
    switch (path) {
      case 'process':
        return write ? k.accessWrite(p.mm, at, buf) : k.accessRead(p.mm, at, buf);
      case 'gru':
        return gru!.submit(write ? { op: 'write', hva: at, src: buf } : { op: 'read', hva: at, dst: buf });
      case 'dmirror':
        return write ? dm!.write(at, buf) : dm!.read(at, buf);
      case 'attacher':
        return write ? k.accessWrite(b.mm, att!.hva + i * PAGE, buf) : k.accessRead(b.mm, att!.hva + i * PAGE, buf);
      case 'kvm':
        return kvmAccess(reader ? kvmReader! : kvmWriter!, i, buf, write);
    }
  }

  function* writer(w: number): Task {
    const path = PATHS[w]!;
    const buf = new Uint8Array(PAGE);
    for (let n = 0; n < ops; n++) {
      const i = w + PATHS.length * rng.below(Math.ceil((nrPages - w) / PATHS.length));
      const dontneed = path === 'process' && rng.below(6) === 0;
      const gen = dontneed ? 0 : nextGen++;
      hist[i]!.push(gen);
      started[i] = hist[i]!.length - 1;
      const r = dontneed ? yield* k.madvise(p.mm, hva + i * PAGE, PAGE, MADV_DONTNEED) : yield* access(path, i, stamp(i, gen, buf), true);
      if (r !== 0) problems.push(`${path}-writer: page ${i} failed: ${r}`);
      committed[i] = hist[i]!.length - 1;
    }
    writers--;
  }

  function* reader(w: number): Task {
    const path = PATHS[w]!;
    const buf = new Uint8Array(PAGE);
    while (writers > 0) {
      const i = rng.below(nrPages);
      const lo = committed[i]!;
      const r = yield* access(path, i, buf, false, true);
      const hi = started[i]!;
      if (r !== 0) {
        problems.push(`${path}-reader: page ${i} failed: ${r}`);
        continue;
      }
      const gen = unstamp(i, buf);
      const window = hist[i]!.slice(lo, hi + 1);
      if (gen < 0 || !window.includes(gen)) problems.push(`${path}-reader: page ${i} read ${gen}, expected one of [${window.join(', ')}]`);
    }
  }

  sched.spawn('setup', function* () {
    hva = yield* k.mmap(p.mm, nrPages * PAGE);
    const buf = new Uint8Array(PAGE);
    for (let i = 0; i < nrPages; i++) yield* k.accessWrite(p.mm, hva + i * PAGE, stamp(i, 1, buf));
    gru = yield* GruDevice.create(host, p.mm, { entries: 16 });
    if (gru === null) throw new Error('the GRU did not come up');
    Object.assign(gru.debug, debug.gru);
    if (modern) {
      const m = yield* Dmirror.create(host, p.mm, hva, nrPages * PAGE);
      const s = yield* XpmemSegment.make(host, p.mm, hva, nrPages * PAGE);
      if (typeof m === 'number' || typeof s === 'number') throw new Error('a driver did not come up');
      Object.assign(m.debug, debug.dmirror);
      Object.assign(s.debug, debug.xpmem);
      dm = m;
      seg = s;
      const t = yield* s.attach(b.mm);
      if (typeof t === 'number') throw new Error(`attach: ${t}`);
      att = t;
    }
    const code = yield* k.mmap(p.mm, PAGE);
    const v = yield* Vm.create(host, p, { protocol: modern ? 'modern' : 'v7', nMaxMmuPages: 16 });
    Object.assign(v.debug, debug.kvm);
    yield* v.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: CODE_GPA, memorySize: PAGE, userspaceAddr: code });
    yield* v.setUserMemoryRegion({ slot: 1, flags: 0, guestPhysAddr: DATA_GPA, memorySize: nrPages * PAGE, userspaceAddr: hva });
    const prog = guestProgram().assemble();
    const words = new Uint8Array(PAGE);
    new Int32Array(words.buffer).set(prog);
    if ((yield* k.accessWrite(p.mm, code, words)) !== 0) throw new Error('guest code');
    vm = v;
    kvmWriter = guestVcpu(v, 0);
    kvmReader = guestVcpu(v, 1);
    writers = PATHS.length;
    for (let w = 0; w < PATHS.length; w++) {
      sched.spawn(`${PATHS[w]}-writer`, () => writer(w));
      sched.spawn(`${PATHS[w]}-reader`, () => reader(w));
    }
    sched.spawn('ager', function* () {
      while (writers > 0) {
        yield* k.clearYoungRange(p.mm, hva, hva + nrPages * PAGE);
        for (let n = 0; n < 40; n++) yield* preempt();
      }
    });
    sched.spawn('forker', function* () {
      for (let n = 0; n < 2 && writers > 0; n++) {
        for (let j = 0; j < 200; j++) yield* preempt();
        const c = yield* k.fork(p);
        if (typeof c === 'number') {
          problems.push(`fork: ${c}`);
          return;
        }
        forks++;
        for (let j = 0; j < 50; j++) yield* preempt();
        yield* k.exitProcess(c);
      }
    });
  });

  const audit = (): boolean => {
    if (problems.length === 0 && gru !== null && (!modern || (dm !== null && seg !== null))) {
      problems.push(...auditGru(debugView, gru));
      if (dm !== null) problems.push(...auditDmirror(debugView, dm));
      if (seg !== null) problems.push(...auditXpmem(debugView, seg));
      if (vm !== null) problems.push(...auditCoherency(vm, debugView, { mmu: sched.steps % 16 === 0 }).map((m) => `kvm: ${m}`));
    }
    return problems.length > 0;
  };
  let r = sched.run({ maxSteps: 5_000_000, until: audit });
  if (r.status === 'done' && problems.length === 0) {
    sched.spawn('settle', () => k.settle());
    r = sched.run({ maxSteps: 1_000_000, until: audit });
  }
  if (problems.length === 0 && r.status !== 'done') problems.push(`run ended ${r.status}: ${r.report ?? ''}`);
  if (problems.length === 0 && sched.bugs.length > 0) problems.push(...sched.bugs.map((bug) => `${bug.kind}: ${bug.message}`));
  for (const t of sched.threads) if (t.error !== undefined && problems.length === 0) problems.push(`${t.name}: ${String(t.error)}`);
  if (problems.length === 0) {
    try {
      checkInvariants(k);
    } catch (e) {
      problems.push(String(e));
    }
  }

  if (problems.length === 0) {
    sched.spawn('final', function* () {
      const buf = new Uint8Array(PAGE);
      for (let w = 0; w < PATHS.length; w++) {
        for (let i = 0; i < nrPages; i++) {
          const rr = yield* access(PATHS[w]!, i, buf, false);
          const want = hist[i]![hist[i]!.length - 1]!;
          const got = rr === 0 ? unstamp(i, buf) : rr;
          if (got !== want) problems.push(`final: ${PATHS[w]} page ${i} holds ${got}, last write was ${want}`);
        }
      }
      // Exit with every driver registered: ->release tears each down.
      const s = seg as XpmemSegment | null;
      const xsub = s?.sub ?? null;
      const ksub = vm!.notifier!;
      yield* k.exitProcess(p);
      if (s !== null && (!s.released || s.refsHeld !== 0)) problems.push(`xpmem after release: released ${s.released}, ${s.refsHeld} refs`);
      if (!vm!.released || countLeafSptes(vm!) !== 0) problems.push(`kvm after release: released ${vm!.released}, ${countLeafSptes(vm!)} leaf sptes`);
      // The drivers' own teardown after release: nothing is called twice.
      yield* gru!.destroy();
      if (dm !== null) yield* (dm as Dmirror).destroy();
      if (s !== null) yield* s.remove();
      yield* vm!.destroy();
      if (xsub !== null && xsub.releaseCalls !== 1) problems.push(`xpmem release ran ${xsub.releaseCalls} times`);
      if (ksub.releaseCalls !== 1) problems.push(`kvm release ran ${ksub.releaseCalls} times`);
      if (vm!.stats.warnings !== 0) problems.push(`kvm warnings: ${vm!.warnings.join('; ')}`);
      problems.push(...auditGruTeardown(gru!));
      if (dm !== null) problems.push(...auditDmirrorTeardown(dm));
      if (s !== null) {
        yield* k.munmap(b.mm, att!.hva, nrPages * PAGE);
        problems.push(...auditXpmemTeardown(debugView, s, [att!]));
      }
      yield* k.exitProcess(b);
      yield* k.settle();
    });
    r = sched.run({ maxSteps: 1_000_000 });
    if (r.status !== 'done') problems.push(`teardown ended ${r.status}: ${r.report ?? ''}`);
    for (const t of sched.threads) if (t.error !== undefined) problems.push(`${t.name}: ${String(t.error)}`);
    if (k.frames.nrFree !== k.frames.nrFrames) problems.push(`teardown: ${k.frames.nrFrames - k.frames.nrFree} frames still allocated`);
    if (k.swap.nrUsed !== 0) problems.push(`teardown: ${k.swap.nrUsed} swap slots still used`);
  }
  const s = k.stats();
  k.shutdown();
  const kv = vm as Vm | null;
  const kvm = { invalidations: kv?.stats.invalidations ?? 0, youngHits: kv?.stats.youngHits ?? 0, faults: kv?.stats.pfFixed ?? 0 };
  return { problems, pswpout: s.pswpout, notifierCalls: s.notifierCalls, forks, kvm };
}

/** Seeds 1-8 of the shared run on an mm of `era`: clean, with swap and fork in them, and KVM invalidated and aged on each. */
function itKeepsEverything(era: NotifierEra): void {
  it('keep every audit and every byte under swap, aging, DONTNEED and fork, and release tears them down', () => {
    let pswpout = 0;
    let forks = 0;
    for (let seed = 1; seed <= 8; seed++) {
      const r = runTogether(seed, {}, era);
      expect(r.problems, `seed ${seed}`).toEqual([]);
      pswpout += r.pswpout;
      forks += r.forks;
      // KVM took part on every seed: its sptes were invalidated and aged young.
      expect(r.kvm.invalidations, `seed ${seed}`).toBeGreaterThan(0);
      expect(r.kvm.youngHits, `seed ${seed}`).toBeGreaterThan(0);
    }
    expect(pswpout).toBeGreaterThan(0);
    expect(forks).toBeGreaterThan(0);
  });
}

/** One test per mutation: some seed of 1-8 of the shared run on an mm of `era` fails with it. */
function itCatchesEach(mutations: Array<[string, TogetherDebug]>, era: NotifierEra): void {
  for (const [name, debug] of mutations) {
    it(`${name}: some seed fails`, () => {
      let failed = 0;
      for (let seed = 1; seed <= 8 && failed === 0; seed++) if (runTogether(seed, debug, era).problems.length > 0) failed++;
      expect(failed).toBeGreaterThan(0);
    });
  }
}

describe('GRU, HMM mirror, XPMEM exporter and KVM on one process', () => {
  itKeepsEverything('modern');

  // One mechanism of one driver off, the others intact: the shared run catches it.
  const mutations: Array<[string, TogetherDebug]> = [
    ['gru noRangeActiveWait', { gru: { noRangeActiveWait: true } }],
    ['dmirror noReadRetry', { dmirror: { noReadRetry: true } }],
    ['xpmem noRetryMark', { xpmem: { noRetryMark: true } }],
    ['xpmem asyncRecall', { xpmem: { asyncRecall: true } }],
    // A spte left over a frame reclaim frees (KVM's coherency audit: "maps a free frame").
    ['kvm noRangeStartZap', { kvm: { noRangeStartZap: true } }],
    ['kvm noRetry', { kvm: { noRetry: true } }],
    // A guest write lost to reclaim, seen by another driver's reader.
    ['kvm noDirtyCarry', { kvm: { noDirtyCarry: true } }],
    // Sptes left after exit's ->release.
    ['kvm noReleaseZap', { kvm: { noReleaseZap: true } }],
  ];
  itCatchesEach(mutations, 'modern');
});

describe('the 2008 notifier: a v7 VM and the GRU on a process of the 2008 era', () => {
  // Swap-out and do_wp_page reach both only through invalidate_page (KVM's v7 zap and
  // sequence bump, the GRU's page purge); munmap, DONTNEED and fork through the range
  // calls 2.6.27 already had. No HMM mirror and no XPMEM exporter: see ERA_PATHS.
  itKeepsEverything('2008');

  const mutations: Array<[string, TogetherDebug]> = [
    // A range-only GRU on the 2008 host: swap-out never reaches its TLB (8 of 8 seeds).
    ['gru noInvalidatePage', { gru: { noInvalidatePage: true } }],
    // A fill whose gup raced an invalidate_page keeps what it got (seed 1).
    ['gru noSeqCheck', { gru: { noSeqCheck: true } }],
    // KVM's v7 sequence recheck (seed 8) and the reference each v7 spte owns (8 of 8).
    ['kvm noSeqRecheck', { kvm: { noSeqRecheck: true } }],
    ['kvm noPageRef', { kvm: { noPageRef: true } }],
  ];
  itCatchesEach(mutations, '2008');
});
