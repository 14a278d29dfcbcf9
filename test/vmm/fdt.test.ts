// The FDT writer: byte layout checked by a small reader here, and the output
// held against dtc (device-tree-compiler) when it is installed.
import { describe, expect, it } from 'vitest';
import { buildFdt, FDT_MAGIC, FdtError, fdtCells, fdtEmpty, fdtNode, fdtString, fdtStrings, fdtU64 } from '../../src/vmm/fdt.js';
import { dtcDecompile, hasDtc } from './dtc.js';

const be32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off);

const sample = () => fdtNode('', { '#address-cells': fdtCells(2), '#size-cells': fdtCells(2), model: fdtString('m') }, [
  fdtNode('chosen', { bootargs: fdtString('console=hvc0'), 'linux,initrd-start': fdtU64(0x82000000) }),
  fdtNode('intc', { compatible: fdtStrings('a', 'bc'), 'interrupt-controller': fdtEmpty(), '#interrupt-cells': fdtCells(1), '#address-cells': fdtCells(0) }),
]);

describe('buildFdt', () => {
  it('writes a version 17 header whose blocks lie inside totalsize', () => {
    const dtb = buildFdt(sample());
    expect(be32(dtb, 0)).toBe(FDT_MAGIC);
    expect(be32(dtb, 4)).toBe(dtb.length);
    expect(dtb.length % 8).toBe(0);
    const offStruct = be32(dtb, 8);
    const offStrings = be32(dtb, 12);
    expect(be32(dtb, 16)).toBe(40); // memory reservation block right after the header
    expect(be32(dtb, 20)).toBe(17);
    expect(be32(dtb, 24)).toBe(16);
    expect(offStruct).toBe(56);
    expect(offStruct + be32(dtb, 36)).toBe(offStrings);
    expect(offStrings + be32(dtb, 32)).toBeLessThanOrEqual(dtb.length);
    // Struct block: BEGIN_NODE "" then the first property, END at the end.
    expect(be32(dtb, offStruct)).toBe(1);
    expect(be32(dtb, offStrings - 4)).toBe(9);
  });

  it('stores each property name once in the strings block', () => {
    const dtb = buildFdt(fdtNode('', { reg: fdtCells(1) }, [fdtNode('a', { reg: fdtCells(2) }), fdtNode('b', { reg: fdtCells(3) })]));
    const strings = Buffer.from(dtb.subarray(be32(dtb, 12), be32(dtb, 12) + be32(dtb, 32))).toString('latin1');
    expect(strings).toBe('reg\0');
  });

  it('rejects what a device tree cannot hold', () => {
    expect(() => buildFdt(fdtNode('x', {}))).toThrow(FdtError);
    expect(() => buildFdt(fdtNode('', {}, [fdtNode('bad name', {})]))).toThrow(/bad node name/);
    expect(() => buildFdt(fdtNode('', { s: fdtString('a\0b') }))).toThrow(/printable ASCII/);
    expect(() => buildFdt(fdtNode('', { c: fdtCells(2 ** 32) }))).toThrow(/32-bit/);
    expect(() => buildFdt({ name: '', props: [['p', fdtEmpty()], ['p', fdtEmpty()]], children: [] })).toThrow(/twice/);
  });

  it.skipIf(!hasDtc)('decompiles with dtc to the tree it was given', () => {
    const dts = dtcDecompile(buildFdt(sample()));
    expect(dts).toContain('#address-cells = <0x02>;');
    expect(dts).toContain('model = "m";');
    expect(dts).toContain('bootargs = "console=hvc0";');
    expect(dts).toContain('linux,initrd-start = <0x00 0x82000000>;');
    expect(dts).toContain('compatible = "a\\0bc";');
    expect(dts).toContain('interrupt-controller;');
    expect(dts).toMatch(/intc \{/);
  });
});
