import { describe, expect, it } from 'vitest';
import { Plic, PLIC_NDEV } from '../../../src/vmm/devices/plic.js';

const PRIORITY = (id: number) => 4 * id;
const PENDING = 0x1000;
const ENABLE = 0x2000;
const THRESHOLD = 0x200000;
const CLAIM = 0x200004;

function plic() {
  const eip: boolean[] = [];
  const p = new Plic((level) => eip.push(level));
  return { p, eip, last: () => eip[eip.length - 1] ?? false };
}

describe('PLIC', () => {
  it('raises eip for an enabled source above the threshold, and claim/complete follow the level', () => {
    const { p, eip, last } = plic();
    p.write(PRIORITY(1), 4, 1);
    p.write(ENABLE, 4, 1 << 1);
    p.setLevel(1, true);
    expect(last()).toBe(true);
    expect(p.read(PENDING, 4)).toBe(1 << 1);
    expect(p.read(CLAIM, 4)).toBe(1);
    // Claimed: no longer pending, eip low, and a second claim finds nothing.
    expect(last()).toBe(false);
    expect(p.read(PENDING, 4)).toBe(0);
    expect(p.read(CLAIM, 4)).toBe(0);
    // The line is still high: completing asks again at once.
    p.write(CLAIM, 4, 1);
    expect(last()).toBe(true);
    expect(p.read(CLAIM, 4)).toBe(1);
    p.setLevel(1, false);
    p.write(CLAIM, 4, 1);
    expect(last()).toBe(false);
    expect(eip).toEqual([true, false, true, false]);
  });

  it('does not request a source while it is in service, even if its line goes low and high again', () => {
    const { p, last } = plic();
    p.write(PRIORITY(3), 4, 2);
    p.write(ENABLE, 4, 1 << 3);
    p.setLevel(3, true);
    expect(p.read(CLAIM, 4)).toBe(3);
    p.setLevel(3, false);
    p.setLevel(3, true);
    expect(last()).toBe(false);
    expect(p.read(PENDING, 4)).toBe(0);
    p.write(CLAIM, 4, 3);
    expect(p.read(CLAIM, 4)).toBe(3);
  });

  it('withdraws a request whose line drops before the claim', () => {
    const { p, last } = plic();
    p.write(PRIORITY(2), 4, 1);
    p.write(ENABLE, 4, 1 << 2);
    p.setLevel(2, true);
    p.setLevel(2, false);
    expect(last()).toBe(false);
    expect(p.read(CLAIM, 4)).toBe(0);
  });

  it('masks by priority 0, by the enable bit and by the threshold; claims the highest priority first, ties to the lowest id', () => {
    const { p, last } = plic();
    for (const id of [4, 5, 6]) p.setLevel(id, true);
    expect(last()).toBe(false); // priority 0 and not enabled
    p.write(ENABLE, 4, (1 << 4) | (1 << 5) | (1 << 6));
    expect(last()).toBe(false); // priority 0 never interrupts
    p.write(PRIORITY(4), 4, 2);
    p.write(PRIORITY(5), 4, 5);
    p.write(PRIORITY(6), 4, 5);
    expect(last()).toBe(true);
    p.write(THRESHOLD, 4, 5);
    expect(last()).toBe(false);
    expect(p.read(CLAIM, 4)).toBe(0);
    p.write(THRESHOLD, 4, 1);
    expect(p.read(CLAIM, 4)).toBe(5);
    expect(p.read(CLAIM, 4)).toBe(6);
    expect(p.read(CLAIM, 4)).toBe(4);
    expect(p.read(CLAIM, 4)).toBe(0);
  });

  it('ignores completion of a source that is not enabled, and stays sane on bad offsets and widths', () => {
    const { p } = plic();
    p.write(PRIORITY(1), 4, 1);
    p.write(ENABLE, 4, 1 << 1);
    p.setLevel(1, true);
    expect(p.read(CLAIM, 4)).toBe(1);
    p.write(ENABLE, 4, 0);
    p.write(CLAIM, 4, 1); // not enabled: ignored, stays in service
    p.write(ENABLE, 4, 1 << 1);
    expect(p.read(CLAIM, 4)).toBe(0);
    p.write(CLAIM, 4, 1);
    expect(p.read(CLAIM, 4)).toBe(1);
    // Source 0 does not exist; priorities hold 3 bits; byte writes change nothing.
    p.write(ENABLE, 4, 1);
    expect(p.read(ENABLE, 4)).toBe(0);
    p.write(PRIORITY(2), 4, 0xff);
    expect(p.read(PRIORITY(2), 4)).toBe(7);
    p.write(PRIORITY(2), 1, 1);
    expect(p.read(PRIORITY(2), 4)).toBe(7);
    p.write(CLAIM, 4, 0xffffffff);
    p.write(0x3ffffc, 4, 1);
    expect(p.read(0x3ffffc, 4)).toBe(0);
    expect(() => p.setLevel(0, true)).toThrow(RangeError);
    expect(() => p.setLevel(PLIC_NDEV + 1, true)).toThrow(RangeError);
  });
});
