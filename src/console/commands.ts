// The debug console's command table, in the style of jsbeeb / 6502.ts: a command is
// a name, its argument syntax, one line of help and a handler that returns a typed
// result (`text` for a person, `data` for --json). Names match by unique prefix
// (exact names and aliases first), as gdb and the QEMU monitor do.
//
// Handlers read state through the query functions of kvm/inspect, host/inspect and
// hart/inspect, and act only through the calls the simulation itself makes. A bad
// argument throws ConsoleError before anything changes: one line, and the session
// goes on.

import { auditCoherency } from '../check/index.js';
import { PTE_A, PTE_D, PTE_G, PTE_R, PTE_U, PTE_V, PTE_W, PTE_X } from '../hart/sv32.js';
import { tlbEntries, tlbEntriesForHostPage, type TlbEntry } from '../hart/inspect.js';
import { writeFileSync } from 'node:fs';
import { parseSize } from '../args.js';
import { auditKernel } from '../host/audit.js';
import { LRU_ACTIVE_ANON, LRU_INACTIVE_ANON } from '../host/lru.js';
import { PG_dirty, PG_free, PG_referenced, PG_swapcache } from '../host/frames.js';
import { sleepTicks } from '../sched/index.js';
import { memInfo, userPageWhere, type UserPageWhere } from '../host/inspect.js';
import type { UserPageReclaim } from '../host/index.js';
import { PAGE_SIZE, pteDirty, pteWrite, pteYoung } from '../host/pte.js';
import { gpaToHva, leafSpteGvas, peekGuestPage, rmapSptes, shadowPageInfos, spteWalk, walkGuestUnlocked, type GuestWalk } from '../kvm/inspect.js';
import type { Vm } from '../kvm/vm.js';
import { sptepIndex, sptepPage } from '../kvm/mmu/shadow-pages.js';
import { spteToString, sptePfn, isLeafSpte } from '../kvm/mmu/spte.js';
import { rmapHistogramLabels } from '../kvm/mmu/rmap.js';
import { disassemble } from '../vmm/disasm.js';
import { BALLOON_COMMAND, DEVICE_INFO } from './device-commands.js';
import { ConsoleError, type RunEnd, type Session } from './session.js';

export interface CommandResult {
  readonly text: string;
  readonly data: Record<string, unknown>;
}

export interface ConsoleContext {
  readonly session: Session;
  /** Counters as the last `stats` saw them, for its delta column. */
  lastStats: Record<string, number> | null;
  /** Where the last x/xp ended and its format: a bare `x` (or `x/FMT`) goes on from there, as in gdb. */
  lastDump?: { x?: { next: number; suffix: string }; xp?: { next: number; suffix: string } };
  /** `quit` sets it. */
  quit: boolean;
  /** Where `trace on` sends its lines. */
  trace(line: string): void;
}

export interface Command {
  readonly name: string;
  readonly aliases?: readonly string[];
  readonly args: string;
  readonly help: string;
  run(ctx: ConsoleContext, args: readonly string[], suffix: string): CommandResult | Promise<CommandResult>;
}

// ---- numbers and names ----------------------------------------------------------------

export const REG_NAMES = [
  'zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6',
];

const CSRS: Record<string, number> = {
  sstatus: 0x100, sie: 0x104, stvec: 0x105, scounteren: 0x106, sscratch: 0x140, sepc: 0x141, scause: 0x142,
  stval: 0x143, sip: 0x144, satp: 0x180, mstatus: 0x300, medeleg: 0x302, mideleg: 0x303, mie: 0x304,
  mtvec: 0x305, mepc: 0x341, mcause: 0x342, mtval: 0x343, mip: 0x344, time: 0xc01, instret: 0xc02, cycle: 0xc00,
};

export const hex = (v: number): string => '0x' + (v >>> 0).toString(16);
export const hex8 = (v: number): string => '0x' + (v >>> 0).toString(16).padStart(8, '0');
/** Up to 34-bit physical addresses and other non-negative doubles. */
const hexn = (v: number): string => '0x' + v.toString(16);

/** A register's value by name ($pc, $a0, $x10, $sp, $satp ...), as an unsigned number. */
function regValue(ctx: ConsoleContext, name: string): number {
  const { hart } = ctx.session.live();
  const n = name.toLowerCase();
  if (n === 'pc') return hart.pc >>> 0;
  if (n === 'fp') return hart.regs[8]! >>> 0;
  const x = /^x(\d+)$/.exec(n);
  if (x !== null && Number(x[1]) < 32) return hart.regs[Number(x[1])]! >>> 0;
  const i = REG_NAMES.indexOf(n);
  if (i >= 0) return hart.regs[i]! >>> 0;
  const csr = CSRS[n];
  if (csr !== undefined) return hart.readCsr(csr) >>> 0;
  if (n === 'priv') return hart.priv;
  throw new ConsoleError(`unknown register '$${name}' (try $pc, $sp, $a0, $x5, $satp, $sepc)`);
}

/** 0x hex, decimal, or $reg. `max` bounds it (exclusive). */
export function parseNumber(ctx: ConsoleContext, text: string | undefined, what: string, max = 2 ** 32): number {
  if (text === undefined) throw new ConsoleError(`missing ${what}`);
  let v: number;
  if (text.startsWith('$')) v = regValue(ctx, text.slice(1));
  else if (/^0x[0-9a-f]+$/i.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^\d+$/.test(text)) v = Number(text);
  else throw new ConsoleError(`bad number '${text}' for ${what} (write 0x80000000, 4096 or $pc)`);
  if (!Number.isSafeInteger(v) || v >= max) throw new ConsoleError(`${what} ${text} is too large (at most ${hexn(max - 1)})`);
  return v;
}

function parseCount(text: string | undefined, what: string, dflt: number): number {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text) || Number(text) === 0 || !Number.isSafeInteger(Number(text))) {
    throw new ConsoleError(`bad ${what} '${text}' (a positive integer)`);
  }
  return Number(text);
}

function noMoreArgs(args: readonly string[], from: number, usage: string): void {
  if (args.length > from) throw new ConsoleError(`unexpected argument '${args[from]}' (usage: ${usage})`);
}

// ---- shared formatting -------------------------------------------------------------------

/** Sv32 pte flag letters, QEMU's order: "vrwxugad" with '-' for a clear bit. */
export function gpteFlags(gpte: number): string {
  const bits: [number, string][] = [[PTE_V, 'v'], [PTE_R, 'r'], [PTE_W, 'w'], [PTE_X, 'x'], [PTE_U, 'u'], [PTE_G, 'g'], [PTE_A, 'a'], [PTE_D, 'd']];
  return bits.map(([b, c]) => (gpte & b ? c : '-')).join('');
}

/** The memslot, gfn and hva behind a gpa the user typed; one error line when no slot has it. */
function memslotOfGpa(vm: Vm, gpa: number): NonNullable<ReturnType<typeof gpaToHva>> {
  const m = gpaToHva(vm, gpa);
  if (m === null) throw new ConsoleError(`gpa ${hexn(gpa)} is outside every memslot`);
  return m;
}

function hostPteText(w: UserPageWhere): string {
  switch (w.kind) {
    case 'present':
      return `pte ${hex(w.pte)}: present pfn ${hex(w.pfn)} ${pteWrite(w.pte) ? 'write' : 'read-only'} ${pteYoung(w.pte) ? 'young' : 'old'} ${pteDirty(w.pte) ? 'dirty' : 'clean'} -> hpa ${hexn(w.pfn * PAGE_SIZE)}`;
    case 'swapcache':
      return `pte ${hex(w.pte)}: swap entry, slot ${w.slot} (still in the swap cache as pfn ${hex(w.pfn)})`;
    case 'swap':
      return `pte ${hex(w.pte)}: swap entry, slot ${w.slot}`;
    case 'none':
      return 'pte none (never touched, or zapped: a fault gives a zero page)';
  }
}

function hostPteData(w: UserPageWhere): Record<string, unknown> {
  switch (w.kind) {
    case 'present':
      return { kind: w.kind, pte: w.pte, pfn: w.pfn, write: pteWrite(w.pte), young: pteYoung(w.pte), dirty: pteDirty(w.pte), hpa: w.pfn * PAGE_SIZE };
    case 'swapcache':
      return { kind: w.kind, pte: w.pte, slot: w.slot, pfn: w.pfn };
    case 'swap':
      return { kind: w.kind, pte: w.pte, slot: w.slot };
    case 'none':
      return { kind: w.kind };
  }
}

