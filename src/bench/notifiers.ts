// What one secondary MMU costs the host per invalidation: KVM (modern), the GRU
// device TLB, the HMM mirror and the XPMEM exporter (with B attached), each
// registered alone on the same process with all 512 pages of the same range mapped
// in it, against the same operations with nothing registered: one 512-page munmap
// (one invalidate_range_start/end for the whole range) and a page-by-page swap-out
// of the range (reclaim's try_to_unmap: a range per page). Simulated ticks say what
// a driver makes the host wait for (a GRU purge, an XPMEM recall's round trip);
// wall time per page, over the same run with nothing registered, is the driver's
// own work in its callbacks (zaps, rmap walks, flushes) plus the notifier core's.

import { PRIV_S } from '../hart/csr.js';
import { ACCESS_STORE } from '../hart/translator.js';
import { GruDevice } from '../gru/gru.js';
import { Dmirror } from '../hmm/dmirror.js';
import { HostKernel } from '../host/kernel.js';
import type { Process } from '../host/mm.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import { kvmMmuPageFault } from '../kvm/mmu/fault.js';
import { Vm } from '../kvm/vm.js';
import { Scheduler } from '../sched/index.js';
import type { Task } from '../sched/index.js';
import { XpmemSegment } from '../xpmem/xpmem.js';
import { median, type BenchContext, type BenchSection } from './section.js';

const PAGE = 4096;
const PAGES = 512;
const GPA = 0x80000000;

type Driver = 'none' | 'kvm' | 'gru' | 'hmm' | 'xpmem';
const DRIVERS: readonly Driver[] = ['none', 'kvm', 'gru', 'hmm', 'xpmem'];
type Op = 'munmap' | 'swapout';

interface Figures {
  simTicks: number;
  wallMs: number;
  notifierCalls: number;
}

/** Maps all PAGES pages of [hva, +PAGES) in the driver; returns a check that it let go of everything. */
function* register(k: HostKernel, p: Process, driver: Driver, hva: number): Task<() => string | null> {
  const host = secondaryMmuHost(k);
  const buf = new Uint8Array(8);
  switch (driver) {
    case 'none':
      return () => null;
    case 'kvm': {
      const vm = yield* Vm.create(host, p, { protocol: 'modern', nMaxMmuPages: 64 });
      yield* vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: GPA, memorySize: PAGES * PAGE, userspaceAddr: hva });
      const vcpu = vm.createVcpu(0, { bus: { read: () => 0, write: () => undefined } });
      vcpu.hart.priv = PRIV_S;
      const tr = vcpu.translator;
      for (let i = 0; i < PAGES; i++) {
        // A store fault on each guest page (paging off) through the real fault path.
        tr.faultGva = (GPA + i * PAGE) | 0;
        tr.faultAccess = ACCESS_STORE;
        tr.faultPriv = PRIV_S;
        const r = yield* kvmMmuPageFault(vcpu);
        if (r !== 'fixed') throw new Error(`notifiers bench: kvm fault on page ${i}: ${r} ${vcpu.lastError}`);
      }
      return () => (vm.stats.warnings !== 0 ? `kvm: ${vm.warnings.join('; ')}` : null);
    }
    case 'gru': {
      const dev = yield* GruDevice.create(host, p.mm, { entries: PAGES });
      if (dev === null) throw new Error('notifiers bench: gru create');
      for (let i = 0; i < PAGES; i++) yield* dev.submit({ op: 'read', hva: hva + i * PAGE, dst: buf });
      return () => (dev.refsHeld !== 0 ? `gru: ${dev.refsHeld} references left` : null);
    }
    case 'hmm': {
      const dm = yield* Dmirror.create(host, p.mm, hva, PAGES * PAGE);
      if (typeof dm === 'number') throw new Error(`notifiers bench: dmirror create ${dm}`);
      for (let i = 0; i < PAGES; i++) yield* dm.read(hva + i * PAGE, buf);
      return () => (dm.refsHeld !== 0 ? `hmm: ${dm.refsHeld} references left` : null);
    }
    case 'xpmem': {
      const s = yield* XpmemSegment.make(host, p.mm, hva, PAGES * PAGE);
      if (typeof s === 'number') throw new Error(`notifiers bench: xpmem make ${s}`);
      const b = k.createProcess('attacher');
      const att = yield* s.attach(b.mm);
      if (typeof att === 'number') throw new Error(`notifiers bench: xpmem attach ${att}`);
      for (let i = 0; i < PAGES; i++) yield* k.accessRead(b.mm, att.hva + i * PAGE, buf);
      return () => (s.refsHeld !== 0 ? `xpmem: ${s.refsHeld} references left` : null);
    }
  }
}

