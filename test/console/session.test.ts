// The stepping contract of the console's gate (src/console/gate.ts), driven
// through Session without a terminal: exact instruction counts, breakpoints that
// a continue steps over, Ctrl-C that parks at an instruction boundary, and
// inspection that changes nothing.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/console/session.js';

const elf = readFileSync(fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url)));
const open = () => new Session(elf, { config: { guestMemBytes: 4 << 20, hostMemBytes: 2 << 20, protocol: 'modern', seed: 1 }, onOutput: () => {} });

describe('console session', () => {
  it('boots parked before the first instruction, with no instruction begun', () => {
    const s = open();
    expect(s.isParked).toBe(true);
    expect(s.vmm.vcpu!.instructions).toBe(0);
    expect(s.vmm.vcpu!.hart.pc >>> 0).toBe(0x80000000);
  });

  it('step N and continue N begin exactly N instructions, across faults, SBI calls and paging', async () => {
    const s = open();
    const v = s.vmm.vcpu!;
    let total = 0;
    for (const n of [1, 7, 4096, 4097, 100_000, 1]) {
      const r = await s.run(n);
      expect(r.kind).toBe('parked');
      total += n;
      expect(v.instructions).toBe(total);
    }
  });

  it('a breakpoint stops before its instruction, and continue runs it', async () => {
    const s = open();
    s.gate.breakpoints.add(0x80000040);
    expect((await s.run(Infinity)).kind).toBe('parked');
    expect(s.vmm.vcpu!.hart.pc >>> 0).toBe(0x80000040);
    expect(s.gate.lastStop).toEqual({ kind: 'breakpoint', pc: 0x80000040 });
    const before = s.vmm.vcpu!.instructions;
    // The loop around 0x80000040 comes back to it: one more iteration, not zero.
    await s.run(Infinity);
    expect(s.vmm.vcpu!.hart.pc >>> 0).toBe(0x80000040);
    expect(s.vmm.vcpu!.instructions).toBeGreaterThan(before);
  });

  it('an interrupt parks the vCPU at an instruction boundary and the run can go on to the same end', async () => {
    const s = open();
    const p = s.run(Infinity);
    setTimeout(() => s.requestInterrupt(), 30);
    const r = await p;
    expect(r.kind).toBe('parked');
    expect(s.gate.lastStop.kind).toBe('interrupt');
    expect(s.ended).toBeNull();
    const end = await s.run(Infinity);
    expect(end.kind).toBe('ended');
    if (end.kind === 'ended') expect(end.result.exitCode).toBe(0);
  });

  it('reading guest memory changes no counter and no state', async () => {
    const s = open();
    await s.run(2_000_000);
    const before = JSON.stringify(s.vmm.stats());
    const gfns = [0x8000b, 0x80010, 0x80100, 0x801ff];
    const states = gfns.map((g) => s.pageState(g * 4096));
    for (const g of gfns) s.readGuest(g * 4096, 4096, false);
    expect(JSON.stringify(s.vmm.stats())).toBe(before);
    expect(gfns.map((g) => s.pageState(g * 4096))).toEqual(states);
  });
});
