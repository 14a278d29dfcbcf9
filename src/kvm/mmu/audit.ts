// Counterpart: arch/x86/kvm/mmu_audit.c (removed upstream in 5.12; audit_mappings, audit_rmap,
// inspect_spte_has_rmap)
//
// Checks the invariants listed in shadow-pages.ts, both ways, and returns every
// problem found as a sentence (empty list = consistent). Read-only and slow (walks
// every spte and every rmap head): for tests, the torture harness and `info mmu audit`,
// with mmu_lock held or between runs, never inside a critical section that is
// mid-change.

import type { Memslots } from '../memslots.js';
import { KVM_MEM_READONLY, RMAP_CHUNK_SHIFT, RMAP_SUPER_SHIFT } from '../memslots.js';
import { forEachRmap } from './rmap.js';
import type { ShadowPages } from './shadow-pages.js';
import { SPTES_PER_PAGE, SP_ACTIVE, SP_FREE, SP_ZAPPED, SP_ZAPPED_ROOT, roleLevel, sptepIndex, sptepPage } from './shadow-pages.js';
import { checkSpte, isLeafSpte, isNonLeafSpte, isWritable, spteChild, spteToString } from './spte.js';

export function auditMmu(memslots: Memslots, sps: ShadowPages, limit = 100): string[] {
  const problems: string[] = [];
  const report = (msg: string): void => {
    if (problems.length < limit) problems.push(msg);
  };
  const where = (sptep: number): string => `sptep ${sptep} (sp ${sptepPage(sptep)}[${sptepIndex(sptep)}])`;
  const cap = sps.capacity;

  // Descriptor chains first: a cycle would make every later walk spin forever, so
  // stop there. Every descriptor in use must be reached from exactly one head.
  const pool = sps.pool;
  const seen = new Uint8Array(pool.capacity);
  let reached = 0;
  let cyclic = false;
  const walkChains = (heads: Int32Array, name: string): void => {
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i]!;
      for (let d = h < 0 ? -h - 1 : -1; d !== -1; d = pool.next[d]!) {
        if (d >= pool.capacity) {
          report(`${name} ${i}: descriptor ${d} out of range`);
          cyclic = true;
          break;
        }
        if (seen[d]) {
          report(`${name} ${i}: descriptor ${d} is reachable twice (shared or cyclic chain)`);
          cyclic = true;
          break;
        }
        seen[d] = 1;
        reached++;
      }
    }
  };
  for (const slot of memslots.all()) {
    walkChains(slot.rmap, `rmap of slot ${slot.id} page`);
    const chunks = new Uint16Array(slot.rmapChunkUsed.length);
    const supers = new Uint16Array(slot.rmapSuperUsed.length);
    for (let i = 0; i < slot.npages; i++) {
      if (slot.rmap[i] === 0) continue;
      chunks[i >>> RMAP_CHUNK_SHIFT]!++;
      supers[i >>> RMAP_SUPER_SHIFT]!++;
    }
    // Only an undercount is dangerous (range walks would skip mapped gfns); an
    // overcount costs a look at an empty chunk.
    if (chunks.some((n, c) => n > slot.rmapChunkUsed[c]!) || supers.some((n, c) => n > slot.rmapSuperUsed[c]!)) {
      report(`slot ${slot.id}: rmap chunk counts are below the non-empty heads: range walks would skip mapped gfns`);
    }
  }
  walkChains(sps.parents, 'parent list of sp');
  if (reached !== pool.inUse) report(`${pool.inUse} rmap descriptors in use but ${reached} reachable: ${pool.inUse - reached} leaked`);
  if (cyclic) return problems;

  // Every list entry, seen from the lists: gfn rmaps then parent lists.
  const inRmap = new Map<number, number>(); // sptep -> times found in the rmap of its gfn
  for (const slot of memslots.all()) {
    for (let i = 0; i < slot.npages; i++) {
      const gfn = slot.baseGfn + i;
      forEachRmap(sps.pool, slot.rmap, i, (sptep) => {
        const sp = sptepPage(sptep);
        const spte = sp < cap ? sps.sptes[sptep]! : 0;
        if (sp >= cap || sps.state[sp] !== SP_ACTIVE) report(`rmap of gfn 0x${gfn.toString(16)}: ${where(sptep)} is not in an active page`);
        else if (!isLeafSpte(spte)) report(`rmap of gfn 0x${gfn.toString(16)}: ${where(sptep)} holds ${spteToString(spte)}, not a leaf`);
        else if (sps.spteGfn[sptep] !== gfn) {
          report(`rmap of gfn 0x${gfn.toString(16)}: ${where(sptep)} maps gfn 0x${sps.spteGfn[sptep]!.toString(16)}`);
        }
        if (sps.spteGfn[sptep] === gfn) inRmap.set(sptep, (inRmap.get(sptep) ?? 0) + 1);
      });
    }
  }
  const inParents = new Map<number, number>();
  for (let sp = 0; sp < cap; sp++) {
    forEachRmap(sps.pool, sps.parents, sp, (p) => {
      const spte = sptepPage(p) < cap ? sps.sptes[p]! : 0;
      if (sps.state[sp] !== SP_ACTIVE) report(`sp ${sp} is not active but lists parent ${where(p)}`);
      if (sptepPage(p) >= cap || sps.state[sptepPage(p)] !== SP_ACTIVE) report(`parent ${where(p)} of sp ${sp} is not in an active page`);
      else if (!isNonLeafSpte(spte) || spteChild(spte) !== sp) report(`parent ${where(p)} of sp ${sp} holds ${spteToString(spte)}`);
      else inParents.set(p, (inParents.get(p) ?? 0) + 1);
    });
  }

  // Every spte, seen from the pages.
  let active = 0;
  let free = 0;
  for (let sp = 0; sp < cap; sp++) {
    const st = sps.state[sp]!;
    const base = sp * SPTES_PER_PAGE;
    if (st !== SP_ACTIVE) {
      if (st === SP_FREE) free++;
      else if (st !== SP_ZAPPED && st !== SP_ZAPPED_ROOT) report(`sp ${sp} has unknown state ${st}`);
      if (st === SP_ZAPPED_ROOT && sps.rootCount[sp]! <= 0) report(`sp ${sp} is a zapped root nobody holds (leaked)`);
      for (let i = 0; i < SPTES_PER_PAGE; i++) {
        if (sps.sptes[base + i] !== 0) {
          report(`${where(base + i)} in a ${st === SP_FREE ? 'free' : 'zapped'} page holds ${spteToString(sps.sptes[base + i]!)}`);
          break;
        }
      }
      if (sps.parents[sp] !== 0) report(`sp ${sp} is not active but has a parent list`);
      continue;
    }
    active++;
    const level = roleLevel(sps.role[sp]!);
    for (let i = 0; i < SPTES_PER_PAGE; i++) {
      const sptep = base + i;
      const spte = sps.sptes[sptep]!;
      if (spte === 0) continue;
      const bad = checkSpte(spte);
      if (bad !== null) {
        report(`${where(sptep)}: ${spteToString(spte)}: ${bad}`);
        continue;
      }
      if (isLeafSpte(spte)) {
        if (level !== 0) report(`${where(sptep)}: leaf ${spteToString(spte)} in a level ${level} page`);
        const gfn = sps.spteGfn[sptep]!;
        const slot = memslots.gfnToMemslot(gfn);
        if (slot === undefined) report(`${where(sptep)}: maps gfn 0x${gfn.toString(16)}, which is in no memslot`);
        else if ((slot.flags & KVM_MEM_READONLY) !== 0 && isWritable(spte)) {
          report(`${where(sptep)}: writable mapping of gfn 0x${gfn.toString(16)} in read-only slot ${slot.id}`);
        }
        const n = inRmap.get(sptep) ?? 0;
        if (n !== 1) report(`${where(sptep)}: leaf for gfn 0x${gfn.toString(16)} found ${n} times in that gfn's rmap`);
      } else {
        const child = spteChild(spte);
        if (level !== 1) report(`${where(sptep)}: pointer in a level ${level} page`);
        if (child >= cap || sps.state[child] !== SP_ACTIVE) report(`${where(sptep)}: points at sp ${child}, which is not active`);
        else if (roleLevel(sps.role[child]!) !== level - 1) report(`${where(sptep)}: points at sp ${child} of the wrong level`);
        const n = inParents.get(sptep) ?? 0;
        if (n !== 1) report(`${where(sptep)}: pointer to sp ${child} found ${n} times in its parent list`);
      }
    }
  }
  for (const [sptep, n] of inRmap) {
    if (sptepPage(sptep) < cap && isLeafSpte(sps.sptes[sptep]!) && n > 1) {
      report(`${where(sptep)} appears ${n} times in the rmap of gfn 0x${sps.spteGfn[sptep]!.toString(16)}`);
    }
  }

  // Bookkeeping totals.
  if (active !== sps.nUsedMmuPages) report(`${active} active pages but nUsedMmuPages = ${sps.nUsedMmuPages}`);
  if (free !== sps.nFreePages) report(`${free} free pages but the free stack holds ${sps.nFreePages}`);
  if (sps.hashSize !== active) report(`hash holds ${sps.hashSize} pages, ${active} are active`);
  sps.forEachHashed((gfn, role, sp) => {
    if (sps.state[sp] !== SP_ACTIVE || sps.gfn[sp] !== gfn || sps.role[sp] !== role) {
      report(`hash entry (gfn 0x${gfn.toString(16)}, role ${role}) -> sp ${sp}, which is not that active page`);
    }
  });
  const lru = sps.lruOrder();
  if (lru.length !== active || lru.some((sp) => sps.state[sp] !== SP_ACTIVE)) {
    report(`LRU holds ${lru.length} pages, ${active} are active`);
  }

  return problems;
}