function once(op: Op, driver: Driver): Figures {
  const sched = new Scheduler({ seed: 1 });
  const k = new HostKernel({ ramBytes: 8 * 1024 * 1024, sched, kswapd: false });
  const p = k.createProcess('bench');
  let hva = 0;
  let check: () => string | null = () => null;
  sched.spawn('setup', function* () {
    hva = yield* k.mmap(p.mm, PAGES * PAGE);
    const b = new Uint8Array(PAGE);
    for (let i = 0; i < PAGES; i++) {
      b[0] = i;
      yield* k.accessWrite(p.mm, hva + i * PAGE, b);
    }
    check = yield* register(k, p, driver, hva);
  });
  let r = sched.run();
  if (r.status !== 'done') throw new Error(`notifiers bench setup (${driver}): ${r.status}`);
  const calls0 = k.ctx.stats.notifierCalls;
  let ticks = 0;
  sched.spawn(op, function* () {
    const t0 = k.now;
    if (op === 'munmap') yield* k.munmap(p.mm, hva, PAGES * PAGE);
    else for (let i = 0; i < PAGES; i++) yield* k.reclaimUserPage(p.mm, hva + i * PAGE);
    ticks = k.now - t0;
  });
  const w0 = performance.now();
  r = sched.run();
  const wallMs = performance.now() - w0;
  if (r.status !== 'done') throw new Error(`notifiers bench ${op} (${driver}): ${r.status}`);
  const problem = op === 'munmap' ? check() : null;
  if (problem !== null) throw new Error(`notifiers bench ${op}: ${problem}`);
  const figures = { simTicks: ticks, wallMs, notifierCalls: k.ctx.stats.notifierCalls - calls0 };
  k.shutdown();
  return figures;
}

export function runNotifiersBench(opts: { quick: boolean }): string[] {
  const reps = opts.quick ? 5 : 15;
  const lines = [
    `one secondary MMU alone on a process, all ${PAGES} pages of the range mapped in it (wall: median of ${reps}, ` +
      `runs interleaved across drivers; x and us/page: against the same run with nothing registered):`,
  ];
  for (const op of ['munmap', 'swapout'] as const) {
    // Warm-up: every driver's path twice, so no driver's figure pays for the JIT.
    for (let w = 0; w < 2; w++) for (const driver of DRIVERS) once(op, driver);
    const runs = new Map<Driver, Figures[]>(DRIVERS.map((d) => [d, []]));
    for (let rep = 0; rep < reps; rep++) for (const driver of DRIVERS) runs.get(driver)!.push(once(op, driver));
    lines.push(`  ${op === 'munmap' ? `one ${PAGES}-page munmap (one range)` : `swap-out page by page (${PAGES} ranges)`}:`);
    const base = runs.get('none')!;
    const baseMs = median(base.map((x) => x.wallMs));
    const baseTicks = base[0]!.simTicks;
    for (const driver of DRIVERS) {
      const rs = runs.get(driver)!;
      const f = rs[0]!;
      const ms = median(rs.map((x) => x.wallMs));
      const extraUsPerPage = ((ms - baseMs) * 1000) / PAGES;
      lines.push(
        `    ${driver.padEnd(6)} ${String(f.simTicks).padStart(6)} ticks (x${(f.simTicks / Math.max(1, baseTicks)).toFixed(2).padEnd(5)})  ` +
          `${ms.toFixed(2).padStart(7)} ms wall (x${(ms / baseMs).toFixed(2).padEnd(5)} ${driver === 'none' ? '     -' : extraUsPerPage.toFixed(2).padStart(6)} us/page more)  ` +
          `${f.notifierCalls} notifier call(s)`,
      );
    }
  }
  return lines;
}

export const notifiersSection: BenchSection = {
  name: 'notifiers',
  description: 'notifier cost per secondary MMU: KVM, GRU, HMM, XPMEM each alone on a 512-page munmap and a page-by-page swap-out',
  run(ctx: BenchContext): void {
    for (const line of runNotifiersBench({ quick: ctx.quick })) ctx.log(line);
  },
};
