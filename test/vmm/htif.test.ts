import { describe, expect, it } from 'vitest';
import { HTIF_WRITE_MAX, Htif, HtifError, type HtifExit } from '../../src/vmm/devices/htif.js';
import { ElfError } from '../../src/vmm/elf.js';

const TOHOST = 0x80001000;
const FROMHOST = 0x80001040;

function setup() {
  const words = new Map<number, number>();
  const out: Array<[number, number]> = [];
  const exits: HtifExit[] = [];
  let pendings = 0;
  const htif = new Htif({
    tohost: TOHOST,
    fromhost: FROMHOST,
    output: (b, fd) => out.push([b, fd]),
    onExit: (e) => exits.push(e),
    onPending: () => pendings++,
  });
  const mem = {
    read32: (pa: number) => words.get(pa) ?? 0,
    write32: (pa: number, v: number) => void words.set(pa, v | 0),
  };
  htif.attach(mem);
  // A guest `sw`: the store lands in RAM, then the watch is told.
  const sw = (pa: number, v: number) => {
    mem.write32(pa, v);
    htif.onStore(pa, 4);
  };
  return { htif, words, out, exits, sw, pendings: () => pendings };
}

describe('Htif', () => {
  it('passes on tohost = 1 written low then high (riscv-tests order)', () => {
    const t = setup();
    t.sw(TOHOST, 1);
    expect(t.exits).toEqual([]); // pending: the high half may still come
    expect(t.htif.pending).toBe(true);
    t.sw(TOHOST + 4, 0);
    expect(t.exits).toEqual([{ code: 0, payloadLo: 1, payloadHi: 0 }]);
  });

  it('reports the failing test number', () => {
    const t = setup();
    t.sw(TOHOST, (42 << 1) | 1);
    t.sw(TOHOST + 4, 0);
    expect(t.exits[0]!.code).toBe(42);
  });

  it('takes a low-word-only exit when the runner commits it', () => {
    const t = setup();
    t.sw(TOHOST, 1);
    expect(t.pendings()).toBe(1);
    t.htif.commitPending();
    expect(t.exits[0]!.code).toBe(0);
  });

  it('prints a console byte, clears tohost and answers in fromhost', () => {
    const t = setup();
    t.sw(TOHOST, 0x41); // odd byte: looks like an exit until the high half arrives
    t.sw(TOHOST + 4, 0x01010000);
    expect(t.out).toEqual([[0x41, 1]]);
    expect(t.exits).toEqual([]);
    expect(t.htif.pending).toBe(false);
    expect(t.words.get(TOHOST)).toBe(0);
    expect(t.words.get(TOHOST + 4)).toBe(0);
    expect(t.words.get(FROMHOST)).toBe(0x141);
    expect(t.words.get(FROMHOST + 4)).toBe(0x01010000);
    t.htif.commitPending();
    expect(t.exits).toEqual([]);
  });

  it('ignores the guest clearing tohost', () => {
    const t = setup();
    t.sw(TOHOST, 0);
    t.sw(TOHOST + 4, 0);
    expect(t.htif.commands).toBe(0);
  });

  it('proxies write and exit syscalls through magic_mem', () => {
    const t = setup();
    const magic = 0x80002000;
    const buf = 0x80003001; // unaligned on purpose
    const text = 'hi!';
    for (let i = 0; i < text.length; i++) {
      const a = buf + i;
      const w = t.words.get((a & ~3) >>> 0) ?? 0;
      t.words.set((a & ~3) >>> 0, w | (text.charCodeAt(i) << ((a & 3) * 8)));
    }
    t.words.set(magic, 64);
    t.words.set(magic + 8, 1);
    t.words.set(magic + 16, buf);
    t.words.set(magic + 24, text.length);
    t.sw(TOHOST, magic);
    t.sw(TOHOST + 4, 0);
    expect(String.fromCharCode(...t.out.map(([b]) => b))).toBe('hi!');
    expect(t.words.get(magic)).toBe(3);
    expect(t.words.get(FROMHOST)).toBe(1);
    t.words.set(magic, 93);
    t.words.set(magic + 8, 5);
    t.sw(TOHOST, magic);
    t.sw(TOHOST + 4, 0);
    expect(t.exits[0]!.code).toBe(5);
  });

  it('reports and drops a command it does not know', () => {
    const seen: number[][] = [];
    const words = new Map<number, number>();
    const htif = new Htif({ tohost: TOHOST, output: () => {}, onUnknown: (d, c, lo, hi) => seen.push([d, c, lo, hi]) });
    htif.attach({ read32: (pa) => words.get(pa) ?? 0, write32: (pa, v) => void words.set(pa, v) });
    words.set(TOHOST, 0x1234);
    words.set(TOHOST + 4, 0x07ff0005);
    htif.onStore(TOHOST + 4, 4);
    expect(seen).toEqual([[7, 0xff, 0x1234, 5]]);
    expect(words.get(TOHOST)).toBe(0);
    expect(words.get(TOHOST + 4)).toBe(0);
  });

  it('rejects a misaligned tohost with an error the runner reports as a bad image', () => {
    for (const tohost of [0x80001004, 0x80001001, 0xfffffffc]) {
      let err: unknown;
      try {
        new Htif({ tohost, output: () => {} });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(HtifError);
      expect(err).toBeInstanceOf(ElfError);
      expect((err as Error).message).toBe(`tohost at 0x${(tohost >>> 0).toString(16)} is not 8-byte aligned: HTIF needs a 64-bit word there (align .tohost to 8)`);
    }
  });

  it('caps one SYS_write at HTIF_WRITE_MAX bytes and says so in the return value (was: 4G reads for len 0xffffffff)', () => {
    const t = setup();
    const magic = 0x80002000;
    t.words.set(magic, 64);
    t.words.set(magic + 8, 1);
    t.words.set(magic + 16, 0x80003000);
    t.words.set(magic + 24, 0xffffffff);
    const t0 = performance.now();
    t.sw(TOHOST, magic);
    t.sw(TOHOST + 4, 0);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(t.out.length).toBe(HTIF_WRITE_MAX);
    expect(t.words.get(magic)).toBe(HTIF_WRITE_MAX);
    expect(t.words.get(magic + 4)).toBe(0);
  }, 120_000);
});