function walkText(gva: number, w: GuestWalk): string[] {
  const lines = w.levels.map((l) =>
    l.gpte === null ? `  L${l.level} gpte @${hexn(l.gptePa)}: outside every memslot`
      : `  L${l.level} gpte @${hexn(l.gptePa)} = ${hex8(l.gpte)} ${gpteFlags(l.gpte)} ppn ${hex(l.gpte >>> 10)}` +
        ((l.gpte & (PTE_R | PTE_X)) === 0 && (l.gpte & PTE_V) ? ' (table)' : (l.gpte & PTE_V) ? (l.level === 1 ? ' (megapage)' : ' (leaf)') : ''),
  );
  lines.push(w.gpa !== null ? `  gva ${hex8(gva)} -> gpa ${hexn(w.gpa)}` : `  gva ${hex8(gva)}: no translation (${w.why}): the guest would take a page fault`);
  return lines;
}

function walkData(w: GuestWalk): Record<string, unknown> {
  return { levels: w.levels.map((l) => ({ level: l.level, gptePa: l.gptePa, gpte: l.gpte === null ? null : l.gpte >>> 0 })), gpa: w.gpa, megapage: w.megapage, ...(w.why ? { why: w.why } : {}) };
}

function describeSptep(ctx: ConsoleContext, sptep: number): { text: string; data: Record<string, unknown> } {
  const { vm } = ctx.session.live();
  const spte = vm.sps.sptes[sptep]!;
  const gvas = leafSpteGvas(vm, sptep);
  const where = gvas.length === 0 ? 'unlinked' : gvas.map((g) => `gva ${hex8(g.gva)} via root sp ${g.root}`).join(', ');
  return {
    text: `sptep ${sptep} (sp ${sptepPage(sptep)} [${hex(sptepIndex(sptep))}]) = ${spteToString(spte)}; ${where}`,
    data: { sptep, sp: sptepPage(sptep), index: sptepIndex(sptep), spte: spte >>> 0, text: spteToString(spte), gvas },
  };
}

function tlbText(e: TlbEntry): string {
  return `${e.kind}[${hex(e.index)}] gva ${hex8(e.gvaPage)} -> host ${hex(e.hostPage)}`;
}

/** The pc line a stop prints: "0x80000010: addi sp, sp, -16". */
export function pcLine(ctx: ConsoleContext): string {
  const { hart } = ctx.session.live();
  const insn = ctx.session.insnAtPc();
  return `${hex8(hart.pc)}: ${insn === null ? '(cannot read the instruction)' : disassemble(insn, hart.pc)}`;
}

function runEndResult(ctx: ConsoleContext, end: RunEnd): CommandResult {
  const s = ctx.session;
  if (end.kind === 'ended') {
    const r = end.result;
    return {
      text: `the machine ended: ${r.reason}, exit status ${r.exitCode}${r.message !== undefined ? `\n${r.message}` : ''}`,
      data: { state: 'ended', reason: r.reason, exitCode: r.exitCode, ...(r.message !== undefined ? { message: r.message } : {}), instructions: r.stats.instructions },
    };
  }
  const { hart } = s.live();
  const insns = s.vmm.vcpu?.instructions ?? 0;
  const base = { pc: hart.pc >>> 0, instructions: insns, ran: s.gate.ran, ticks: s.vmm.sched.now };
  // KVM's view: running guest code, faulting (the fault path, maybe asleep in reclaim), halted in wfi.
  const vcpuState = s.vmm.vcpu?.state ?? 'none';
  if (end.kind === 'paused') {
    return {
      text: `${end.why}\nstopped between scheduler steps, vCPU ${vcpuState} (a step first runs on to the next instruction boundary); pc ${pcLine(ctx)}`,
      data: { state: 'paused', why: end.why, vcpu: vcpuState, ...base },
    };
  }
  const stop = s.gate.lastStop;
  if (stop.kind === 'breakpoint') {
    const n = [...s.gate.breakpoints].indexOf(stop.pc) + 1;
    return { text: `Breakpoint ${n}, ${pcLine(ctx)}`, data: { state: 'stopped', why: 'breakpoint', breakpoint: n, ...base } };
  }
  if (stop.kind === 'interrupt') return { text: `interrupted, ${pcLine(ctx)}`, data: { state: 'stopped', why: 'interrupt', ...base } };
  return { text: pcLine(ctx), data: { state: 'stopped', why: stop.kind, ...base } };
}

// ---- info mem and memmap -----------------------------------------------------------------

function guestMappings(ctx: ConsoleContext): CommandResult {
  const { vm, hart } = ctx.session.live();
  if (hart.priv === 3 || hart.satp >= 0) return { text: `paging off (satp ${hex8(hart.satp)}): gva = gpa`, data: { paging: false, ranges: [] } };
  const table = new Uint8Array(PAGE_SIZE);
  const words = new Int32Array(table.buffer);
  const root = new Int32Array(PAGE_SIZE / 4);
  if (peekGuestPage(vm, ctx.session.host, (hart.satp & 0x3fffff) * PAGE_SIZE, table) === null) throw new ConsoleError('the root page table is outside every memslot');
  root.set(words);
  const ranges: { gva: number; gpa: number; size: number; attr: string }[] = [];
  const add = (gva: number, gpa: number, size: number, pte: number) => {
    const attr = gpteFlags(pte).slice(1);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.gva + last.size === gva && last.gpa + last.size === gpa && last.attr === attr) last.size += size;
    else ranges.push({ gva, gpa, size, attr });
  };
  for (let i = 0; i < 1024; i++) {
    const l1 = root[i]!;
    if ((l1 & PTE_V) === 0 || (l1 & (PTE_R | PTE_W)) === PTE_W) continue;
    if ((l1 & (PTE_R | PTE_X)) !== 0) {
      if (((l1 >>> 10) & 0x3ff) === 0) add(i * 0x400000, (l1 >>> 20) * 0x400000, 0x400000, l1);
      continue;
    }
    if (peekGuestPage(vm, ctx.session.host, (l1 >>> 10) * PAGE_SIZE, table) === null) continue;
    for (let j = 0; j < 1024; j++) {
      const l0 = words[j]!;
      if ((l0 & PTE_V) === 0 || (l0 & (PTE_R | PTE_X)) === 0 || (l0 & (PTE_R | PTE_W)) === PTE_W) continue;
      add(i * 0x400000 + j * PAGE_SIZE, (l0 >>> 10) * PAGE_SIZE, PAGE_SIZE, l0);
    }
  }
  const lines = [`satp ${hex8(hart.satp)}: ${ranges.length} ranges`, 'gva range                 gpa           size        attr'];
  for (const r of ranges) lines.push(`${hex8(r.gva)}-${hex8(r.gva + r.size)}  ${hexn(r.gpa).padEnd(12)}  ${hex8(r.size)}  ${r.attr}`);
  return { text: lines.join('\n'), data: { paging: true, ranges } };
}

/** One character per frame (or per group of them when there are many), most telling state first. */
function grid(cells: string[], width = 64): string[] {
  const lines: string[] = [];
  for (let i = 0; i < cells.length; i += width) lines.push(`  ${cells.slice(i, i + width).join('')}`);
  return lines;
}

function groupCells(n: number, stateOf: (i: number) => string, order: string): { cells: string[]; per: number } {
  const per = Math.max(1, Math.ceil(n / 4096));
  const cells: string[] = [];
  for (let i = 0; i < n; i += per) {
    let best = stateOf(i);
    for (let j = i + 1; j < Math.min(n, i + per); j++) {
      const c = stateOf(j);
      if (order.indexOf(c) < order.indexOf(best)) best = c;
    }
    cells.push(best);
  }
  return { cells, per };
}

const SVG_COLOURS: Record<string, [string, string]> = {
  '.': ['#f4f4f4', 'free / never touched'], Y: ['#2e7d32', 'guest young'], o: ['#81c784', 'guest old'], D: ['#c62828', 'guest dirty'],
  s: ['#f9a825', 'swap cache'], P: ['#6a1b9a', 'pinned'], x: ['#1565c0', 'other process'], '#': ['#757575', 'allocated, unmapped'],
  S: ['#2e7d32', 'resident, mapped by an spte'], R: ['#81c784', 'resident, no spte'], c: ['#f9a825', 'swapped, in the swap cache'], w: ['#c62828', 'swapped out'],
};

