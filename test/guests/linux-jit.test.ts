// The Linux guest with the block compiler (`run --kernel Image --jit`): the
// same boot as the interpreter's, to the instruction. Kernel and init code are
// compiled, swapped out and back into other frames, their sptes zapped by the
// host's notifier and by the guest's own sfence.vma; the console, the exit, every
// KVM and host counter, the simulated time and the guest-memory hash at the end
// must all be the interpreter's, with and without host pressure, modern and v7.
// Six boots of ~700 M guest instructions: runs when SHADOWVISOR_LINUX=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { guestMemoryHash } from '../../src/check/guest-memory.js';
import { hostDebugView } from '../../src/host/debug-view.js';
import type { KvmProtocol } from '../../src/kvm/vm.js';
import { Vmm, type VmmResult } from '../../src/vmm/vmm.js';

const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const kernel = () => new Uint8Array(readFileSync(new URL('linux-Image', BIN)));
const initrd = () => new Uint8Array(readFileSync(new URL('linux-initramfs.cpio', BIN)));
const MiB = 1 << 20;
const enabled = process.env.SHADOWVISOR_LINUX === '1';

interface Boot {
  r: VmmResult;
  hash: string;
  compiled: number;
  compiledInsns: number;
}

function bootLinux(protocol: KvmProtocol, hostMem: number, jit: boolean): Boot {
  let hash = '';
  const vmm = new Vmm({
    guestMemBytes: 64 * MiB, hostMemBytes: hostMem, protocol, seed: 1,
    ...(jit ? { jit: {} } : {}),
    beforeTeardown: (v) => void (hash = guestMemoryHash(hostDebugView(v.kernel), v.proc.mm, v.ramHva, v.config.guestMemBytes)),
  });
  expect(vmm.bootLinux(kernel(), { initrd: initrd() })).toBeNull();
  const r = vmm.run();
  const j = vmm.vcpu!.hart.jit;
  return { r, hash, compiled: j?.compiled ?? 0, compiledInsns: j?.compiledInsns ?? 0 };
}

describe.skipIf(!enabled)('Linux 6.12 rv32 guest with the block compiler', () => {
  it.each([
    ['modern', 'no host pressure', 128 * MiB],
    ['modern', '24M of host RAM under 64M of guest RAM', 24 * MiB],
    ['v7', '24M of host RAM under 64M of guest RAM', 24 * MiB],
  ] as const)('%s, %s: the interpreter\'s boot, to the instruction', (protocol, _, hostMem) => {
    const interp = bootLinux(protocol, hostMem, false);
    const jit = bootLinux(protocol, hostMem, true);
    expect(interp.r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    expect(interp.r.output).toContain('shadowvisor-init: PASS\r\n');
    expect(jit.r.output).toBe(interp.r.output);
    expect({ exitCode: jit.r.exitCode, reason: jit.r.reason, message: jit.r.message }).toEqual({ exitCode: 0, reason: 'shutdown', message: undefined });
    expect(jit.r.stats).toEqual(interp.r.stats);
    expect(jit.hash).toBe(interp.hash);
    expect(jit.r.stats.guest.warnings).toBe(0);
    if (hostMem < 64 * MiB) expect(jit.r.stats.host.pswpin).toBeGreaterThan(1000);
    // Most of the boot ran compiled.
    expect(jit.compiled).toBeGreaterThan(100);
    expect(jit.compiledInsns).toBeGreaterThan(jit.r.stats.instructions / 2);
  }, 600_000);
});
