// Page contents that say which page they belong to and which generation of it
// they are, so a race test that reads a page back can tell stale data (an
// older generation), another page's data and garbage apart. Shared by the
// secondary-MMU race scenarios (src/hmm, src/xpmem) and their tests.

const PAGE_SIZE = 4096;

/** Page contents that name their page and generation; gen 0 is the zero page. */
export function stamp(page: number, gen: number, dst: Uint8Array = new Uint8Array(PAGE_SIZE)): Uint8Array {
  const dv = new DataView(dst.buffer, dst.byteOffset, PAGE_SIZE);
  dv.setUint32(0, page, true);
  dv.setUint32(4, gen, true);
  for (let i = 8; i < PAGE_SIZE; i += 4) dv.setUint32(i, (Math.imul(page ^ gen, 0x9e3779b1) + i) >>> 0, true);
  return dst;
}

/** The generation the bytes hold for `page` (0: zeroes), or -1 for anything else. */
export function unstamp(page: number, b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, PAGE_SIZE);
  const p = dv.getUint32(0, true);
  const gen = dv.getUint32(4, true);
  if (p === 0 && gen === 0) {
    for (let i = 0; i < PAGE_SIZE; i += 4) if (dv.getUint32(i, true) !== 0) return -1;
    return 0;
  }
  if (p !== page) return -1;
  for (let i = 8; i < PAGE_SIZE; i += 4) if (dv.getUint32(i, true) !== ((Math.imul(page ^ gen, 0x9e3779b1) + i) >>> 0)) return -1;
  return gen;
}
