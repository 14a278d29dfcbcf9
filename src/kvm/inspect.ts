// Counterpart: what KVM's debugfs (mmu_rmaps_stat, the shadow page list) and a
// crash session on struct kvm read
//
// Read-only queries for faces (the debug console, tests, the torture harness): no
// lock taken, nothing written, nothing faulted in. Guest memory is read through a
// HostDebugView, passed in by the face and never held by the Vm (the driver path
// reaches the host only through SecondaryMmuHost), with the host's own read-only peek (a swapped page is read from the swap device without
// being swapped in), so looking at a guest changes neither its memory state nor its
// counters. Between scheduler steps mmu_lock is never held (no critical section
// under it yields), so the shadow state a debugger sees is always a consistent one.

import { PTE_R, PTE_V, PTE_W, PTE_X } from '../hart/sv32.js';
import type { HostDebugView } from '../host/debug-view.js';
import type { UserPageWhere } from '../host/inspect.js';
import { gfnToHva, type Memslot } from './memslots.js';
import { forEachRmap, rmapCount } from './mmu/rmap.js';
import { SPTES_PER_PAGE, roleLevel, roleToString, sptepIndex, sptepPage } from './mmu/shadow-pages.js';
import { isLeafSpte, isNonLeafSpte, spteChild } from './mmu/spte.js';
import type { Vm } from './vm.js';

const PAGE_SIZE = 4096;

/** gpa -> memslot -> hva, or null outside every memslot. */
export function gpaToHva(vm: Vm, gpa: number): { slot: Memslot; gfn: number; hva: number } | null {
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const slot = vm.memslots.gfnToMemslot(gfn);
  if (slot === undefined) return null;
  return { slot, gfn, hva: gfnToHva(slot, gfn) + (gpa % PAGE_SIZE) };
}

/** The guest page holding gpa (4 KiB, page-aligned copy) and where it lives, or null outside every memslot. */
export function peekGuestPage(vm: Vm, host: HostDebugView, gpa: number, dst: Uint8Array): UserPageWhere | null {
  const m = gpaToHva(vm, gpa);
  if (m === null) return null;
  return host.peekUserPage(vm.mm, m.hva - (m.hva % PAGE_SIZE), dst);
}

const wordBuf = new Uint8Array(PAGE_SIZE);

/** The 32-bit word at gpa (4-aligned), or null outside every memslot. */
export function peekGuestWord(vm: Vm, host: HostDebugView, gpa: number): number | null {
  if (peekGuestPage(vm, host, gpa, wordBuf) === null) return null;
  const o = gpa % PAGE_SIZE & ~3;
  return (wordBuf[o]! | (wordBuf[o + 1]! << 8) | (wordBuf[o + 2]! << 16) | (wordBuf[o + 3]! << 24)) | 0;
}

/** One level of a guest Sv32 walk. */
export interface GuestWalkLevel {
  readonly level: 1 | 0;
  readonly gptePa: number;
  /** null: the table lies outside every memslot. */
  readonly gpte: number | null;
}

export interface GuestWalk {
  readonly levels: readonly GuestWalkLevel[];
  /** The gpa gva maps to, or null (no valid leaf: the guest would take a page fault). */
  readonly gpa: number | null;
  /** Why the walk stopped without a gpa. */
  readonly why?: string;
  readonly megapage: boolean;
}

/**
 * The guest's Sv32 walk of gva under satp, as the fault path would do it, but
 * without permission checks, A/D updates or host faults: what the tables say.
 */
