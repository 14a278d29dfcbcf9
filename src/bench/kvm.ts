// KVM benchmarks: shadow page faults per second, the cost of invalidate_range_start
// as a function of the range length and of the sptes mapped in it, and the aging
// scan rate. Guest MIPS with and without pressure live with the VMM.

import { performance } from 'node:perf_hooks';
import { HostKernel } from '../host/kernel.js';
import type { MmuNotifierOps, MmuNotifierRange } from '../host/mmu-notifier.js';
import { secondaryMmuHost } from '../host/secondary-mmu.js';
import { PRIV_S } from '../hart/csr.js';
import { ACCESS_STORE } from '../hart/translator.js';
import { kvmMmuPageFault } from '../kvm/mmu/fault.js';
import { kvmMmuNotifierOps } from '../kvm/mmu/notifier.js';
import type { Vcpu } from '../kvm/vcpu.js';
import { Vm } from '../kvm/vm.js';
import { Scheduler, runSync } from '../sched/index.js';
import type { BenchContext, BenchSection } from './section.js';

const PAGE = 4096;
const GPA = 0x80000000;

interface Rig {
  k: HostKernel;
  vm: Vm;
  vcpu: Vcpu;
  hva: number;
  ops: MmuNotifierOps;
}

function rig(hostPages: number, guestPages: number, nMaxMmuPages: number): Rig {
  const sched = new Scheduler({ seed: 1 });
  // Headroom above the watermarks: the figures are for KVM, not for reclaim.
  const frames = hostPages + (hostPages >> 3) + 512;
  const k = new HostKernel({ ramBytes: frames * PAGE, sched, kswapd: false, swapBytes: PAGE * 64 });
  const proc = k.createProcess('bench-vmm');
  const vm = runSync(Vm.create(secondaryMmuHost(k), proc, { protocol: 'modern', nMaxMmuPages }));
  const hva = runSync(k.mmap(proc.mm, guestPages * PAGE));
  runSync(vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: GPA, memorySize: guestPages * PAGE, userspaceAddr: hva }));
  const vcpu = vm.createVcpu(0, { bus: { read: () => 0, write: () => undefined } });
  vcpu.hart.priv = PRIV_S;
  return { k, vm, vcpu, hva, ops: kvmMmuNotifierOps(vm) };
}

/** One store fault on guest page `page` (paging off), through the real fault path. */
function fault(r: Rig, page: number): void {
  const tr = r.vcpu.translator;
  tr.faultGva = (GPA + page * PAGE) | 0;
  tr.faultAccess = ACCESS_STORE;
  tr.faultPriv = PRIV_S;
  const res = runSync(kvmMmuPageFault(r.vcpu));
  if (res !== 'fixed') throw new Error(`bench: fault on page ${page} returned ${res}: ${r.vcpu.lastError}`);
}

function fmt(n: number, digits = 1): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

function faultRate(quick: boolean): string[] {
  const pages = quick ? 4096 : 16384;
  const r = rig(pages + 256, pages, 64);
  const t0 = performance.now();
  for (let i = 0; i < pages; i++) fault(r, i);
  const first = performance.now() - t0;
  // Second round: the host pages exist, so this is KVM's part alone (plus GUP's walk).
  runSync(r.ops.invalidateRangeStart!(range(r, 0, pages)));
  runSync(r.ops.invalidateRangeEnd!(range(r, 0, pages)));
  const t1 = performance.now();
  for (let i = 0; i < pages; i++) fault(r, i);
  const second = performance.now() - t1;
  return [
    `shadow page faults (direct, store, ${pages} pages):`,
    `  with host demand-zero fault: ${fmt((pages / first) * 1000)} faults/s (${fmt((first * 1000) / pages, 2)} us each)`,
    `  host page present:           ${fmt((pages / second) * 1000)} faults/s (${fmt((second * 1000) / pages, 2)} us each)`,
  ];
}

function range(r: Rig, firstPage: number, nPages: number): MmuNotifierRange {
  return { mm: r.vm.mm, start: r.hva + firstPage * PAGE, end: r.hva + (firstPage + nPages) * PAGE, event: 'clear', blockable: true };
}

