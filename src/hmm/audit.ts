// The dmirror's checker (not driver code: it reads the host's page tables and frame
// flags through the debugger's lockless view, HostDebugView, which the device itself
// never holds).
//
//   coherence   whenever no invalidation is in progress on the mm, every present entry
//               maps the frame the host pte of its hva maps, and is writable only where
//               that pte is; an entry never names a free frame, at any time.
//   teardown    no gup reference held, no entry left, the notifier removed.

import type { HostDebugView } from '../host/debug-view.js';
import { PG_free } from '../host/frames.js';
import { PTE_WRITE, ptePfn, ptePresent } from '../host/pte.js';
import { PAGE_SIZE, type Dmirror } from './dmirror.js';

/** host: the debug view of the kernel the mirrored mm lives in (hostDebugView(k)). */
export function auditDmirror(host: HostDebugView, dm: Dmirror): string[] {
  const problems: string[] = [];
  const subs = dm.mm.subscriptions;
  const quiet = subs === null || subs.activeInvalidateRanges === 0;
  for (let i = 0; i < dm.nrPages; i++) {
    const hva = dm.start + i * PAGE_SIZE;
    const pfn = dm.entryPfn(hva);
    if (pfn < 0) continue;
    if (host.frames.flags[pfn]! & PG_free) problems.push(`${dm.name}: hva 0x${hva.toString(16)} -> pfn ${pfn}, a free frame`);
    if (!quiet) continue;
    const pte = host.followPte(dm.mm, hva);
    if (!ptePresent(pte) || ptePfn(pte) !== pfn) {
      problems.push(`${dm.name}: hva 0x${hva.toString(16)} -> pfn ${pfn}, host pte ${ptePresent(pte) ? `pfn ${ptePfn(pte)}` : `0x${pte.toString(16)} (not present)`}`);
    } else if (dm.entryWritable(hva) && !(pte & PTE_WRITE)) {
      problems.push(`${dm.name}: hva 0x${hva.toString(16)} writable, host pte read-only`);
    }
  }
  return problems;
}

export function auditDmirrorTeardown(dm: Dmirror): string[] {
  const problems: string[] = [];
  if (dm.refsHeld !== 0) problems.push(`${dm.name}: ${dm.refsHeld} gup reference(s) leaked`);
  if (dm.entries() !== 0) problems.push(`${dm.name}: ${dm.entries()} entries left after destroy`);
  if (dm.sub !== null) problems.push(`${dm.name}: interval notifier still inserted`);
  return problems;
}