export function walkGuestUnlocked(vm: Vm, host: HostDebugView, satp: number, gva: number): GuestWalk {
  const levels: GuestWalkLevel[] = [];
  let tablePa = (satp & 0x3fffff) * PAGE_SIZE;
  for (const level of [1, 0] as const) {
    const vpn = level === 1 ? gva >>> 22 : (gva >>> 12) & 0x3ff;
    const gptePa = tablePa + vpn * 4;
    const gpte = peekGuestWord(vm, host, gptePa);
    levels.push({ level, gptePa, gpte });
    if (gpte === null) return { levels, gpa: null, why: `page table at 0x${gptePa.toString(16)} is outside every memslot`, megapage: false };
    if ((gpte & PTE_V) === 0) return { levels, gpa: null, why: `L${level} gpte not valid`, megapage: false };
    if ((gpte & (PTE_R | PTE_W)) === PTE_W) return { levels, gpa: null, why: `L${level} gpte is W without R (reserved)`, megapage: false };
    const ppn = gpte >>> 10;
    if ((gpte & (PTE_R | PTE_X)) === 0) {
      if (level === 0) return { levels, gpa: null, why: 'L0 gpte is a pointer', megapage: false };
      tablePa = ppn * PAGE_SIZE;
      continue;
    }
    if (level === 1) {
      if ((ppn & 0x3ff) !== 0) return { levels, gpa: null, why: 'misaligned megapage', megapage: true };
      return { levels, gpa: (ppn >>> 10) * 0x400000 + (gva & 0x3fffff), megapage: true };
    }
    return { levels, gpa: ppn * PAGE_SIZE + (gva & 0xfff), megapage: false };
  }
  return { levels, gpa: null, why: 'no leaf', megapage: false };
}

/** Every sptep mapping gfn (its rmap), in rmap order; empty outside every memslot. */
export function rmapSptes(vm: Vm, gfn: number): number[] {
  const slot = vm.memslots.gfnToMemslot(gfn);
  if (slot === undefined) return [];
  const out: number[] = [];
  forEachRmap(vm.sps.pool, slot.rmap, gfn - slot.baseGfn, (sptep) => void out.push(sptep));
  return out;
}

/** The parent sptes (in level 1 pages) that link to shadow page sp. */
export function parentSptes(vm: Vm, sp: number): number[] {
  const out: number[] = [];
  forEachRmap(vm.sps.pool, vm.sps.parents, sp, (sptep) => void out.push(sptep));
  return out;
}

/**
 * The gvas a leaf sptep translates: one per parent link of its page (a level 0
 * page linked from two roots, or twice from one, serves several).
 */
export function leafSpteGvas(vm: Vm, sptep: number): { root: number; gva: number }[] {
  const sp = sptepPage(sptep);
  return parentSptes(vm, sp).map((p) => ({ root: sptepPage(p), gva: ((sptepIndex(p) << 22) | (sptepIndex(sptep) << 12)) >>> 0 }));
}

/** The sptep the translator would use for gva under root (-1 when no leaf table is linked). */
export function spteWalk(vm: Vm, root: number, gva: number): { l1Sptep: number; sptep: number } {
  if (root < 0) return { l1Sptep: -1, sptep: -1 };
  const l1Sptep = root * SPTES_PER_PAGE + (gva >>> 22);
  const l1 = vm.sps.sptes[l1Sptep]!;
  if (!isNonLeafSpte(l1)) return { l1Sptep, sptep: -1 };
  return { l1Sptep, sptep: spteChild(l1) * SPTES_PER_PAGE + ((gva >>> 12) & 0x3ff) };
}

export interface ShadowPageInfo {
  readonly sp: number;
  readonly gfn: number;
  readonly role: number;
  readonly roleText: string;
  readonly level: number;
  readonly rootCount: number;
  /** Present sptes (leaves in a level 0 page, links in a root). */
  readonly present: number;
  readonly parents: number;
}

/** `info sp`: every active shadow page, least recently used first. */
export function shadowPageInfos(vm: Vm): ShadowPageInfo[] {
  const sps = vm.sps;
  return sps.lruOrder().map((sp) => {
    let present = 0;
    const base = sp * SPTES_PER_PAGE;
    for (let i = 0; i < SPTES_PER_PAGE; i++) if (sps.sptes[base + i] !== 0) present++;
    const role = sps.role[sp]!;
    return {
      sp,
      gfn: sps.gfn[sp]!,
      role,
      roleText: roleToString(role),
      level: roleLevel(role),
      rootCount: sps.rootCount[sp]!,
      present,
      parents: rmapCount(sps.pool, sps.parents, sp),
    };
  });
}

/** Present leaf sptes of the whole VM (every rmap entry counted once). */
export function countLeafSptes(vm: Vm): number {
  let n = 0;
  const sps = vm.sps;
  for (const sp of sps.lruOrder()) {
    if (roleLevel(sps.role[sp]!) !== 0) continue;
    const base = sp * SPTES_PER_PAGE;
    for (let i = 0; i < SPTES_PER_PAGE; i++) if (isLeafSpte(sps.sptes[base + i]!)) n++;
  }
  return n;
}
