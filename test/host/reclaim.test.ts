import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KiB, MiB, PAGE, createHost, expectAllFree, runThread, verifyPages, writePages } from './harness.js';

describe('reclaim: 3x RAM of anonymous memory round-trips through swap', () => {
  for (const variant of [
    { name: 'kswapd + direct reclaim, memory swap', kswapd: true, file: false },
    { name: 'direct reclaim only', kswapd: false, file: false },
    { name: 'kswapd, swap file', kswapd: true, file: true },
  ]) {
    it(variant.name, () => {
      const dir = variant.file ? fs.mkdtempSync(path.join(os.tmpdir(), 'shadowvisor-swap-')) : null;
      const h = createHost({
        ramBytes: 512 * KiB,
        swapBytes: 4 * MiB,
        kswapd: variant.kswapd,
        ...(dir !== null ? { swapFile: path.join(dir, 'swap.img') } : {}),
      });
      const nrPages = (3 * 512 * KiB) / PAGE;
      const p = h.k.createProcess('hog');
      runThread(h, 'hog', function* () {
        const hva = yield* h.k.mmap(p.mm, nrPages * PAGE);
        expect(hva).toBeGreaterThan(0);
        yield* writePages(h, p.mm, hva, nrPages, 1);
        expect(yield* verifyPages(h, p.mm, hva, nrPages, 1)).toEqual([]);
        // A second generation over the same memory, read back in reverse-ish order.
        yield* writePages(h, p.mm, hva, nrPages, 2);
        expect(yield* verifyPages(h, p.mm, hva, nrPages, 2)).toEqual([]);
        yield* h.k.exitProcess(p);
      });
      const s = h.k.stats();
      expect(s.pswpout).toBeGreaterThan(0);
      expect(s.pswpin).toBeGreaterThan(0);
      expect(s.pgmajfault).toBeGreaterThan(0);
      if (variant.kswapd) expect(s.kswapdWakeups).toBeGreaterThan(0);
      else expect(s.allocstall).toBeGreaterThan(0);
      expect(s.oomKill).toBe(0);
      expect(s.warnings).toBe(0);
      expectAllFree(h);
      h.k.shutdown();
      if (dir !== null) fs.rmSync(dir, { recursive: true, force: true });
    });
  }
});