/** memmap's two grids as one SVG: 8x8 cells, 64 to a row, a legend under each. */
function memmapSvg(d: { host: string; guest: { pages?: string } }): string {
  const out: string[] = [];
  let y = 20;
  const section = (title: string, cells: string, legend: string) => {
    out.push(`<text x="4" y="${y}" font-family="monospace" font-size="12">${title}</text>`);
    y += 6;
    for (let i = 0; i < cells.length; i++) {
      const c = SVG_COLOURS[cells[i]!]?.[0] ?? '#000';
      out.push(`<rect x="${4 + (i % 64) * 9}" y="${y + Math.floor(i / 64) * 9}" width="8" height="8" fill="${c}"/>`);
    }
    y += Math.ceil(cells.length / 64) * 9 + 14;
    for (const k of legend) {
      out.push(`<rect x="4" y="${y - 9}" width="8" height="8" fill="${SVG_COLOURS[k]![0]}"/><text x="16" y="${y - 1}" font-family="monospace" font-size="10">${SVG_COLOURS[k]![1]}</text>`);
      y += 12;
    }
    y += 10;
  };
  section('host RAM (frames)', d.host, 'YoDsPx#.');
  if (d.guest.pages !== undefined) section('guest RAM (pages)', d.guest.pages, 'SRcw.');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${4 + 64 * 9 + 4}" height="${y}">\n${out.join('\n')}\n</svg>\n`;
}

function memmap(ctx: ConsoleContext): CommandResult {
  const { vm } = ctx.session.live();
  const k = ctx.session.vmm.kernel;
  const fr = k.frames;
  const mmId = vm.mm.id;
  const frameState = (pfn: number): string => {
    const f = fr.flags[pfn]!;
    if (f & PG_free) return '.';
    if (fr.maybePinned(pfn)) return 'P';
    if (f & PG_swapcache) return 's';
    if (fr.mapcount[pfn]! > 0 && fr.rmapMm[pfn] === mmId) {
      if (f & PG_dirty) return 'D';
      const pte = vm.mm.pt.get(fr.rmapHvaPage[pfn]!);
      return pteYoung(pte) || (f & PG_referenced) ? 'Y' : 'o';
    }
    if (fr.mapcount[pfn]! > 0) return 'x';
    return '#';
  };
  const host = groupCells(fr.nrFrames, frameState, 'PDsYox#.');
  const slot = vm.memslots.all()[0];
  const lines = [`host RAM: ${fr.nrFrames} frames${host.per > 1 ? `, ${host.per} per character` : ''}`, ...grid(host.cells),
    '  legend: Y guest young  o guest old  D guest dirty  s swap cache  P pinned  x other process  # allocated, unmapped  . free'];
  const guest: Record<string, unknown> = {};
  if (slot !== undefined) {
    const pageState = (i: number): string => {
      const gfn = slot.baseGfn + i;
      const w = userPageWhere(k, vm.mm, slot.userspaceAddr + i * PAGE_SIZE);
      if (w.kind === 'present') return rmapSptes(vm, gfn).length > 0 ? 'S' : 'R';
      if (w.kind === 'swapcache') return 'c';
      if (w.kind === 'swap') return 'w';
      return '.';
    };
    const g = groupCells(slot.npages, pageState, 'SRcw.');
    lines.push(`guest RAM (memslot ${slot.id}, gpa ${hexn(slot.baseGfn * PAGE_SIZE)}): ${slot.npages} pages${g.per > 1 ? `, ${g.per} per character` : ''}`, ...grid(g.cells),
      '  legend: S resident, mapped by an spte  R resident, no spte  c swapped, in the swap cache  w swapped out  . never touched');
    guest.pages = g.cells.join('');
    guest.perCell = g.per;
  }
  return { text: lines.join('\n'), data: { host: host.cells.join(''), hostPerCell: host.per, guest } };
}

// ---- memory dumps (x, xp) --------------------------------------------------------------

interface DumpFormat {
  count: number;
  format: 'x' | 'd' | 'u' | 'c' | 'i';
  size: 1 | 2 | 4;
}

function parseDumpFormat(suffix: string): DumpFormat {
  const m = /^(\d*)([a-z]*)$/i.exec(suffix);
  if (m === null) throw new ConsoleError(`bad format '/${suffix}' (x/Nfu: N a count, f one of x d u c i, u one of b h w)`);
  const count = m[1] === '' ? 1 : Number(m[1]);
  if (count === 0 || count > 4096) throw new ConsoleError(`bad count '${m[1]}' (1 to 4096)`);
  let format: DumpFormat['format'] = 'x';
  let size: DumpFormat['size'] | null = null;
  for (const c of m[2]!.toLowerCase()) {
    if ('xduci'.includes(c)) format = c as DumpFormat['format'];
    else if (c === 'b') size = 1;
    else if (c === 'h') size = 2;
    else if (c === 'w') size = 4;
    else throw new ConsoleError(`bad format letter '${c}' (formats x d u c i, sizes b h w)`);
  }
  if (format === 'i') size = 4;
  return { count, format, size: size ?? (format === 'c' ? 1 : 4) };
}

function dumpMemory(ctx: ConsoleContext, args: readonly string[], suffix: string, virtual: boolean): CommandResult {
  const name = virtual ? 'x' : 'xp';
  const usage = `${name}/Nfu ${virtual ? 'GVA' : 'GPA'}`;
  const last = ctx.lastDump?.[name];
  if (args.length === 0 && last === undefined) throw new ConsoleError(`missing ${virtual ? 'gva' : 'gpa'} (usage: ${usage})`);
  const f = parseDumpFormat(suffix === '' && args.length === 0 ? last!.suffix : suffix);
  const addr = args.length === 0 ? last!.next : parseNumber(ctx, args[0], virtual ? 'gva' : 'gpa', virtual ? 2 ** 32 : 2 ** 34);
  noMoreArgs(args, 1, usage);
  if (addr % f.size !== 0) throw new ConsoleError(`address ${hexn(addr)} is not aligned to ${f.size} bytes`);
  const bytes = ctx.session.readGuest(addr, f.count * f.size, virtual);
  ctx.lastDump = { ...ctx.lastDump, [name]: { next: addr + f.count * f.size, suffix: suffix === '' && args.length === 0 ? last!.suffix : suffix } };
  const dv = new DataView(bytes.buffer);
  const values: number[] = [];
  for (let i = 0; i < f.count; i++) {
    const o = i * f.size;
    values.push(f.size === 1 ? dv.getUint8(o) : f.size === 2 ? dv.getUint16(o, true) : dv.getUint32(o, true));
  }
  const cell = (v: number, i: number): string => {
    switch (f.format) {
      case 'x': return '0x' + v.toString(16).padStart(f.size * 2, '0');
      case 'u': return String(v);
      case 'd': return String(f.size === 1 ? (v << 24) >> 24 : f.size === 2 ? (v << 16) >> 16 : v | 0);
      case 'c': return `${v} '${v >= 0x20 && v < 0x7f ? String.fromCharCode(v) : `\\x${v.toString(16).padStart(2, '0')}`}'`;
      case 'i': return disassemble(v | 0, (addr + i * 4) | 0);
    }
  };
  const perLine = f.format === 'i' ? 1 : f.format === 'c' ? 8 : f.size === 4 ? 4 : 8;
  const lines: string[] = [];
  for (let i = 0; i < values.length; i += perLine) {
    const a = addr + i * f.size;
    lines.push(`${virtual ? hex8(a) : hexn(a)}:\t${values.slice(i, i + perLine).map((v, j) => cell(v, i + j)).join('\t')}`);
  }
  return { text: lines.join('\n'), data: { addr, format: f.format, size: f.size, values: f.format === 'i' ? values.map((v, i) => ({ insn: v, text: cell(v, i) })) : values } };
}

// ---- the chain: gva -> gpa -> memslot -> hva -> host pte -> pfn -> sptes -> TLB -----------

