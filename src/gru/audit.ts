// The GRU device's checker (not driver code: it reads host ptes and frames through the
// debugger's lockless view, HostDebugView, which the driver itself never holds).
//
//   coherence   while the device has no range active, every TLB entry maps the frame
//               the host pte of its page maps, writable only where the pte is; at any
//               time an entry's frame is allocated and referenced (the entry's gup ref).
//   accounting  refsHeld = live entries + parked references (+ fills in flight).
//   teardown    no entry, nothing parked, no reference held.

import type { HostDebugView } from '../host/debug-view.js';
import { PG_free } from '../host/frames.js';
import { PTE_WRITE, ptePfn, ptePresent } from '../host/pte.js';
import { PAGE_SIZE, type GruDevice } from './gru.js';

/** host: the debug view of the kernel the device's mm lives in (hostDebugView(k)). */
export function auditGru(host: HostDebugView, dev: GruDevice): string[] {
  const problems: string[] = [];
  const quiet = dev.msRangeActive === 0;
  let live = 0;
  for (const e of dev.liveEntries()) {
    live++;
    const hva = e.page * PAGE_SIZE;
    if (host.frames.flags[e.pfn]! & PG_free || host.frames.refcount[e.pfn]! < 1) {
      problems.push(`${dev.name}: TLB hva 0x${hva.toString(16)} -> pfn ${e.pfn}, a free frame`);
    }
    if (!quiet) continue;
    const pte = host.followPte(dev.mm, hva);
    if (!ptePresent(pte) || ptePfn(pte) !== e.pfn) {
      problems.push(`${dev.name}: TLB hva 0x${hva.toString(16)} -> pfn ${e.pfn}, host pte ${ptePresent(pte) ? `pfn ${ptePfn(pte)}` : `0x${pte.toString(16)} (not present)`}`);
    } else if (e.write && !(pte & PTE_WRITE)) {
      problems.push(`${dev.name}: TLB hva 0x${hva.toString(16)} writable, host pte read-only`);
    }
  }
  if (dev.refsHeld < live + dev.parkedRefs()) problems.push(`${dev.name}: ${dev.refsHeld} references held for ${live} entries + ${dev.parkedRefs()} parked`);
  return problems;
}

export function auditGruTeardown(dev: GruDevice): string[] {
  const problems: string[] = [];
  const live = [...dev.liveEntries()].length;
  if (live !== 0) problems.push(`${dev.name}: ${live} TLB entries left`);
  if (dev.parkedRefs() !== 0) problems.push(`${dev.name}: ${dev.parkedRefs()} parked references left`);
  if (dev.refsHeld !== 0) problems.push(`${dev.name}: ${dev.refsHeld} references leaked`);
  return problems;
}
