// The one MMIO bus of a machine: devices at fixed physical ranges, decoded in
// one place. The bare machine, the VMM (behind KVM's MMIO exits) and the tests
// attach their devices here instead of each comparing addresses of its own.
//
// An access no device claims sets `fault`; the hart turns that into an access
// fault for the guest (a load or store access fault with the address), as a
// bus error on a real SoC. Devices never see an address outside their range.

import type { MmioBus } from './translator.js';

export interface MmioDevice {
  readonly name: string;
  readonly base: number;
  readonly size: number;
  read(offset: number, width: 1 | 2 | 4): number;
  write(offset: number, width: 1 | 2 | 4, value: number): void;
}

export class BusError extends Error {
  override readonly name = 'BusError';
}

function hex(v: number): string {
  return '0x' + (v >>> 0).toString(16);
}

export class DeviceBus implements MmioBus {
  fault = false;
  private readonly devices: MmioDevice[] = [];

  constructor(devices: readonly MmioDevice[] = []) {
    for (const d of devices) this.attach(d);
  }

  /** Adds a device; its range must be non-empty, below 4 GiB, and overlap no other. */
  attach(d: MmioDevice): void {
    if (!(Number.isInteger(d.base) && Number.isInteger(d.size) && d.base >= 0 && d.size > 0 && d.base + d.size <= 2 ** 32)) {
      throw new BusError(`${d.name}: range ${hex(d.base)}+${hex(d.size)} is not inside the 32-bit physical space`);
    }
    for (const o of this.devices) {
      if (d.base < o.base + o.size && o.base < d.base + d.size) {
        throw new BusError(`${d.name} at ${hex(d.base)}+${hex(d.size)} overlaps ${o.name} at ${hex(o.base)}+${hex(o.size)}`);
      }
    }
    this.devices.push(d);
  }

  /** The device whose range holds pa (a uint32 or an int32 pattern), or null. */
  find(pa: number): MmioDevice | null {
    const p = pa >>> 0;
    for (const d of this.devices) {
      if (p >= d.base && p < d.base + d.size) return d;
    }
    return null;
  }

  read(pa: number, width: 1 | 2 | 4): number {
    const d = this.find(pa);
    if (d === null) {
      this.fault = true;
      return 0;
    }
    return d.read((pa >>> 0) - d.base, width);
  }

  write(pa: number, width: 1 | 2 | 4, value: number): void {
    const d = this.find(pa);
    if (d === null) {
      this.fault = true;
      return;
    }
    d.write((pa >>> 0) - d.base, width, value);
  }

  list(): readonly MmioDevice[] {
    return this.devices;
  }

  dump(): string {
    return this.devices.map((d) => `${d.name}@${hex(d.base)}+${hex(d.size)}`).join(' ');
  }
}