function spteChain(ctx: ConsoleContext, args: readonly string[]): CommandResult {
  const { vm, hart } = ctx.session.live();
  const usage = 'info spte GVA | info spte gfn GFN';
  const lines: string[] = [];
  const data: Record<string, unknown> = {};
  let gfn: number;
  let gva: number | null = null;
  if (args[0] === 'gfn') {
    gfn = parseNumber(ctx, args[1], 'gfn', 2 ** 22);
    noMoreArgs(args, 2, usage);
  } else {
    gva = parseNumber(ctx, args[0], 'gva');
    noMoreArgs(args, 1, usage);
    if (hart.priv === 3 || hart.satp >= 0) {
      lines.push(`gva ${hex8(gva)}: paging off (satp ${hex8(hart.satp)}), gpa = gva`);
      gfn = Math.floor(gva / PAGE_SIZE);
      data.walk = null;
    } else {
      const w = walkGuestUnlocked(vm, ctx.session.host, hart.satp, gva);
      lines.push(`guest walk (satp ${hex8(hart.satp)}, root gpa ${hexn((hart.satp & 0x3fffff) * PAGE_SIZE)}):`, ...walkText(gva, w));
      data.walk = walkData(w);
      if (w.gpa === null) return { text: lines.join('\n'), data };
      gfn = Math.floor(w.gpa / PAGE_SIZE);
    }
  }
  data.gfn = gfn;
  const m = gpaToHva(vm, gfn * PAGE_SIZE);
  if (m === null) throw new ConsoleError(`gfn ${hex(gfn)} (gpa ${hexn(gfn * PAGE_SIZE)}) is outside every memslot (an access there is MMIO, the VMM's)`);
  const s = m.slot;
  lines.push(`gfn ${hex(gfn)} -> memslot ${s.id} (gpa ${hexn(s.baseGfn * PAGE_SIZE)}-${hexn((s.baseGfn + s.npages) * PAGE_SIZE)}) -> hva ${hex(m.hva)}`);
  data.memslot = s.id;
  data.hva = m.hva;
  const hw = ctx.session.host.userPageWhere(vm.mm, m.hva);
  lines.push(`host ${hostPteText(hw)}`);
  data.host = hostPteData(hw);
  if (hw.kind === 'present' || hw.kind === 'swapcache') {
    lines.push(`frame ${ctx.session.host.frames.describe(hw.pfn)}`);
    data.frame = ctx.session.host.frames.describe(hw.pfn);
  }
  if (gva !== null) {
    const tr = ctx.session.vmm.vcpu!.translator;
    const walk = spteWalk(vm, tr.root, gva);
    const l1 = walk.l1Sptep >= 0 ? vm.sps.sptes[walk.l1Sptep]! : 0;
    lines.push(tr.root < 0 ? 'spte walk: vcpu0 has no shadow root loaded'
      : `spte walk: root sp ${tr.root} [${hex(gva >>> 22)}] = ${spteToString(l1)}` +
        (walk.sptep >= 0 ? `; sp ${sptepPage(walk.sptep)} [${hex(sptepIndex(walk.sptep))}] = ${spteToString(vm.sps.sptes[walk.sptep]!)}` : ''));
    data.spteWalk = { root: tr.root, l1: l1 >>> 0, sptep: walk.sptep, spte: walk.sptep >= 0 ? vm.sps.sptes[walk.sptep]! >>> 0 : null };
  }
  const sptes = rmapSptes(vm, gfn);
  lines.push(`rmap of gfn ${hex(gfn)}: ${sptes.length === 0 ? 'no sptes' : `${sptes.length} spte${sptes.length === 1 ? '' : 's'}`}`);
  const described = sptes.map((p) => describeSptep(ctx, p));
  for (const d of described) lines.push(`  ${d.text}`);
  data.rmap = described.map((d) => d.data);
  const pfns = new Set<number>();
  for (const p of sptes) if (isLeafSpte(vm.sps.sptes[p]!)) pfns.add(sptePfn(vm.sps.sptes[p]!));
  if (hw.kind === 'present') pfns.add(hw.pfn);
  const tlb = [...pfns].flatMap((pfn) => tlbEntriesForHostPage(hart, pfn * PAGE_SIZE));
  lines.push(`soft TLB (vcpu0): ${tlb.length === 0 ? 'no entry caches this page' : tlb.map(tlbText).join(', ')}`);
  data.tlb = tlb;
  return { text: lines.join('\n'), data };
}

// ---- info subcommands ----------------------------------------------------------------------