function invalidateCost(quick: boolean): string[] {
  const guestPages = 65536;
  const many = quick ? 1024 : 4096;
  const r = rig(many + 512, guestPages, 64);
  const reps = quick ? 5 : 20;
  const lines = [
    `invalidate_range_start (modern, under mmu_lock, flush included), slot of ${guestPages} pages:`,
    `  ${'range pages'.padStart(11)} ${'mapped'.padStart(7)} ${'us/call'.padStart(9)} ${'ns/mapped spte'.padStart(15)}`,
  ];
  const measure = (len: number, mapped: number, n: number): number => {
    let total = 0;
    const stride = Math.max(1, Math.floor(len / mapped));
    const rg = range(r, 0, len);
    for (let rep = 0; rep < n; rep++) {
      for (let i = 0; i < mapped; i++) fault(r, i * stride);
      const t0 = performance.now();
      runSync(r.ops.invalidateRangeStart!(rg));
      total += performance.now() - t0;
      runSync(r.ops.invalidateRangeEnd!(rg));
    }
    return (total * 1000) / n;
  };
  const configs: Array<[number, number]> = [];
  for (const len of [1, 512, 65536]) for (const mapped of len === 1 ? [1] : [1, Math.min(len, many)]) configs.push([len, mapped]);
  for (const [len, mapped] of configs) measure(len, mapped, 3); // warm up the JIT on every path
  for (const [len, mapped] of configs) {
    const us = measure(len, mapped, mapped === 1 ? reps * 20 : reps);
    lines.push(`  ${String(len).padStart(11)} ${String(mapped).padStart(7)} ${fmt(us, 2).padStart(9)} ${fmt((us * 1000) / mapped, 0).padStart(15)}`);
  }
  // A range of the VMM's memory outside every memslot: no mmu_lock at all.
  const outside: MmuNotifierRange = { mm: r.vm.mm, start: r.hva + guestPages * PAGE, end: r.hva + guestPages * PAGE + 65536 * PAGE, event: 'clear', blockable: true };
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    runSync(r.ops.invalidateRangeStart!(outside));
    runSync(r.ops.invalidateRangeEnd!(outside));
  }
  lines.push(`  outside every memslot (no mmu_lock), start+end: ${fmt(performance.now() - t0, 2)} us/pair`);
  return lines;
}

function agingRate(quick: boolean): string[] {
  const pages = quick ? 2048 : 8192;
  const r = rig(pages + 256, pages, 64);
  for (let i = 0; i < pages; i++) fault(r, i);
  const cfy = r.ops.clearFlushYoung!;
  const mm = r.vm.mm;
  const pass = (): { ms: number; young: number } => {
    let young = 0;
    const t0 = performance.now();
    for (let i = 0; i < pages; i++) if (cfy(mm, r.hva + i * PAGE, r.hva + (i + 1) * PAGE)) young++;
    return { ms: performance.now() - t0, young };
  };
  const a = pass(); // every spte accessed: clear + per-frame TLB flush
  const b = pass(); // nothing accessed
  const ct = r.ops.clearYoung!;
  const t0 = performance.now();
  ct(mm, r.hva, r.hva + pages * PAGE);
  const c = performance.now() - t0;
  return [
    `aging (clear_flush_young one page at a time, ${pages} mapped pages):`,
    `  all young:  ${fmt((pages / a.ms) * 1000)} pages/s (${a.young} young)`,
    `  none young: ${fmt((pages / b.ms) * 1000)} pages/s (${b.young} young)`,
    `  clear_young over the whole range in one call: ${fmt((pages / c) * 1000)} pages/s`,
  ];
}

export async function runKvmBench(opts: { quick: boolean }): Promise<string> {
  const lines = [...faultRate(opts.quick), '', ...invalidateCost(opts.quick), '', ...agingRate(opts.quick)];
  return lines.join('\n');
}

export const kvmSection: BenchSection = {
  name: 'kvm',
  description: 'shadow page faults, invalidate_range_start cost, aging scan rate',
  async run(ctx: BenchContext): Promise<void> {
    for (const line of (await runKvmBench({ quick: ctx.quick })).split('\n')) ctx.log(line);
  },
};
