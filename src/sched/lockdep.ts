// Counterpart: kernel/locking/lockdep.c (the dependency graph only)
//
// Lock classes are lock names unless a lock is given a lockClass: every instance named
// 'mmu_lock' is one class, as every kvm->mmu_lock is one class in the kernel. An edge A -> B means "some thread took B
// while holding A". Taking B while holding A when a path B ->* A already exists is an
// inversion: two threads running those paths at the same moment can deadlock, whether
// or not this particular run interleaved them badly. That is why it is reported at
// acquire time, before any blocking.
//
// SRCU joins the graph as in the kernel: an open read section counts as held (a
// reader that takes L adds srcu -> L), and synchronize() acquires the srcu class
// (holding L while synchronizing adds L -> srcu). srcu_read_lock itself never waits,
// so it adds no edge. L -> srcu -> L is then the classic "synchronize_srcu under a
// lock that a reader also takes" deadlock.

import type { SimThread } from './core.js';

interface Edge {
  /** Thread that first took `to` while holding `from`. */
  readonly thread: string;
}

export interface InversionReport {
  readonly message: string;
}

export class Lockdep {
  private readonly edges = new Map<string, Map<string, Edge>>();
  private readonly reported = new Set<string>();

  /**
   * Called before `t` tries to take `lock`. Trylocks add no dependency on the locks
   * already held, because a trylock cannot wait (the kernel skips them the same way).
   * Returns a description of a newly found inversion, or null.
   */
  acquire(t: SimThread, lock: { readonly lockClass: string }, trylock: boolean): InversionReport | null {
    if (trylock) return null;
    let found: InversionReport | null = null;
    const held = t.heldLocks;
    const reads = t.srcuReads;
    const to = lock.lockClass;
    for (let i = 0; i < held.length + reads.length; i++) {
      const from = i < held.length ? held[i]!.lockClass : reads[i - held.length]!.srcu.lockClass;
      // Same class nested (two processes' page-table locks): the kernel needs a
      // nesting annotation; we accept it rather than guess.
      if (from === to) continue;
      const back = this.path(to, from);
      if (back !== null) {
        const key = from < to ? `${from}\u0000${to}` : `${to}\u0000${from}`;
        if (!this.reported.has(key) && found === null) {
          this.reported.add(key);
          const other = back.map((e) => `'${e.to}' while holding '${e.from}' (thread '${e.edge.thread}')`).join(', then ');
          found = {
            message:
              `thread '${t.name}' takes '${to}' while holding '${from}', ` +
              `but earlier ${back.length > 1 ? 'a chain took ' : 'thread \'' + back[0]!.edge.thread + '\' took '}` +
              (back.length > 1 ? other : `'${back[0]!.to}' while holding '${back[0]!.from}'`) +
              `: possible ABBA deadlock between '${from}' and '${to}'`,
          };
        }
      }
      let out = this.edges.get(from);
      if (out === undefined) this.edges.set(from, (out = new Map()));
      if (!out.has(to)) out.set(to, { thread: t.name });
    }
    return found;
  }

  /** Shortest chain of recorded edges from -> ... -> to, or null. */
  private path(from: string, to: string): Array<{ from: string; to: string; edge: Edge }> | null {
    const prev = new Map<string, string>();
    const queue = [from];
    prev.set(from, from);
    for (let qi = 0; qi < queue.length; qi++) {
      const n = queue[qi]!;
      const out = this.edges.get(n);
      if (out === undefined) continue;
      for (const m of out.keys()) {
        if (prev.has(m)) continue;
        prev.set(m, n);
        if (m === to) {
          const chain: Array<{ from: string; to: string; edge: Edge }> = [];
          let cur = m;
          while (cur !== from) {
            const p = prev.get(cur)!;
            chain.unshift({ from: p, to: cur, edge: this.edges.get(p)!.get(cur)! });
            cur = p;
          }
          return chain;
        }
        queue.push(m);
      }
    }
    return null;
  }

  /** Recorded order as "A -> B (thread)" lines, for dump() and the console. */
  dump(): string[] {
    const lines: string[] = [];
    for (const [from, out] of this.edges) for (const [to, e] of out) lines.push(`${from} -> ${to} (${e.thread})`);
    return lines;
  }
}