const INFO: Command[] = [
  {
    name: 'registers',
    args: '',
    help: 'pc, privilege, the 32 integer registers and the supervisor CSRs',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info registers');
      const { hart } = ctx.session.live();
      const lines = [`pc   ${hex8(hart.pc)}  priv ${'US?M'[hart.priv]}  instret ${hart.instret}  time ${hart.getMtime()}`];
      for (let i = 0; i < 32; i += 4) {
        lines.push([0, 1, 2, 3].map((j) => `${REG_NAMES[i + j]!.padEnd(4)} ${hex8(hart.regs[i + j]!)}`).join('  '));
      }
      const csrNames = ['sstatus', 'sie', 'sip', 'stvec', 'sepc', 'scause', 'stval', 'sscratch', 'satp'];
      const csr: Record<string, number> = {};
      for (const n of csrNames) csr[n] = hart.readCsr(CSRS[n]!) >>> 0;
      for (let i = 0; i < csrNames.length; i += 4) {
        lines.push(csrNames.slice(i, i + 4).map((n) => `${n.padEnd(8)} ${hex8(csr[n]!)}`).join('  '));
      }
      const regs: Record<string, number> = {};
      REG_NAMES.forEach((n, i) => (regs[n] = hart.regs[i]! >>> 0));
      return { text: lines.join('\n'), data: { pc: hart.pc >>> 0, priv: hart.priv, instret: hart.instret, regs, csr } };
    },
  },
  {
    name: 'break',
    // gdb's info b / info breakpoints.
    aliases: ['b', 'breakpoints'],
    args: '',
    help: 'the breakpoints',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info break');
      const bps = [...ctx.session.gate.breakpoints];
      return {
        text: bps.length === 0 ? 'no breakpoints' : bps.map((pc, i) => `${i + 1}: ${hex8(pc)}`).join('\n'),
        data: { breakpoints: bps.map((pc, i) => ({ n: i + 1, pc })) },
      };
    },
  },
  {
    name: 'watch',
    args: '',
    help: 'the page watches and what each page looks like now',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info watch');
      const w = ctx.session.watches;
      return {
        text: w.length === 0 ? 'no watches' : w.map((x) => `watch ${x.id}: gpa ${hexn(x.gpa)} (${ctx.session.pageState(x.gpa)})`).join('\n'),
        data: { watches: w.map((x) => ({ id: x.id, gpa: x.gpa, state: ctx.session.pageState(x.gpa) })) },
      };
    },
  },
  {
    name: 'memslots',
    args: '',
    help: 'KVM memslots: gpa range, hva, pages, flags',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info memslots');
      const { vm } = ctx.session.live();
      const slots = vm.memslots.all().map((s) => ({
        slot: s.id, gpaStart: s.baseGfn * PAGE_SIZE, gpaEnd: (s.baseGfn + s.npages) * PAGE_SIZE, hva: s.userspaceAddr, npages: s.npages, flags: s.flags,
      }));
      return { text: vm.memslots.dump(), data: { generation: vm.memslots.generation, slots } };
    },
  },
  {
    name: 'spte',
    args: 'GVA | gfn GFN',
    help: 'the whole chain: gpte -> gpa -> memslot -> hva -> host pte -> pfn -> sptes -> soft-TLB entries',
    run: (ctx, args) => spteChain(ctx, args),
  },
  {
    name: 'rmap',
    args: '[GFN]',
    help: 'every spte mapping GFN; without GFN the log2 histogram of rmap chain lengths (mmu_rmaps_stat)',
    run(ctx, args) {
      const { vm } = ctx.session.live();
      if (args.length === 0) {
        vm.sps.updateRmapHistogram();
        const labels = rmapHistogramLabels();
        const h = vm.stats.rmapHistogram;
        const rows = labels.map((l, i) => ({ sptes: l, gfns: h[i]! }));
        const total = rows.reduce((a, r) => a + r.gfns, 0);
        return {
          text: [`rmap chain lengths (gfns with that many sptes), ${total} gfns mapped:`, ...rows.map((r) => `  ${r.sptes.padStart(7)}: ${r.gfns}`)].join('\n'),
          data: { histogram: Object.fromEntries(rows.map((r) => [r.sptes, r.gfns])), gfns: total },
        };
      }
      const gfn = parseNumber(ctx, args[0], 'gfn', 2 ** 22);
      noMoreArgs(args, 1, 'info rmap [GFN]');
      if (vm.memslots.gfnToMemslot(gfn) === undefined) throw new ConsoleError(`gfn ${hex(gfn)} is outside every memslot`);
      const d = rmapSptes(vm, gfn).map((p) => describeSptep(ctx, p));
      return {
        text: [`rmap of gfn ${hex(gfn)}: ${d.length} spte${d.length === 1 ? '' : 's'}`, ...d.map((x) => `  ${x.text}`)].join('\n'),
        data: { gfn, sptes: d.map((x) => x.data) },
      };
    },
  },
  {
    name: 'sp',
    args: '[SP | gfn GFN]',
    help: 'shadow pages (gfn, role, root count, present sptes, parents), oldest first; with SP its present sptes; with gfn GFN the pages for that gfn',
    run(ctx, args) {
      const { vm } = ctx.session.live();
      const infos = shadowPageInfos(vm);
      if (args[0] === 'gfn') {
        const gfn = parseNumber(ctx, args[1], 'gfn', 2 ** 22);
        noMoreArgs(args, 2, 'info sp gfn GFN');
        const hits = infos.filter((i) => i.gfn === gfn);
        return {
          text: hits.length === 0 ? `no shadow page for gfn ${hex(gfn)}` : hits.map((i) => `sp ${i.sp}: gfn ${hex(i.gfn)} ${i.roleText}${i.rootCount > 0 ? ` root x${i.rootCount}` : ''} present ${i.present} parents ${i.parents}`).join('\n'),
          data: { gfn, pages: hits },
        };
      }
      if (args.length > 0) {
        const sp = parseNumber(ctx, args[0], 'shadow page', vm.sps.capacity);
        noMoreArgs(args, 1, 'info sp [SP]');
        const info = infos.find((i) => i.sp === sp);
        if (info === undefined) throw new ConsoleError(`sp ${sp} is not an active shadow page`);
        const lines = [`sp ${sp}: gfn ${hex(info.gfn)} ${info.roleText} root x${info.rootCount} present ${info.present} parents ${info.parents}`];
        const entries: { index: number; spte: number; text: string }[] = [];
        for (let i = 0; i < 1024; i++) {
          const v = vm.sps.sptes[sp * 1024 + i]!;
          if (v === 0) continue;
          entries.push({ index: i, spte: v >>> 0, text: spteToString(v) });
          lines.push(`  [${hex(i)}] ${spteToString(v)}`);
        }
        return { text: lines.join('\n'), data: { ...info, sptes: entries } };
      }
      const lines = [`${infos.length} active shadow pages (least recently used first)`];
      for (const i of infos) {
        lines.push(`sp ${String(i.sp).padStart(3)}: gfn ${hex(i.gfn).padEnd(9)} ${i.roleText}${i.rootCount > 0 ? ` root x${i.rootCount}` : ''} present ${i.present} parents ${i.parents}`);
      }
      return { text: lines.join('\n'), data: { pages: infos } };
    },
  },
  {
    name: 'tlb',
    args: '',
    help: "vcpu0's soft TLB, per access kind (gva page -> host page)",
    run(ctx, args) {
      noMoreArgs(args, 0, 'info tlb');
      const { hart } = ctx.session.live();
      const e = tlbEntries(hart);
      const lines = [`soft TLB: ${e.length} entries`];
      for (const kind of ['fetch', 'load', 'store'] as const) {
        const k = e.filter((x) => x.kind === kind);
        lines.push(`${kind}: ${k.length}`);
        for (const x of k) lines.push(`  [${hex(x.index)}] gva ${hex8(x.gvaPage)} -> host ${hex(x.hostPage)} (pfn ${hex(x.hostPage / PAGE_SIZE)})`);
      }
      return { text: lines.join('\n'), data: { entries: e } };
    },
  },
  {
    name: 'meminfo',
    aliases: ['frames'],
    args: '',
    help: 'host frames: free, active/inactive anon, swap cache, isolated, pinned, by owner',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info meminfo');
      const m = memInfo(ctx.session.vmm.kernel);
      const kb = (n: number) => `${String(n * 4).padStart(8)} kB`;
      const lines = [
        `MemTotal:      ${kb(m.nrFrames)}  (${m.nrFrames} frames)`,
        `MemFree:       ${kb(m.free)}`,
        `Active(anon):  ${kb(m.activeAnon)}`,
        `Inactive(anon):${kb(m.inactiveAnon)}`,
        `Isolated:      ${kb(m.isolated)}`,
        `SwapCached:    ${kb(m.swapCache)}`,
        `Dirty:         ${kb(m.dirty)}`,
        `Unevictable:   ${kb(m.unevictable)}`,
        `Pinned:        ${kb(m.pinned)}`,
        `GupReferenced: ${kb(m.gupReferenced)}`,
        `Unmapped:      ${kb(m.unmapped)}  (allocated, no process maps them)`,
        `SwapTotal:     ${kb(m.swapSlots)}`,
        `SwapFree:      ${kb(m.swapSlots - m.swapUsed)}`,
        ...m.byOwner.map((o) => `  pid ${o.pid} ${o.name}: ${o.frames} frames mapped`),
      ];
      return { text: lines.join('\n'), data: { ...m } };
    },
  },
  {
    name: 'swap',
    args: '',
    help: 'the swap device: slots used, cached; swap entries per process',
    run(ctx, args) {
      noMoreArgs(args, 0, 'info swap');
      const k = ctx.session.vmm.kernel;
      const d = k.swap.dump();
      const procs = [...k.processes.values()].map((p) => ({ pid: p.pid, name: p.name, swapEnts: p.mm.swapEnts, rssPages: p.mm.anonRss }));
      const lines = [
        `swap device ${d.path ?? '(memory)'}: ${d.used}/${d.nrSlots} slots used (${d.used * 4} kB), ${d.cached} in the swap cache, latency read ${d.readLatency} write ${d.writeLatency} ticks`,
        ...procs.map((p) => `  pid ${p.pid} ${p.name}: ${p.swapEnts} swap entries, rss ${p.rssPages} pages`),
      ];
      return { text: lines.join('\n'), data: { ...d, processes: procs } };
    },
  },
  {
    name: 'lru',
    args: '[N]',
    help: 'the host LRU lists: the N most recently added frames of each (default 16)',
    run(ctx, args) {
      const n = parseCount(args[0], 'count', 16);
      noMoreArgs(args, 1, 'info lru [N]');
      const k = ctx.session.vmm.kernel;
      const lists = [['inactive', LRU_INACTIVE_ANON], ['active', LRU_ACTIVE_ANON]] as const;
      const lines: string[] = [];
      const data: Record<string, unknown> = {};
      for (const [name, id] of lists) {
        const pfns = k.lru.walk(id, n);
        lines.push(`${name} anon: ${name === 'active' ? k.lru.nrActive : k.lru.nrInactive} frames${pfns.length > 0 ? `, newest ${pfns.length}:` : ''}`);
        for (const pfn of pfns) lines.push(`  ${k.frames.describe(pfn)}`);
        data[name] = pfns.map((pfn) => ({ pfn, text: k.frames.describe(pfn) }));
      }
      return { text: lines.join('\n'), data };
    },
  },
  {
    name: 'pte',
    args: 'PID|NAME HVA',
    help: "a host process's pte for HVA (present, young, dirty, write, or its swap entry)",
    run(ctx, args) {
      const k = ctx.session.vmm.kernel;
      if (args[0] === undefined) throw new ConsoleError('usage: info pte PID|NAME HVA');
      const procs = [...k.processes.values()];
      const p = /^\d+$/.test(args[0]) ? procs.find((q) => q.pid === Number(args[0])) : procs.find((q) => q.name === args[0]);
      if (p === undefined) throw new ConsoleError(`no process '${args[0]}' (${procs.map((q) => `${q.pid} ${q.name}`).join(', ') || 'none'})`);
      const hva = parseNumber(ctx, args[1], 'hva');
      noMoreArgs(args, 2, 'info pte PID|NAME HVA');
      const w = userPageWhere(k, p.mm, hva);
      return { text: `pid ${p.pid} ${p.name} hva ${hex(hva)}: ${hostPteText(w)}`, data: { pid: p.pid, hva, host: hostPteData(w) } };
    },
  },
  {
    name: 'oom',
    args: '',
    help: "the host OOM killer's reports",
    run(ctx, args) {
      noMoreArgs(args, 0, 'info oom');
      const r = ctx.session.vmm.kernel.oomReports;
      return {
        text: r.length === 0 ? 'no OOM kills' : r.map((x) => `at ${x.time}: ${x.report}`).join('\n'),
        data: { reports: r.map((x) => ({ ...x })) },
      };
    },
  },
  {
    name: 'mem',
    args: '',
    help: "the guest's mappings under its current satp, coalesced into ranges with their permissions (as QEMU prints them)",
    run(ctx, args) {
      noMoreArgs(args, 0, 'info mem');
      return guestMappings(ctx);
    },
  },
  ...DEVICE_INFO,
];

