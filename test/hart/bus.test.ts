import { describe, expect, it } from 'vitest';
import { BusError, DeviceBus, type MmioDevice } from '../../src/hart/bus.js';

class Reg implements MmioDevice {
  readonly log: string[] = [];
  constructor(readonly name: string, readonly base: number, readonly size: number) {}
  read(offset: number, width: 1 | 2 | 4): number {
    this.log.push(`r${width}@${offset}`);
    return offset + 1;
  }
  write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.log.push(`w${width}@${offset}=${value}`);
  }
}

describe('DeviceBus', () => {
  it('decodes an access to the device whose range holds it, with the offset inside the device', () => {
    const a = new Reg('a', 0x10000000, 0x100);
    const b = new Reg('b', 0x0c000000, 0x400000);
    const bus = new DeviceBus([a, b]);
    expect(bus.read(0x10000005, 1)).toBe(6);
    bus.write(0x0c200004 | 0, 4, 7);
    expect(a.log).toEqual(['r1@5']);
    expect(b.log).toEqual(['w4@2097156=7']);
    expect(bus.fault).toBe(false);
  });

  it('takes an int32 pattern for an address above 2 GiB', () => {
    const d = new Reg('hi', 0xf0000000, 0x1000);
    const bus = new DeviceBus([d]);
    expect(bus.read(0xf0000010 | 0, 4)).toBe(0x11);
  });

  it('sets fault for an address no device claims and calls nobody', () => {
    const a = new Reg('a', 0x1000, 0x100);
    const bus = new DeviceBus([a]);
    expect(bus.read(0x1100, 4)).toBe(0);
    expect(bus.fault).toBe(true);
    bus.fault = false;
    bus.write(0xfff, 1, 1);
    expect(bus.fault).toBe(true);
    expect(a.log).toEqual([]);
  });

  it('refuses a device that overlaps another, naming both', () => {
    const bus = new DeviceBus([new Reg('uart', 0x10000000, 0x100)]);
    expect(() => bus.attach(new Reg('virtio', 0x100000f0, 0x1000))).toThrow(BusError);
    expect(() => bus.attach(new Reg('virtio', 0x100000f0, 0x1000))).toThrow(/virtio at 0x100000f0\+0x1000 overlaps uart at 0x10000000\+0x100/);
    expect(() => bus.attach(new Reg('edge', 0xffffff00, 0x200))).toThrow(/not inside the 32-bit physical space/);
    expect(() => bus.attach(new Reg('empty', 0x2000, 0))).toThrow(BusError);
    bus.attach(new Reg('next', 0x10000100, 0x100));
    expect(bus.dump()).toBe('uart@0x10000000+0x100 next@0x10000100+0x100');
  });
});
