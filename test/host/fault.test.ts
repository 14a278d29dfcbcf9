// Fault paths: shared swap-in through the swap cache, trace events, dumps.

import { describe, expect, it } from 'vitest';
import { HOST_EVENT, pteIsSwap } from '../../src/host/index.js';
import type { HostEvent } from '../../src/host/index.js';
import { KiB, PAGE, createHost, expectAllFree, pattern, runAll, runThread, writePages } from './harness.js';

describe('faults', () => {
  it('concurrent faults on one swap entry share one read through the swap cache', () => {
    const h = createHost({ kswapd: false, ramBytes: 256 * KiB, swapReadLatency: 100 });
    const p = h.k.createProcess('guest');
    let hva = 0;
    runThread(h, 'setup', function* () {
      hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      yield* writePages(h, p.mm, hva, 8, 6);
      for (let i = 0; i < 20 && !pteIsSwap(p.mm.pt.get((hva >>> 12) + 2)); i++) yield* h.k.reclaim(64);
      expect(pteIsSwap(p.mm.pt.get((hva >>> 12) + 2))).toBe(true);
    });
    const before = h.k.stats();
    const seen: Uint8Array[] = [];
    for (let t = 0; t < 3; t++) {
      h.sched.spawn(`reader${t}`, function* () {
        const buf = new Uint8Array(PAGE);
        expect(yield* h.k.accessRead(p.mm, hva + 2 * PAGE, buf)).toBe(0);
        seen.push(buf);
      });
    }
    runAll(h);
    const after = h.k.stats();
    expect(after.pswpin - before.pswpin).toBe(1);
    expect(after.pgmajfault - before.pgmajfault).toBe(1);
    expect(after.swapCacheHit - before.swapCacheHit).toBe(2);
    for (const b of seen) expect(b).toEqual(pattern(2, 6));
    runThread(h, 'exit', () => h.k.exitProcess(p));
    expectAllFree(h);
  });

  it('emits trace events only to listeners, and dumps describe the machine', () => {
    const h = createHost({ ramBytes: 128 * KiB });
    const types = new Set<string>();
    const listener = (ev: HostEvent) => types.add(ev.type);
    h.k.events.on(HOST_EVENT, listener);
    const p = h.k.createProcess('guest');
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 64 * PAGE);
      yield* writePages(h, p.mm, hva, 64, 1);
      yield* h.k.mmuNotifierRegister(p.mm, 'kvm', {});
      const text = h.k.dumpText();
      expect(text).toMatch(/host RAM 32 frames/);
      expect(text).toMatch(/pid 1 guest: mm1 modern .* notifiers \[kvm\]/);
      const d = h.k.dump() as { processes: Array<{ mm: { vmas: string[] } }> };
      expect(d.processes[0]!.mm.vmas).toHaveLength(1);
      yield* h.k.exitProcess(p);
    });
    h.k.events.off(HOST_EVENT, listener);
    for (const t of ['mmap', 'fault', 'map-anon', 'page-alloc', 'unmap', 'swap-write', 'reclaimed', 'kswapd-wake', 'zap', 'process-exit', 'mn-register']) {
      expect(types, t).toContain(t);
    }
    expectAllFree(h);
  });

  it('idle page tracking: clear_young and test_young reach the secondary MMU', () => {
    const h = createHost({ kswapd: false });
    const p = h.k.createProcess('guest');
    const secondaryYoung = new Set<number>();
    const calls: string[] = [];
    runThread(h, 'main', function* () {
      const hva = yield* h.k.mmap(p.mm, 8 * PAGE);
      yield* writePages(h, p.mm, hva, 8, 1);
      yield* h.k.mmuNotifierRegister(p.mm, 'dev', {
        clearYoung(_mm, start) {
          calls.push('clear_young');
          return secondaryYoung.delete(start);
        },
        testYoung(_mm, at) {
          calls.push('test_young');
          return secondaryYoung.has(at);
        },
      });
      expect(yield* h.k.clearYoungRange(p.mm, hva, hva + 8 * PAGE)).toBe(8);
      expect(yield* h.k.clearYoungRange(p.mm, hva, hva + 8 * PAGE)).toBe(0);
      secondaryYoung.add(hva + 3 * PAGE);
      expect(yield* h.k.testYoung(p.mm, hva + 3 * PAGE)).toBe(true);
      expect(yield* h.k.testYoung(p.mm, hva + 4 * PAGE)).toBe(false);
      expect(yield* h.k.clearYoungRange(p.mm, hva, hva + 8 * PAGE)).toBe(1);
      const buf = new Uint8Array(PAGE);
      yield* h.k.accessRead(p.mm, hva + 5 * PAGE, buf);
      expect(yield* h.k.testYoung(p.mm, hva + 5 * PAGE)).toBe(true);
      yield* h.k.exitProcess(p);
    });
    expect(calls).toContain('clear_young');
    expect(calls).toContain('test_young');
    expectAllFree(h);
  });
});
