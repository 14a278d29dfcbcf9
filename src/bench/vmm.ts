// VMM benchmark: guest MIPS of the S-mode workload (two Sv32 address spaces
// over the same pages) with no memory pressure and with guest RAM twice host
// RAM, per protocol, on the interpreter and with the block compiler (--jit).
// Each engine's no-pressure run is its reference measured in the same process,
// so the ratio says what swapping under notifiers costs; a last line gives
// --jit against the interpreter per configuration.

import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { KvmProtocol } from '../kvm/vm.js';
import { Vmm } from '../vmm/vmm.js';
import { median, type BenchSection } from './section.js';

const MiB = 1 << 20;
const IMAGE = new URL('../../guest-programs/bin/sguest-workload.elf', import.meta.url);

interface Sample {
  seconds: number;
  insns: number;
  pswpout: number;
  pswpin: number;
  faults: number;
}

function once(elf: Uint8Array, protocol: KvmProtocol, guestMemBytes: number, hostMemBytes: number, jit: boolean): Sample {
  const vmm = new Vmm({ guestMemBytes, hostMemBytes, protocol, seed: 1, ...(jit ? { jit: {} } : {}) });
  const err = vmm.boot(elf);
  if (err !== null) throw new Error(`bench: boot: ${err}`);
  const t0 = performance.now();
  const r = vmm.run();
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`bench: sguest-workload exited ${r.exitCode} (${r.reason}) under ${protocol}`);
  const g = r.stats.guest;
  return {
    seconds,
    insns: r.stats.instructions,
    pswpout: r.stats.host.pswpout,
    pswpin: r.stats.host.pswpin,
    faults: typeof g.pf_taken === 'number' ? g.pf_taken : 0,
  };
}

export const vmmSection: BenchSection = {
  name: 'vmm',
  description: 'S-mode workload (12 MiB, two ASIDs) under the VMM: guest MIPS without and with host memory pressure',
  run(ctx) {
    const elf = readFileSync(IMAGE);
    const runs = ctx.quick ? 3 : 5;
    // The 12 MiB data region needs a 24 MiB guest; 64 MiB of host RAM holds it
    // all, 12 MiB (half the guest) does not hold the working set.
    const configs: Array<[string, KvmProtocol, number, number, boolean]> = [
      ['no pressure', 'modern', 24 * MiB, 64 * MiB, false],
      ['guest = 2x host', 'modern', 24 * MiB, 12 * MiB, false],
      ['guest = 2x host', 'v7', 24 * MiB, 12 * MiB, false],
      ['no pressure --jit', 'modern', 24 * MiB, 64 * MiB, true],
      ['2x host --jit', 'modern', 24 * MiB, 12 * MiB, true],
      ['2x host --jit', 'v7', 24 * MiB, 12 * MiB, true],
    ];
    ctx.log(`vmm: sguest-workload, median of ${runs} runs (one warm-up run not counted); wall time of vmm.run()`);
    ctx.log('  config            protocol  guest/host   instructions  seconds    MIPS  faults  swap out/in   vs no pressure');
    const reference = new Map<boolean, number>();
    const interpSeconds: number[] = [];
    const speedups: string[] = [];
    for (const [label, protocol, guest, host, jit] of configs) {
      once(elf, protocol, guest, host, jit);
      const samples = Array.from({ length: runs }, () => once(elf, protocol, guest, host, jit));
      const s = samples[0]!;
      const seconds = median(samples.map((x) => x.seconds));
      const mips = s.insns / seconds / 1e6;
      if (!reference.has(jit)) reference.set(jit, seconds);
      if (!jit) interpSeconds.push(seconds);
      else speedups.push(`${protocol} ${host >= guest ? 'no pressure' : '2x host'} ${(interpSeconds[speedups.length]! / seconds).toFixed(2)}x`);
      ctx.log(
        `  ${label.padEnd(17)} ${protocol.padEnd(8)}  ${`${guest / MiB}M/${host / MiB}M`.padEnd(11)} ${String(s.insns).padStart(12)}`
        + `  ${seconds.toFixed(3).padStart(7)}  ${mips.toFixed(1).padStart(6)}  ${String(s.faults).padStart(6)}`
        + `  ${`${s.pswpout}/${s.pswpin}`.padStart(11)}   ${(seconds / reference.get(jit)!).toFixed(2)}x`,
      );
    }
    ctx.log(`  --jit against the interpreter (time ratio): ${speedups.join(', ')}`);
  },
};
