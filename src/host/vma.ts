// Counterpart: mm/mmap.c + mm/vma.c (the VMA set of one mm: find, gap search, split)
//
// Anonymous private mappings only (no files; fork copies them, fork.ts). hvas are
// unsigned 32-bit byte addresses, page aligned at VMA boundaries, so
// `hva >>> PAGE_SHIFT` is the hva page everywhere. VMAs are kept sorted and non-overlapping; neighbours with
// the same protection are not merged (nothing depends on it).

import type { Task } from '../sched/index.js';
import type { Mm } from './mm.js';
import { PAGE_SIZE } from './pte.js';

export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;

/** The user half a process may map into: [MMAP_MIN_ADDR, TASK_SIZE). */
export const MMAP_MIN_ADDR = 0x1000_0000;
export const TASK_SIZE = 0xf000_0000;

export interface Vma {
  start: number;
  end: number;
  prot: number;
  /** A driver's mapping (mmapDevice): VM_PFNMAP | VM_DONTCOPY, faulted by ops.fault. */
  ops?: VmOperations | undefined;
}

/**
 * vm_operations_struct of a driver mapping (VM_PFNMAP | VM_IO | VM_DONTCOPY |
 * VM_DONTEXPAND, as XPMEM's attach VMA is). Its ptes are special (PTE_SPECIAL): gup,
 * MADV_DONTNEED, fork and reclaim leave them to the driver.
 */
export interface VmOperations {
  readonly name: string;
  /** ->fault with mmap_lock held for read: vmfInsertPfn, or fail. 0 or VM_FAULT_*. May sleep. */
  fault(mm: Mm, hva: number, write: boolean): Task<number>;
  /** ->close, after [start, end) left the VMA set and its ptes were zapped (munmap, exit). May sleep. */
  close?(mm: Mm, start: number, end: number): Task;
}

export function protToString(prot: number): string {
  return (prot & PROT_READ ? 'r' : '-') + (prot & PROT_WRITE ? 'w' : '-') + 'p';
}

export class VmaSet {
  /** Sorted by start. */
  readonly list: Vma[] = [];

  /** find_vma that must contain hva: the VMA with start <= hva < end, if any. */
  find(hva: number): Vma | undefined {
    const l = this.list;
    let lo = 0;
    let hi = l.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = l[mid]!;
      if (hva < v.start) hi = mid - 1;
      else if (hva >= v.end) lo = mid + 1;
      else return v;
    }
    return undefined;
  }

  /** get_unmapped_area, bottom-up first fit. Returns -1 when the space is exhausted. */
  findGap(len: number): number {
    let addr = MMAP_MIN_ADDR;
    for (const v of this.list) {
      if (v.start - addr >= len) return addr;
      if (v.end > addr) addr = v.end;
    }
    return TASK_SIZE - addr >= len ? addr : -1;
  }

  isFree(start: number, end: number): boolean {
    for (const v of this.list) if (v.start < end && start < v.end) return false;
    return true;
  }

  insert(vma: Vma): void {
    let i = 0;
    while (i < this.list.length && this.list[i]!.start < vma.start) i++;
    this.list.splice(i, 0, vma);
  }

  /** Splits VMAs so that `start` and `end` fall on boundaries; returns the VMAs inside. */
  private splitAround(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = 0; i < this.list.length; i++) {
      const v = this.list[i]!;
      if (v.end <= start || v.start >= end) continue;
      if (v.start < start) {
        this.list.splice(i + 1, 0, { start, end: v.end, prot: v.prot, ops: v.ops });
        v.end = start;
        continue;
      }
      if (v.end > end) {
        this.list.splice(i + 1, 0, { start: end, end: v.end, prot: v.prot, ops: v.ops });
        v.end = end;
      }
      out.push(v);
    }
    return out;
  }

  /** Removes [start, end) from the set; returns the removed pieces. */
  remove(start: number, end: number): Vma[] {
    const inside = this.splitAround(start, end);
    for (const v of inside) this.list.splice(this.list.indexOf(v), 1);
    return inside;
  }

  /** Sets the protection of [start, end); returns the VMAs now covering parts of it. */
  protect(start: number, end: number, prot: number): Vma[] {
    const inside = this.splitAround(start, end);
    for (const v of inside) v.prot = prot;
    return inside;
  }

  /** Bytes mapped (total_vm). */
  get totalBytes(): number {
    let n = 0;
    for (const v of this.list) n += v.end - v.start;
    return n;
  }

  dump(): string[] {
    return this.list.map(
      (v) => `${v.start.toString(16).padStart(8, '0')}-${v.end.toString(16).padStart(8, '0')} ${protToString(v.prot)} ${(v.end - v.start) / 1024}kB${v.ops ? ` ${v.ops.name}` : ''}`,
    );
  }
}

export function pageAlignUp(len: number): number {
  return Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
}

export function isPageAligned(hva: number): boolean {
  return hva % PAGE_SIZE === 0;
}
