// A flattened device tree writer (Devicetree Specification v0.4, chapter 5:
// the DTB format, version 17, last compatible version 16). The tree is built
// as plain data (FdtNode), then serialised in one pass: header, an empty
// memory reservation block, the structure block and the strings block.
// Counterpart: scripts/dtc/libfdt/fdt_sw.c (what QEMU's device_tree.c calls)
//
// Layout written:
//   0x00  header (40 bytes, big-endian u32s)
//   0x28  memory reservation block: one terminating {0, 0} pair (16 bytes)
//   ....  structure block: BEGIN_NODE name\0 pad4, PROP len nameoff value pad4, END_NODE, END
//   ....  strings block: property names, NUL-terminated, each stored once

export const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;
const FDT_VERSION = 17;
const FDT_LAST_COMP_VERSION = 16;
const HEADER_BYTES = 40;
const RSVMAP_BYTES = 16;

/** A property value: a string, a string list, u32 cells, raw bytes, or empty (a boolean property). */
export type FdtValue =
  | { readonly kind: 'empty' }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'strings'; readonly value: readonly string[] }
  | { readonly kind: 'cells'; readonly value: readonly number[] }
  | { readonly kind: 'bytes'; readonly value: Uint8Array };

export interface FdtNode {
  /** "" for the root, else "name" or "name@unit-address". */
  readonly name: string;
  readonly props: ReadonlyArray<readonly [string, FdtValue]>;
  readonly children: readonly FdtNode[];
}

export class FdtError extends Error {
  override readonly name = 'FdtError';
}

export const fdtEmpty = (): FdtValue => ({ kind: 'empty' });
export const fdtString = (value: string): FdtValue => ({ kind: 'string', value });
export const fdtStrings = (...value: string[]): FdtValue => ({ kind: 'strings', value });
export const fdtCells = (...value: number[]): FdtValue => ({ kind: 'cells', value });
/** A 64-bit number as two cells (high, low), as #address-cells = <2> wants. */
export const u64Cells = (v: number): [number, number] => [Math.floor(v / 2 ** 32), v % 2 ** 32];
export const fdtU64 = (v: number): FdtValue => fdtCells(...u64Cells(v));

export function fdtNode(name: string, props: Record<string, FdtValue>, children: FdtNode[] = []): FdtNode {
  return { name, props: Object.entries(props), children };
}

function valueBytes(v: FdtValue): Uint8Array {
  switch (v.kind) {
    case 'empty':
      return new Uint8Array(0);
    case 'string':
      return asciiz(v.value);
    case 'strings': {
      const parts = v.value.map(asciiz);
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    }
    case 'cells': {
      const out = new Uint8Array(4 * v.value.length);
      const dv = new DataView(out.buffer);
      v.value.forEach((c, i) => {
        if (!Number.isInteger(c) || c < -(2 ** 31) || c >= 2 ** 32) throw new FdtError(`cell ${c} is not a 32-bit value`);
        dv.setUint32(4 * i, c >>> 0);
      });
      return out;
    }
    case 'bytes':
      return v.value;
  }
}

function asciiz(s: string): Uint8Array {
  const out = new Uint8Array(s.length + 1);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7e) throw new FdtError(`${JSON.stringify(s)}: only printable ASCII goes in a device tree string`);
    out[i] = c;
  }
  return out;
}

/** Serialises the tree rooted at `root` (whose name must be "") into a DTB. */
export function buildFdt(root: FdtNode, opts: { bootCpuidPhys?: number } = {}): Uint8Array {
  if (root.name !== '') throw new FdtError('the root node has an empty name');
  const bytes: number[] = [];
  // The structure block is built as bytes, always a multiple of 4 long.
  const pushU32 = (v: number) => bytes.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const pushPadded = (b: Uint8Array) => {
    for (const x of b) bytes.push(x);
    while (bytes.length % 4 !== 0) bytes.push(0);
  };
  const strings: number[] = [];
  const stringOffsets = new Map<string, number>();
  const nameOffset = (name: string) => {
    let off = stringOffsets.get(name);
    if (off === undefined) {
      off = strings.length;
      for (const b of asciiz(name)) strings.push(b);
      stringOffsets.set(name, off);
    }
    return off;
  };
  const walk = (n: FdtNode, isRoot: boolean) => {
    if (!isRoot && !/^[A-Za-z0-9,._+-]+(@[A-Za-z0-9,._+-]+)?$/.test(n.name)) throw new FdtError(`bad node name ${JSON.stringify(n.name)}`);
    pushU32(FDT_BEGIN_NODE);
    pushPadded(asciiz(n.name));
    const seen = new Set<string>();
    for (const [name, value] of n.props) {
      if (seen.has(name)) throw new FdtError(`node ${JSON.stringify(n.name)}: property ${name} twice`);
      seen.add(name);
      const v = valueBytes(value);
      pushU32(FDT_PROP);
      pushU32(v.length);
      pushU32(nameOffset(name));
      pushPadded(v);
    }
    for (const c of n.children) walk(c, false);
    pushU32(FDT_END_NODE);
  };
  walk(root, true);
  pushU32(FDT_END);

  const offRsvmap = HEADER_BYTES;
  const offStruct = offRsvmap + RSVMAP_BYTES;
  const offStrings = offStruct + bytes.length;
  const total = offStrings + strings.length;
  const out = new Uint8Array((total + 7) & ~7);
  const dv = new DataView(out.buffer);
  const header = [FDT_MAGIC, out.length, offStruct, offStrings, offRsvmap, FDT_VERSION, FDT_LAST_COMP_VERSION,
    opts.bootCpuidPhys ?? 0, strings.length, bytes.length];
  header.forEach((v, i) => dv.setUint32(4 * i, v >>> 0));
  // The reservation block stays zero: its terminating entry.
  out.set(bytes, offStruct);
  out.set(strings, offStrings);
  return out;
}
