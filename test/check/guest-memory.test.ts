import { describe, expect, it } from 'vitest';
import { guestMemoryHash } from '../../src/check/guest-memory.js';
import { hostDebugView } from '../../src/host/debug-view.js';
import { ptePfn, pteIsSwap } from '../../src/host/pte.js';
import { createHost, pattern, PAGE, runAll, writePages } from '../host/harness.js';

const NR = 96;

/** A process with NR pages of which the first NR - 8 hold a pattern (the rest never touched), optionally pushed to swap. */
function build(opts: { swap: boolean; gen?: number }) {
  const h = createHost({ ramBytes: 256 * 1024 });
  const p = h.k.createProcess('vmm');
  let hva = -1;
  h.sched.spawn('writer', function* () {
    hva = yield* h.k.mmap(p.mm, NR * PAGE);
    yield* writePages(h, p.mm, hva, NR - 8, opts.gen ?? 1);
    if (opts.swap) {
      // Another process takes the RAM: most of ours goes to swap.
      const q = h.k.createProcess('pressure');
      const qh = yield* h.k.mmap(q.mm, 60 * PAGE);
      for (let i = 0; i < 60; i++) yield* h.k.accessWrite(q.mm, qh + i * PAGE, pattern(i, 9));
    }
  });
  runAll(h);
  return { h, p, hva };
}

describe('guestMemoryHash', () => {
  it('hashes what the guest would read: the same whether pages are resident, in swap, or never touched', () => {
    const resident = build({ swap: false });
    const swapped = build({ swap: true });
    let nSwap = 0;
    for (let i = 0; i < NR; i++) {
      const pte = swapped.p.mm.pt.get((swapped.hva >>> 12) + i);
      if (pteIsSwap(pte)) nSwap++;
    }
    expect(nSwap).toBeGreaterThan(20);
    const a = guestMemoryHash(hostDebugView(resident.h.k), resident.p.mm, resident.hva, NR * PAGE);
    const b = guestMemoryHash(hostDebugView(swapped.h.k), swapped.p.mm, swapped.hva, NR * PAGE);
    expect(a).toMatch(/^[0-9a-f]{8}$/);
    expect(b).toBe(a);
    // Hashing touched nothing: no swap-in happened.
    const before = swapped.h.k.stats().pswpin;
    guestMemoryHash(hostDebugView(swapped.h.k), swapped.p.mm, swapped.hva, NR * PAGE);
    expect(swapped.h.k.stats().pswpin).toBe(before);
  });

  it('changes with one word of one page', () => {
    const one = build({ swap: false });
    const other = build({ swap: false, gen: 2 });
    expect(guestMemoryHash(hostDebugView(one.h.k), one.p.mm, one.hva, NR * PAGE)).not.toBe(guestMemoryHash(hostDebugView(other.h.k), other.p.mm, other.hva, NR * PAGE));
    const h0 = guestMemoryHash(hostDebugView(one.h.k), one.p.mm, one.hva, NR * PAGE);
    const pte = one.p.mm.pt.get((one.hva >>> 12) + 3);
    one.h.k.frames.frame(ptePfn(pte))[100]! ^= 1;
    expect(guestMemoryHash(hostDebugView(one.h.k), one.p.mm, one.hva, NR * PAGE)).not.toBe(h0);
  });
});
