// Balloon benchmark: the committed Linux guest's own virtio_balloon driver
// against our device, on a target schedule (inflate 32 MiB at 11 s of guest
// time, deflate at 17 s; the init's balloon workload dirties and frees 40 MiB
// first, so the pages it gives back are ones the host holds). Prints the
// inflate and deflate throughput (MiB of guest memory per second, of simulated
// and of wall time: the guest's driver, its kernel and the host all run in
// between) and the VMM's footprint on the host (resident + swapped pages)
// once a guest second while the schedule runs.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { KvmProtocol } from '../kvm/vm.js';
import { TIMEBASE_FREQUENCY } from '../vmm/linux-boot.js';
import { Vmm } from '../vmm/vmm.js';
import { median } from './section.js';
import type { BenchSection } from './section.js';

const MiB = 1 << 20;
const PAGES_PER_MIB = 256;
const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const INFLATE_AT = 11;
const DEFLATE_AT = 17;
const TARGET_MIB = 32;

interface Phase {
  ticks: number;
  ms: number;
}

export interface BalloonRun {
  inflate: Phase;
  deflate: Phase;
  /** [guest second, footprint MiB] from INFLATE_AT - 2 to the end. */
  curve: [number, number][];
  hostFreedMiB: number;
}

/** MiB per second of a phase that moved `mib`, in simulated and in wall time. */
export function throughput(mib: number, p: Phase): { simulated: number; wall: number } {
  return { simulated: mib / (p.ticks / TIMEBASE_FREQUENCY), wall: mib / (p.ms / 1000) };
}

function runSchedule(kernel: Uint8Array, initrd: Uint8Array, protocol: KvmProtocol, hostMemBytes: number): BalloonRun {
  const sec = (s: number) => s * TIMEBASE_FREQUENCY;
  const vmm = new Vmm({
    guestMemBytes: 64 * MiB, hostMemBytes, protocol, seed: 1,
    balloon: { schedule: [{ atTicks: sec(INFLATE_AT), targetPages: TARGET_MIB * PAGES_PER_MIB }, { atTicks: sec(DEFLATE_AT), targetPages: 0 }] },
  });
  const err = vmm.bootLinux(kernel, { initrd, bootargs: 'earlycon=sbi console=hvc0 panic=-1 svmode=balloon svtouch=40 svsecs=14' });
  if (err !== null) throw new Error(`bench: balloon: ${err}`);
  const target = TARGET_MIB * PAGES_PER_MIB;
  const marks: Record<string, { ticks: number; ms: number }> = {};
  const curve: [number, number][] = [];
  let nextSecond = INFLATE_AT - 2;
  const mark = (name: string) => {
    if (marks[name] === undefined) marks[name] = { ticks: vmm.sched.now, ms: performance.now() };
  };
  const r = vmm.resume(() => {
    const now = vmm.sched.now;
    const held = vmm.balloon!.stats().inflatedPages;
    if (now >= sec(INFLATE_AT)) mark('inflate-start');
    if (marks['inflate-start'] && held >= target) mark('inflated');
    if (now >= sec(DEFLATE_AT)) mark('deflate-start');
    if (marks['deflate-start'] && held === 0) mark('deflated');
    if (now >= sec(nextSecond)) {
      const mm = vmm.proc.mm;
      curve.push([nextSecond, (mm.anonRss + mm.swapEnts) / PAGES_PER_MIB]);
      nextSecond++;
    }
    return false;
  })!;
  if (r.exitCode !== 0 || !r.output.includes('shadowvisor-init: PASS')) {
    throw new Error(`bench: balloon: the guest did not pass under ${protocol} (${r.reason}${r.message ? `: ${r.message}` : ''})`);
  }
  for (const m of ['inflate-start', 'inflated', 'deflate-start', 'deflated']) {
    if (marks[m] === undefined) throw new Error(`bench: balloon: never reached '${m}' (${JSON.stringify(r.stats.balloon)})`);
  }
  const phase = (a: string, b: string): Phase => ({ ticks: marks[b]!.ticks - marks[a]!.ticks, ms: marks[b]!.ms - marks[a]!.ms });
  return {
    inflate: phase('inflate-start', 'inflated'),
    deflate: phase('deflate-start', 'deflated'),
    curve,
    hostFreedMiB: r.stats.balloon!.hostFreedPages / PAGES_PER_MIB,
  };
}

export const balloonSection: BenchSection = {
  name: 'balloon',
  description: `virtio-balloon with the Linux driver: inflate ${TARGET_MIB} MiB and deflate on a schedule, throughput and the VMM's host footprint`,
  run(ctx) {
    const kernel = new Uint8Array(readFileSync(new URL('linux-Image', BIN)));
    const initrd = new Uint8Array(readFileSync(new URL('linux-initramfs.cpio', BIN)));
    const configs: Array<[string, KvmProtocol, number]> = [
      ['no pressure', 'modern', 128 * MiB],
      ...(ctx.quick ? [] : [['64M guest/24M host', 'modern', 24 * MiB] as [string, KvmProtocol, number]]),
    ];
    const runs = ctx.quick ? 1 : 3;
    ctx.log(`balloon: target ${TARGET_MIB} MiB at ${INFLATE_AT} s, 0 at ${DEFLATE_AT} s (guest time); wall MiB/s the median of ${runs} run(s), simulated the same every run`);
    ctx.log('  config              inflate MiB/s (sim, wall)  deflate MiB/s (sim, wall)  host got back');
    for (const [label, protocol, host] of configs) {
      const all = Array.from({ length: runs }, () => runSchedule(kernel, initrd, protocol, host));
      const s = all[0]!;
      const i = { simulated: throughput(TARGET_MIB, s.inflate).simulated, wall: median(all.map((r) => throughput(TARGET_MIB, r.inflate).wall)) };
      const d = { simulated: throughput(TARGET_MIB, s.deflate).simulated, wall: median(all.map((r) => throughput(TARGET_MIB, r.deflate).wall)) };
      ctx.log(`  ${label.padEnd(19)} ${i.simulated.toFixed(0).padStart(10)} ${i.wall.toFixed(0).padStart(8)}        `
        + `${d.simulated.toFixed(0).padStart(10)} ${d.wall.toFixed(0).padStart(8)}         ${s.hostFreedMiB.toFixed(1)} MiB`);
      ctx.log(`    footprint (resident + swapped, MiB) by guest second: ${s.curve.map(([t, m]) => `${t}s ${m.toFixed(1)}`).join(', ')}`);
    }
  },
};