// ---- the commands ----------------------------------------------------------------------------

/** `swapout GFN`: the host reclaims that one page, or one error line says why it will not. */
function swapout(ctx: ConsoleContext, args: readonly string[]): CommandResult {
  const s = ctx.session;
  const { vm } = s.live();
  const gfn = parseNumber(ctx, args[0], 'gfn', 2 ** 22);
  noMoreArgs(args, 1, 'swapout GFN');
  const m = gpaToHva(vm, gfn * PAGE_SIZE);
  if (m === null) throw new ConsoleError(`gfn ${hex(gfn)} is outside every memslot`);
  const k = s.vmm.kernel;
  const sptesBefore = rmapSptes(vm, gfn).length;
  let r = { kind: 'none' } as UserPageReclaim;
  s.act('console-swapout', function* () {
    r = yield* k.reclaimUserPage(vm.mm, m.hva);
  });
  const page = `gfn ${hex(gfn)} (hva ${hex(m.hva)})`;
  const zapped = sptesBefore - rmapSptes(vm, gfn).length;
  const slotOf = () => userPageWhere(k, vm.mm, m.hva);
  switch (r.kind) {
    case 'none':
      throw new ConsoleError(`${page} has no host pte: never touched (or discarded by the balloon): nothing to swap out`);
    case 'swapped': {
      const cached = k.swap.lookup(r.slot);
      throw new ConsoleError(`${page} is swapped out already: swap slot ${r.slot}${cached >= 0 ? ` (still in the swap cache as pfn ${hex(cached)})` : ''}`);
    }
    case 'kept': {
      const pin = vm.protocol === 'pin' && /pinned/.test(r.why) ? ' (--protocol pin: KVM pins every page an spte maps; drop-sptes unpins)' : '';
      throw new ConsoleError(`${page} stays resident in pfn ${hex(r.pfn)}: ${r.why}${pin}`);
    }
    case 'swapcache': {
      const w = slotOf();
      const slot = w.kind === 'swap' || w.kind === 'swapcache' ? w.slot : -1;
      return {
        text: `${page}: unmapped to swap slot ${slot}, ${zapped} spte${zapped === 1 ? '' : 's'} zapped; pfn ${hex(r.pfn)} stays in the swap cache: ${r.why}`,
        data: { gfn, hva: m.hva, result: 'swapcache', pfn: r.pfn, slot, sptesZapped: zapped, why: r.why },
      };
    }
    case 'freed': {
      const w = slotOf();
      const slot = w.kind === 'swap' || w.kind === 'swapcache' ? w.slot : -1;
      return {
        text: `${page}: pfn ${hex(r.pfn)} ${r.written ? 'written to' : 'dropped, its copy already in'} swap slot ${slot} and freed, ${zapped} spte${zapped === 1 ? '' : 's'} zapped`,
        data: { gfn, hva: m.hva, result: 'freed', pfn: r.pfn, slot, written: r.written, sptesZapped: zapped },
      };
    }
  }
}

function statsRecord(ctx: ConsoleContext): Record<string, number> {
  const s = ctx.session.vmm.stats();
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.guest)) if (typeof v === 'number') out[k] = v;
  const host = s.host as unknown as Record<string, number>;
  for (const k of ['pgfault', 'pgmajfault', 'pswpin', 'pswpout', 'pgscan', 'pgsteal', 'pgactivate', 'pgdeactivate', 'pgalloc', 'pgfree',
    'kswapdWakeups', 'allocstall', 'oomKill', 'pgkeepRefd', 'pgkeepPinned', 'swapCacheHit', 'notifierCalls', 'warnings']) {
    out[`host.${k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())}`] = host[k]!;
  }
  out.instructions = s.instructions;
  out.ticks = s.ticks;
  out.sbi_calls = s.sbiCalls;
  return out;
}

