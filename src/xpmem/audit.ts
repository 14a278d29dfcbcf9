// The exporter's checker (not driver code: it reads both processes' page tables through
// the debugger's lockless view, HostDebugView, which the driver never holds).
//
//   coherence   every present pte in an attach VMA is one the driver accounts for (its
//               pfn, with the reference held), never to a free frame; and whenever no
//               invalidation of the segment is between start and end, it maps the frame
//               A's pte maps at the same offset, writable only where A's pte is. A B pte
//               left behind by a recall that came too late, or installed by a fault that
//               raced an invalidation, fails here.
//   teardown    no gup reference held, no pte left in B, the notifier unregistered.

import type { HostDebugView } from '../host/debug-view.js';
import { PG_free } from '../host/frames.js';
import { PTE_SPECIAL, PTE_WRITE, ptePfn, ptePresent } from '../host/pte.js';
import { PAGE_SIZE, type XpmemAttachment, type XpmemSegment } from './xpmem.js';

/** host: the debug view of the kernel both processes live in (hostDebugView(k)). */
export function auditXpmem(host: HostDebugView, seg: XpmemSegment): string[] {
  const problems: string[] = [];
  const quiet = seg.activeRanges === 0;
  for (const att of seg.attachments) {
    for (let i = 0; i < seg.nrPages; i++) {
      const hvaB = att.hva + i * PAGE_SIZE;
      const pteB = host.followPte(att.mm, hvaB);
      if (!ptePresent(pteB)) continue;
      const pfn = ptePfn(pteB);
      const where = `${seg.name}: mm${att.mm.id} 0x${hvaB.toString(16)} -> pfn ${pfn}`;
      if (!(pteB & PTE_SPECIAL)) problems.push(`${where}: not a special pte`);
      if (host.frames.flags[pfn]! & PG_free) problems.push(`${where}, a free frame`);
      if (att.pfns[i] !== pfn) problems.push(`${where}, but the driver holds ${att.pfns[i] === -1 ? 'no reference' : `pfn ${att.pfns[i]}`}`);
      if (!quiet) continue;
      const hvaA = seg.start + i * PAGE_SIZE;
      const pteA = host.followPte(seg.mm, hvaA);
      if (!ptePresent(pteA) || ptePfn(pteA) !== pfn) {
        problems.push(`${where}, stale: A's pte at 0x${hvaA.toString(16)} ${ptePresent(pteA) ? `maps pfn ${ptePfn(pteA)}` : `is 0x${pteA.toString(16)} (not present)`}`);
      } else if (pteB & PTE_WRITE && !(pteA & PTE_WRITE)) {
        problems.push(`${where} writable, A's pte read-only`);
      }
    }
  }
  return problems;
}

export function auditXpmemTeardown(host: HostDebugView, seg: XpmemSegment, atts: readonly XpmemAttachment[]): string[] {
  const problems: string[] = [];
  if (seg.refsHeld !== 0) problems.push(`${seg.name}: ${seg.refsHeld} gup reference(s) leaked`);
  if (seg.sub !== null) problems.push(`${seg.name}: notifier still registered`);
  for (const att of atts) {
    for (let i = 0; i < seg.nrPages; i++) {
      if (ptePresent(host.followPte(att.mm, att.hva + i * PAGE_SIZE))) problems.push(`${seg.name}: mm${att.mm.id} still maps page ${i}`);
      if (att.pfns[i] !== -1) problems.push(`${seg.name}: mm${att.mm.id} page ${i} still accounted`);
    }
  }
  return problems;
}
