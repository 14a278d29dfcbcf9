// Pin mode over guest RAM larger than the host, with guest page tables KVM never
// maps: the VMM loads them (copy_to_user), the guest only walks them, so they are
// the last unpinned pages on the host. Reclaim used to free one for every data page
// KVM pinned; the fault then found its table gone, retried, unpinned, and the two
// pages swapped each other out until the vCPU's livelock bound ended the run
// (exit 70 after ~12 s). The host now sees a node that reclaim can never balance
// and OOM-kills the VMM, with the report, at once. Under modern the same guest
// swaps and finishes.

import { describe, expect, it } from 'vitest';
import { Prog, add, bltu, bne, csrw, ecall, jal, li, lw, sfence_vma, sw, xor } from '../../src/hart/asm.js';
import { auditKernel } from '../../src/host/index.js';
import { EXIT_OOM, Vmm, type VmmConfig, type VmmResult } from '../../src/vmm/vmm.js';
import { elf32 } from './elf32.js';

const RAM = 0x80000000;
const PAGE = 4096;
const KiB = 1024;
const CSR_SATP = 0x180;
const SBI_EXT_SRST = 0x53525354;

/**
 * Page 0: code; page 1: the Sv32 root; page 2: one leaf table identity-mapping the
 * first 4 MiB of RAM with 4 KiB pages (RWX, A and D preset). The code turns paging
 * on, writes one word per page from page 3 to the end of RAM, reads them back, and
 * shuts down through SRST with reason 0 (pass) or 1 (a wrong word).
 */
function walkedTablesGuest(guestBytes: number): Uint8Array {
  const root = RAM + PAGE;
  const leaf = RAM + 2 * PAGE;
  const data = RAM + 3 * PAGE;
  const p = new Prog(RAM | 0);
  p.emit(li(5, (0x80000000 | (root / PAGE)) | 0), csrw(CSR_SATP, 5), sfence_vma(0, 0));
  p.emit(li(5, data), li(6, RAM + guestBytes), li(7, 0x5eed1234), li(8, PAGE));
  p.label('w').emit(xor(10, 5, 7), sw(10, 5, 0), add(5, 5, 8)).to('w', (o) => bltu(5, 6, o));
  p.emit(li(5, data));
  p.label('r').emit(lw(10, 5, 0), xor(11, 5, 7)).to('bad', (o) => bne(10, 11, o));
  p.emit(add(5, 5, 8)).to('r', (o) => bltu(5, 6, o));
  p.emit(li(11, 0)).to('srst', (o) => jal(0, o));
  p.label('bad').emit(li(11, 1));
  p.label('srst').emit(li(17, SBI_EXT_SRST), li(16, 0), li(10, 0), ecall(), jal(0, 0));

  const image = new Uint8Array(3 * PAGE);
  image.set(new Uint8Array(new Int32Array(p.assemble()).buffer), 0);
  const dv = new DataView(image.buffer);
  dv.setUint32(PAGE + (RAM >>> 22) * 4, ((leaf / PAGE) << 10) | 0x1, true);
  for (let i = 0; i < Math.min(1024, guestBytes / PAGE); i++) dv.setUint32(2 * PAGE + i * 4, ((RAM / PAGE + i) << 10) | 0xcf, true);
  return elf32(RAM, image);
}

function run(protocol: VmmConfig['protocol']): { r: VmmResult; vmm: Vmm } {
  const guestMemBytes = 512 * KiB;
  const vmm = new Vmm({ guestMemBytes, hostMemBytes: 256 * KiB, protocol, seed: 1 });
  expect(vmm.boot(walkedTablesGuest(guestMemBytes))).toBeNull();
  return { r: vmm.run(), vmm };
}

describe('pin: guest RAM 2x host RAM, guest page tables only walked by KVM', () => {
  it('the host OOM-kills the VMM with the report (exit 137), no livelock', () => {
    const { r, vmm } = run('pin');
    expect(r.message).not.toMatch(/livelock/);
    expect(r).toMatchObject({ exitCode: EXIT_OOM, reason: 'oom' });
    // dump_header, the task table, the verdict and the reaper's line.
    expect(r.message).toMatch(/vmm \(pid 1\) invoked oom-killer: gfp_mask=GFP_HIGHUSER_MOVABLE, order=0/);
    expect(r.message).toMatch(/pinned:\d+ \(\d+kB\) of 64\n.*all_unreclaimable\? yes/);
    expect(r.message).toMatch(/\[ +1\] +128 +\d+ +\d+ +0 vmm\n/);
    expect(r.message).toMatch(/Out of memory: Killed process 1 \(vmm\) total-vm:512kB/);
    expect(r.message).toMatch(/oom_reaper: reaped process 1 \(vmm\).*\d+ pinned pages stay allocated/);
    expect(r.stats.host.oomKill).toBe(1);
    // Fault retries are what the thrash was made of.
    expect(r.stats.guest.pf_retry).toBe(0);
    expect(auditKernel(vmm.kernel)).toEqual([]);
    expect(vmm.kernel.frames.nrFree).toBe(vmm.kernel.frames.nrFrames);
  });

  it.each(['modern', 'v7'] as const)('%s: the same guest swaps and passes', (protocol) => {
    const { r } = run(protocol);
    expect(r).toMatchObject({ exitCode: 0, reason: 'shutdown' });
    expect(r.stats.host.oomKill).toBe(0);
    expect(r.stats.host.pswpout).toBeGreaterThan(64);
    expect(r.stats.host.pswpin).toBeGreaterThan(64);
  });
});
