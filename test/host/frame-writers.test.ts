// Who may write a frame's state, as in mm/: the rmap functions (src/host/rmap.ts:
// folio_add_new_anon_rmap, folio_add_anon_rmap_pte, folio_try_dup_anon_rmap,
// folio_remove_rmap_pte) are the only writers of mapcount and of the rmap fields,
// and page flags change only through FrameTable's setters (SetPageX/ClearPageX).
// The frame table itself (src/host/frames.ts) initialises and frees frames. This
// test fails on the first `fr.mapcount[pfn]++` or `fr.flags[pfn] |= ...` elsewhere.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../source-files.js';

const SRC = join(__dirname, '../../src');

/** `X.field[...]` followed by an assignment or an increment, or preceded by one. */
function writes(src: string, field: string): string[] {
  const index = String.raw`\.${field}\[[^\]]*\]!?`;
  const re = new RegExp(String.raw`(?:${index}\s*(?:[-+*/|&^]?=(?!=)|\+\+|--))|(?:(?:\+\+|--)\s*[\w.]+${index})`, 'g');
  return [...src.matchAll(re)].map((m) => m[0]);
}

const files = sourceFiles(SRC).map((f) => ({ name: f.slice(SRC.length + 1), text: readFileSync(f, 'utf8') }));

describe('frame state has one writer per field, as in mm/', () => {
  it('finds the host sources', () => {
    expect(files.some((f) => f.name === 'host/rmap.ts')).toBe(true);
  });

  for (const field of ['mapcount', 'rmapMm', 'rmapHvaPage']) {
    it(`only host/rmap.ts and host/frames.ts write ${field}`, () => {
      const offenders = files
        .filter((f) => f.name !== 'host/rmap.ts' && f.name !== 'host/frames.ts')
        .flatMap((f) => writes(f.text, field).map((w) => `${f.name}: ${w}`));
      expect(offenders).toEqual([]);
    });
  }

  it('page flags change only through FrameTable.setFlag/clearFlag/testClearFlag', () => {
    // hart and KVM have flags of their own (mstatus bits, spte roles): only frame tables count.
    const offenders = files
      .filter((f) => f.name !== 'host/frames.ts' && /\b(?:fr|frames|this\.fr)\.flags\[/.test(f.text))
      .flatMap((f) => writes(f.text, 'flags').filter((w) => w.startsWith('.flags')).map((w) => `${f.name}: ${w}`));
    expect(offenders).toEqual([]);
  });

  it('the check itself sees a write (so the tests above can fail)', () => {
    expect(writes('fr.mapcount[pfn]!++; --fr.mapcount[p]; fr.flags[pfn]! |= PG_dirty; x = fr.rmapMm[pfn];', 'mapcount')).toHaveLength(2);
    expect(writes('fr.flags[pfn]! |= PG_dirty; if (fr.flags[p] === 0) {}', 'flags')).toEqual(['.flags[pfn]! |=']);
  });
});