export const COMMANDS: Command[] = [
  {
    name: 'help',
    aliases: ['?'],
    args: '[COMMAND]',
    help: 'this list, or one command',
    run(_ctx, args) {
      if (args.length > 0) {
        const c = args[0] === 'info' && args.length > 1 ? lookup(INFO, args[1]!, 'info subcommand') : lookup(COMMANDS, args[0]!, 'command');
        const name = args[0] === 'info' && args.length > 1 ? `info ${c.name}` : c.name;
        return { text: `${name}${c.args ? (c.args.startsWith('/') ? '' : ' ') + c.args : ''}: ${c.help}${c.aliases?.length ? ` (also ${c.aliases.join(', ')})` : ''}`, data: { name, args: c.args, help: c.help } };
      }
      const rows: [string, string][] = [];
      for (const c of COMMANDS) {
        const sep = c.args.startsWith('/') ? '' : ' ';
        rows.push([`${c.name}${c.aliases?.length ? `|${c.aliases.join('|')}` : ''}${c.args ? sep + c.args : ''}`, c.help]);
        if (c.name === 'info') for (const i of INFO) rows.push([`  info ${i.name}${i.args ? ' ' + i.args : ''}`, i.help]);
      }
      const w = Math.max(...rows.map((r) => r[0].length));
      return {
        text: ['commands (any unique prefix works; numbers are 0x hex, decimal or $reg):', ...rows.map(([a, h]) => `  ${a.padEnd(w)}  ${h}`)].join('\n'),
        data: { commands: COMMANDS.map((c) => c.name), info: INFO.map((i) => i.name) },
      };
    },
  },
  {
    name: 'info',
    aliases: ['i'],
    args: 'SUBCOMMAND',
    help: 'show state (see the list below)',
    run(ctx, args, suffix) {
      if (args.length === 0) throw new ConsoleError(`info what? (${INFO.map((i) => i.name).join(', ')})`);
      return lookup(INFO, args[0]!, 'info subcommand').run(ctx, args.slice(1), suffix);
    },
  },
  {
    name: 'continue',
    aliases: ['c'],
    args: '[N | until TICKS]',
    help: 'run the guest (N instructions, or until simulated time TICKS, a breakpoint, a stop, Ctrl-C or the end)',
    async run(ctx, args) {
      if (args[0] === 'until') {
        const t = parseNumber(ctx, args[1], 'simulated time', 2 ** 53);
        noMoreArgs(args, 2, 'continue until TICKS');
        ctx.session.live();
        if (t <= ctx.session.vmm.sched.now) throw new ConsoleError(`simulated time is already ${ctx.session.vmm.sched.now}`);
        return runEndResult(ctx, await ctx.session.run(Infinity, t));
      }
      const n = parseCount(args[0], 'instruction count', Infinity);
      noMoreArgs(args, 1, 'continue [N | until TICKS]');
      ctx.session.live();
      return runEndResult(ctx, await ctx.session.run(n));
    },
  },
  {
    name: 'step',
    aliases: ['s', 'stepi', 'si'],
    args: '[N]',
    help: 'run N instructions (default 1) and show the next one',
    async run(ctx, args) {
      const n = parseCount(args[0], 'instruction count', 1);
      noMoreArgs(args, 1, 'step [N]');
      ctx.session.live();
      return runEndResult(ctx, await ctx.session.run(n));
    },
  },
  {
    name: 'break',
    aliases: ['b'],
    args: 'PC',
    help: 'stop before the instruction at PC (a guest virtual address, as pc holds it)',
    run(ctx, args) {
      const pc = parseNumber(ctx, args[0], 'pc');
      noMoreArgs(args, 1, 'break PC');
      if (pc % 4 !== 0) throw new ConsoleError(`pc ${hex(pc)} is not 4-aligned (RV32 without C: every pc is)`);
      const bps = ctx.session.gate.breakpoints;
      if (bps.has(pc)) throw new ConsoleError(`a breakpoint at ${hex8(pc)} exists already`);
      bps.add(pc);
      return { text: `Breakpoint ${bps.size} at ${hex8(pc)}`, data: { n: bps.size, pc } };
    },
  },
  {
    name: 'delete',
    aliases: ['d'],
    args: '[N] | watch [N]',
    help: 'delete breakpoint N (numbered as info break shows them), or all; delete watch [N] the page watches',
    run(ctx, args) {
      if (args[0] === 'watch') {
        const w = ctx.session.watches;
        if (args.length === 1) {
          const n = w.splice(0).length;
          return { text: `deleted ${n} watch${n === 1 ? '' : 'es'}`, data: { deleted: n } };
        }
        const id = parseCount(args[1], 'watch number', 1);
        noMoreArgs(args, 2, 'delete watch [N]');
        const i = w.findIndex((x) => x.id === id);
        if (i < 0) throw new ConsoleError(`no watch ${id} (info watch lists them)`);
        w.splice(i, 1);
        return { text: `deleted watch ${id}`, data: { deleted: 1, id } };
      }
      const bps = ctx.session.gate.breakpoints;
      if (args.length === 0) {
        const n = bps.size;
        bps.clear();
        return { text: `deleted ${n} breakpoint${n === 1 ? '' : 's'}`, data: { deleted: n } };
      }
      const n = parseCount(args[0], 'breakpoint number', 1);
      noMoreArgs(args, 1, 'delete [N]');
      const pc = [...bps][n - 1];
      if (pc === undefined) throw new ConsoleError(`no breakpoint ${n} (info break lists them)`);
      bps.delete(pc);
      return { text: `deleted breakpoint ${n} at ${hex8(pc)}`, data: { deleted: 1, pc } };
    },
  },
  {
    name: 'x',
    args: '/Nfu GVA',
    help: 'guest memory through the guest page tables: N units, format x d u c i, size b h w (a bare x goes on where the last one ended)',
    run: (ctx, args, suffix) => dumpMemory(ctx, args, suffix, true),
  },
  {
    name: 'xp',
    args: '/Nfu GPA',
    help: 'guest-physical memory (read from the host page, its swap cache or swap; never faulted in)',
    run: (ctx, args, suffix) => dumpMemory(ctx, args, suffix, false),
  },
  {
    name: 'print',
    aliases: ['p'],
    args: '$REG | NUMBER',
    help: 'a register (or number) in hex, unsigned and signed',
    run(ctx, args) {
      const v = parseNumber(ctx, args[0], 'value');
      noMoreArgs(args, 1, 'print $REG');
      return { text: `${args[0]} = ${hex8(v)} (${v >>> 0}, ${v | 0})`, data: { name: args[0], value: v >>> 0 } };
    },
  },
  {
    name: 'gva2gpa',
    args: 'GVA',
    help: "the guest's page walk of GVA: each level's gpte with its bits",
    run(ctx, args) {
      const { vm, hart } = ctx.session.live();
      const gva = parseNumber(ctx, args[0], 'gva');
      noMoreArgs(args, 1, 'gva2gpa GVA');
      if (hart.priv === 3 || hart.satp >= 0) {
        return { text: `paging off (satp ${hex8(hart.satp)}, priv ${'US?M'[hart.priv]}): gpa = gva = ${hex8(gva)}`, data: { gva, gpa: gva, paging: false } };
      }
      const w = walkGuestUnlocked(vm, ctx.session.host, hart.satp, gva);
      return {
        text: [`satp ${hex8(hart.satp)}: Sv32, asid ${(hart.satp >>> 22) & 0x1ff}, root gpa ${hexn((hart.satp & 0x3fffff) * PAGE_SIZE)}`, ...walkText(gva, w)].join('\n'),
        data: { gva, paging: true, ...walkData(w) },
      };
    },
  },
  {
    name: 'gpa2hva',
    args: 'GPA',
    help: 'the memslot that backs GPA and the hva it maps to',
    run(ctx, args) {
      const { vm } = ctx.session.live();
      const gpa = parseNumber(ctx, args[0], 'gpa', 2 ** 34);
      noMoreArgs(args, 1, 'gpa2hva GPA');
      const m = memslotOfGpa(vm, gpa);
      return { text: `gpa ${hexn(gpa)} -> memslot ${m.slot.id} -> hva ${hex(m.hva)}`, data: { gpa, slot: m.slot.id, gfn: m.gfn, hva: m.hva } };
    },
  },
  {
    name: 'gpa2hpa',
    args: 'GPA',
    help: 'the host pte behind GPA (present/young/dirty/write and the pfn, or the swap entry), like crash vtop',
    run(ctx, args) {
      const { vm } = ctx.session.live();
      const gpa = parseNumber(ctx, args[0], 'gpa', 2 ** 34);
      noMoreArgs(args, 1, 'gpa2hpa GPA');
      const m = memslotOfGpa(vm, gpa);
      const w = ctx.session.host.userPageWhere(vm.mm, m.hva);
      const hpa = w.kind === 'present' ? w.pfn * PAGE_SIZE + (gpa % PAGE_SIZE) : null;
      return {
        text: `gpa ${hexn(gpa)} -> hva ${hex(m.hva)} -> ${hostPteText(w)}${hpa !== null ? ` (hpa of the byte ${hexn(hpa)})` : ''}`,
        data: { gpa, hva: m.hva, host: hostPteData(w), hpa },
      };
    },
  },
  {
    name: 'stats',
    args: '',
    help: 'kvm_stat and vmstat counters, with the change since the last stats',
    run(ctx, args) {
      noMoreArgs(args, 0, 'stats');
      const now = statsRecord(ctx);
      const last = ctx.lastStats;
      ctx.lastStats = now;
      const w = Math.max(...Object.keys(now).map((k) => k.length));
      const lines = [`${'counter'.padEnd(w)} ${'total'.padStart(12)} ${'delta'.padStart(10)}`];
      const delta: Record<string, number> = {};
      for (const [k, v] of Object.entries(now)) {
        delta[k] = v - (last?.[k] ?? 0);
        lines.push(`${k.padEnd(w)} ${String(v).padStart(12)} ${String(delta[k]).padStart(10)}`);
      }
      return { text: lines.join('\n'), data: { total: now, delta } };
    },
  },
  {
    name: 'audit',
    args: '',
    help: 'run the coherency, shadow-MMU and host checkers now and list what is violated',
    run(ctx, args) {
      noMoreArgs(args, 0, 'audit');
      const { vm } = ctx.session.live();
      const problems = [...auditCoherency(vm, ctx.session.host), ...auditKernel(ctx.session.vmm.kernel, { inFlight: true }).map((p) => `host: ${p}`)];
      return {
        text: problems.length === 0 ? 'audit: no violations (coherency, shadow MMU, host)' : [`audit: ${problems.length} violations`, ...problems.map((p) => `  ${p}`)].join('\n'),
        data: { violations: problems },
      };
    },
  },
  {
    name: 'watch',
    args: 'gpa GPA',
    help: "stop a run when the host pte, swap state or any spte of GPA's page changes, and say how",
    run(ctx, args) {
      if (args[0] !== 'gpa') throw new ConsoleError(`usage: watch gpa GPA`);
      const gpa = parseNumber(ctx, args[1], 'gpa', 2 ** 34);
      noMoreArgs(args, 2, 'watch gpa GPA');
      const { vm } = ctx.session.live();
      memslotOfGpa(vm, gpa);
      const w = ctx.session.addWatch(gpa);
      return { text: `watch ${w.id}: gpa ${hexn(gpa)} (${w.last})`, data: { id: w.id, gpa, state: w.last } };
    },
  },
  {
    name: 'stop',
    args: 'on EVENT... | off',
    help: 'stop a run at a trace event, by our name or the tracepoint\'s (swap-write or mm_vmscan_write_folio, unmap, oom-kill, invalidate or kvm_unmap_gfn_range, fault, age ...)',
    run(ctx, args) {
      if (args[0] === 'off' && args.length === 1) {
        ctx.session.setStopOn(null);
        return { text: 'no event stops', data: { events: [] } };
      }
      if (args[0] !== 'on' || args.length < 2) throw new ConsoleError('usage: stop on EVENT... | stop off');
      for (const e of args.slice(1)) if (!/^[a-z][a-z_-]*$/.test(e)) throw new ConsoleError(`bad event name '${e}'`);
      ctx.session.setStopOn(args.slice(1));
      return { text: `a run stops at: ${args.slice(1).join(', ')}`, data: { events: args.slice(1) } };
    },
  },
  {
    name: 'reclaim',
    args: 'N',
    help: 'the host reclaims N pages now (shrink_node, as memory.reclaim does)',
    run(ctx, args) {
      const n = parseCount(args[0], 'page count', 0);
      noMoreArgs(args, 1, 'reclaim N');
      const k = ctx.session.vmm.kernel;
      let freed = 0;
      ctx.session.act('console-reclaim', function* () {
        freed = yield* k.reclaim(n);
      });
      return { text: `reclaimed ${freed} pages`, data: { requested: n, reclaimed: freed } };
    },
  },
  {
    name: 'swapout',
    args: 'GFN',
    help: 'push one guest page out to swap now (reclaim_pages, as MADV_PAGEOUT does): the notifier zaps its sptes, the next guest touch swaps it in',
    run: (ctx, args) => swapout(ctx, args),
  },
  {
    name: 'age',
    args: '',
    help: "one aging pass over guest RAM: clear young in the host ptes and (through the notifier) the sptes",
    run(ctx, args) {
      noMoreArgs(args, 0, 'age');
      const s = ctx.session;
      const { vm } = s.live();
      const k = s.vmm.kernel;
      let young = 0;
      s.act('console-age', function* () {
        young = yield* k.clearYoungRange(vm.mm, s.vmm.ramHva, s.vmm.ramHva + s.vmm.config.guestMemBytes);
      });
      return { text: `aged guest RAM: ${young} young pages`, data: { young } };
    },
  },
  {
    name: 'trace',
    args: 'on [EVENT...] | off',
    help: 'print host and kvm trace events (all, or these), named after the kernel tracepoints, while the guest runs',
    run(ctx, args) {
      if (args[0] === 'off' && args.length === 1) {
        ctx.session.setTrace(null);
        return { text: 'trace off', data: { trace: false } };
      }
      if (args[0] !== 'on') throw new ConsoleError('usage: trace on [EVENT...] | trace off');
      for (const e of args.slice(1)) if (!/^[a-z][a-z_-]*$/.test(e)) throw new ConsoleError(`bad event name '${e}'`);
      ctx.session.setTrace((line) => ctx.trace(line), args.slice(1));
      return { text: `trace on${args.length > 1 ? ` (${args.slice(1).join(', ')})` : ''}`, data: { trace: true, events: args.slice(1) } };
    },
  },
  {
    name: 'drop-sptes',
    args: '',
    help: 'zap every shadow page (as release does); the guest faults its translations back in',
    run(ctx, args) {
      noMoreArgs(args, 0, 'drop-sptes');
      const { vm } = ctx.session.live();
      const before = shadowPageInfos(vm).length;
      ctx.session.act('console-drop-sptes', function* () {
        yield* vm.mmuLock.lock();
        vm.sps.zapAll();
        // In-flight faults resolved their pfn before the zap: make them retry.
        vm.mmuInvalidateSeq++;
        vm.mmuLock.unlock();
      });
      return { text: `zapped ${before} shadow pages`, data: { zapped: before } };
    },
  },
  {
    name: 'pressure',
    args: 'SIZE | off',
    help: 'another host process keeps SIZE of memory busy while the guest runs (pressure off stops it)',
    run(ctx, args) {
      const s = ctx.session;
      if (args[0] === 'off' && args.length === 1) {
        if (s.pressure === null) throw new ConsoleError('no console pressure is running');
        s.pressure.stop = true;
        const bytes = s.pressure.bytes;
        s.pressure = null;
        return { text: `pressure off (its ${bytes >> 10}K are freed when it next runs)`, data: { pressure: 0 } };
      }
      let bytes: number;
      try {
        bytes = parseSize('pressure', args[0] ?? '');
      } catch (e) {
        throw new ConsoleError(args[0] === undefined ? 'usage: pressure SIZE | pressure off' : (e as Error).message);
      }
      noMoreArgs(args, 1, 'pressure SIZE');
      s.live();
      if (s.pressure !== null) throw new ConsoleError(`pressure of ${s.pressure.bytes >> 10}K is running: pressure off first`);
      const k = s.vmm.kernel;
      if (bytes > 3 * k.frames.nrFrames * PAGE_SIZE) throw new ConsoleError(`${args[0]} is more than the host's RAM and swap together`);
      const state = { stop: false, bytes };
      s.pressure = state;
      s.vmm.sched.spawn('console-pressure', function* () {
        const p = k.createProcess('console-pressure');
        const hva = yield* k.mmap(p.mm, bytes);
        if (hva < 0) return;
        const page = new Uint8Array(PAGE_SIZE);
        for (let i = 0; !state.stop && !p.killed; i = (i + 1) % (bytes / PAGE_SIZE)) {
          page[0] = i & 0xff;
          if ((yield* k.accessWrite(p.mm, hva + i * PAGE_SIZE, page)) !== 0) break;
          yield* sleepTicks(10, 'console pressure');
        }
        yield* k.exitProcess(p);
      }, { daemon: true });
      return { text: `pressure: a process keeps ${bytes >> 10}K busy while the guest runs`, data: { pressure: bytes } };
    },
  },
  BALLOON_COMMAND,
  {
    name: 'memmap',
    args: '[--svg FILE]',
    help: 'host RAM as a grid of frames and guest RAM as a grid of pages, by state, with a legend (--svg: the same picture as an SVG file)',
    run(ctx, args) {
      if (args.length === 0) return memmap(ctx);
      if (args[0] !== '--svg' || args[1] === undefined) throw new ConsoleError('usage: memmap [--svg FILE]');
      noMoreArgs(args, 2, 'memmap --svg FILE');
      const r = memmap(ctx);
      const svg = memmapSvg(r.data as { host: string; guest: { pages?: string } });
      try {
        writeFileSync(args[1], svg);
      } catch (e) {
        throw new ConsoleError(`cannot write ${args[1]}: ${(e as Error).message}`);
      }
      return { text: `wrote ${args[1]} (${svg.length} bytes)`, data: { file: args[1], bytes: svg.length } };
    },
  },
  {
    name: 'quit',
    aliases: ['q'],
    args: '',
    help: 'leave the console',
    run(ctx) {
      ctx.quit = true;
      return { text: '', data: {} };
    },
  },
];

