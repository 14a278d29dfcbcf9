// Breakpoints at full speed (src/console/gate.ts): off the breakpoints' pages the
// vCPU runs whole chunks with those pages armed as KVM guest-debug exits, on them
// one instruction at a time. Held against the one-instruction-per-run gate (no
// setDebugPages) on Linux: the same stops, at the same instruction counts, reached
// by a jump, by a fall-through and through the trap vector.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/console/session.js';

const bin = (name: string) => new Uint8Array(readFileSync(fileURLToPath(new URL(`../../guest-programs/bin/${name}`, import.meta.url))));
const kernel = bin('linux-Image');
const initrd = bin('linux-initramfs.cpio');

function linux(pageArmed: boolean): { s: Session; runs: () => number } {
  const s = new Session((vmm) => vmm.bootLinux(kernel, { initrd }), {
    config: { guestMemBytes: 64 << 20, hostMemBytes: 24 << 20, protocol: 'modern', seed: 1 },
    onOutput: () => {},
  });
  if (!pageArmed) s.gate.setDebugPages = null;
  let runs = 0;
  const leave = s.gate.leave.bind(s.gate);
  s.gate.leave = (begun) => {
    runs++;
    leave(begun);
  };
  return { s, runs: () => runs };
}

interface Stop {
  pc: number;
  instructions: number;
  instret: number;
}

async function stops(s: Session, bps: number[], n: number): Promise<Stop[]> {
  s.gate.breakpoints.clear();
  for (const bp of bps) s.gate.breakpoints.add(bp);
  const out: Stop[] = [];
  for (let i = 0; i < n; i++) {
    expect((await s.run(Infinity)).kind).toBe('parked');
    expect(s.gate.lastStop.kind).toBe('breakpoint');
    const hart = s.vmm.vcpu!.hart;
    out.push({ pc: hart.pc >>> 0, instructions: s.vmm.vcpu!.instructions, instret: hart.instret });
  }
  return out;
}

describe('breakpoints at full speed', () => {
  it('stop where the one-instruction gate stops, reached by a jump and by a fall-through, and run chunks off their pages', async () => {
    const results: Stop[][] = [];
    const runs: number[] = [];
    for (const armed of [true, false]) {
      const { s, runs: n } = linux(armed);
      expect((await s.run(4_500_000)).kind).toBe('parked');
      // linux.script's breakpoint, then the next instruction on its page, then it again.
      results.push([...(await stops(s, [0xc00c5f5c], 1)), ...(await stops(s, [0xc00c5f60], 1)), ...(await stops(s, [0xc00c5f5c, 0xc00c5f60], 2))]);
      runs.push(n());
    }
    expect(results[0]).toEqual(results[1]);
    expect(results[0]!.map((x) => x.pc)).toEqual([0xc00c5f5c, 0xc00c5f60, 0xc00c5f5c, 0xc00c5f60]);
    // The one-instruction gate ran one per run from the first breakpoint on; the
    // armed one stepped only on the breakpoints' page.
    const ran = results[0]![results[0]!.length - 1]!.instructions - 4_500_000;
    expect(runs[1]).toBeGreaterThan(ran);
    expect(runs[0]).toBeLessThan(ran / 20);
  }, 60_000);

  it('stop at the trap vector when an interrupt enters it (the one-instruction gate runs through it)', async () => {
    const { s } = linux(true);
    expect((await s.run(4_500_000)).kind).toBe('parked');
    const hart = s.vmm.vcpu!.hart;
    const stvec = hart.stvec >>> 0;
    const sepc = hart.sepc;
    const [stop] = await stops(s, [stvec], 1);
    expect(stop!.pc).toBe(stvec);
    // Just trapped: sepc moved, and the first handler instruction has not begun.
    expect(hart.sepc).not.toBe(sepc);
    expect(hart.scause).toBe(0x80000005 | 0);
    // A step from there runs the handler's first instruction.
    expect((await s.run(1)).kind).toBe('parked');
    expect(hart.pc >>> 0).toBe(stvec + 4);

    // hart.run(1) takes a pending interrupt and begins its handler's first
    // instruction: the one-instruction gate traps and never sees pc at the vector.
    const slow = linux(false).s;
    expect((await slow.run(4_500_000)).kind).toBe('parked');
    const h = slow.vmm.vcpu!.hart;
    const before = h.sepc;
    slow.gate.breakpoints.add(h.stvec >>> 0);
    expect((await slow.run(1_000_000)).kind).toBe('parked');
    expect(slow.gate.lastStop.kind).toBe('step');
    expect(h.sepc).not.toBe(before);
  }, 60_000);
});