/** Exact name, then alias, then unique prefix. */
export function lookup(table: readonly Command[], word: string, what: string): Command {
  const w = word.toLowerCase();
  const exact = table.find((c) => c.name === w || c.aliases?.includes(w));
  if (exact !== undefined) return exact;
  const hits = table.filter((c) => c.name.startsWith(w));
  if (hits.length === 1) return hits[0]!;
  if (hits.length > 1) throw new ConsoleError(`ambiguous ${what} '${word}': ${hits.map((c) => c.name).join(', ')}`);
  throw new ConsoleError(`unknown ${what} '${word}' (help lists them)`);
}

/** Names for tab completion: commands, or info subcommands after "info ". */
export function completions(line: string): string[] {
  const m = /^\s*(\S+)\s+(\S*)$/.exec(line);
  if (m !== null) {
    let cmd: Command | null = null;
    try {
      cmd = lookup(COMMANDS, m[1]!, 'command');
    } catch {
      return [];
    }
    if (cmd.name !== 'info' && cmd.name !== 'help') return [];
    const names = (cmd.name === 'info' ? INFO : COMMANDS).map((c) => c.name);
    return names.filter((n) => n.startsWith(m[2]!)).map((n) => `${m[1]} ${n}`);
  }
  const word = line.trimStart();
  if (/\s/.test(word)) return [];
  // A trailing space, so a unique completion leaves the cursor ready for the argument.
  return COMMANDS.map((c) => c.name).filter((n) => n.startsWith(word)).map((n) => n + ' ');
}

/** Splits "x/4xw 0x80000000" into word "x", suffix "4xw", args ["0x80000000"]. */
export function parseLine(line: string): { word: string; suffix: string; args: string[] } | null {
  const parts = line.trim().split(/\s+/).filter((p) => p !== '');
  if (parts.length === 0 || parts[0]!.startsWith('#')) return null;
  const first = parts[0]!;
  const slash = first.indexOf('/');
  return slash < 0 ? { word: first, suffix: '', args: parts.slice(1) } : { word: first.slice(0, slash), suffix: first.slice(slash + 1), args: parts.slice(1) };
}

export { INFO as INFO_COMMANDS };
