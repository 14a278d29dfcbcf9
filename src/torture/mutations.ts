// Evidence that the campaign catches what it claims to: every safety mechanism has a
// VmDebug switch that turns it off (a mutation), and each mutation must make some
// scenario fail. A mutation no scenario kills is a missing scenario, or a switch
// that changes nothing: both are bugs.

import type { KvmProtocol } from '../kvm/vm.js';
import type { Mutation } from './scenario.js';
import type { GuestSpec } from './guest.js';

export interface MutationInfo {
  name: Mutation;
  /** The mechanism the switch removes. */
  mechanism: string;
  /** Where the mechanism exists (a pin VM has no notifier, modern no page reference). */
  protocols: readonly KvmProtocol[];
}

export const MUTATIONS: readonly MutationInfo[] = [
  { name: 'noRetry', mechanism: 'fault retry (sequence, in-progress, memslot generation)', protocols: ['modern', 'v7', 'pin'] },
  { name: 'noSeqRecheck', mechanism: 'mmu_invalidate_seq recheck under mmu_lock', protocols: ['modern', 'v7'] },
  { name: 'noInProgressCheck', mechanism: 'mmu_invalidate_in_progress check', protocols: ['modern', 'v7'] },
  { name: 'noRangeStartZap', mechanism: 'zap in invalidate_range_start (moved to range_end)', protocols: ['modern', 'v7'] },
  { name: 'noMemslotWait', mechanism: 'memslot update waits for no active invalidation', protocols: ['modern', 'v7'] },
  { name: 'noFlushBeforeUnlock', mechanism: 'TLB flush before range_start drops mmu_lock', protocols: ['modern', 'v7'] },
  { name: 'noRmapAdd', mechanism: 'rmap add of a new leaf spte', protocols: ['modern', 'v7', 'pin'] },
  { name: 'noRmapRemove', mechanism: 'rmap remove of a dropped leaf spte', protocols: ['modern', 'v7', 'pin'] },
  { name: 'noDirtyCarry', mechanism: 'dirty carry from a zapped spte to the page', protocols: ['modern', 'v7'] },
  { name: 'noAgeClear', mechanism: 'aging clears spte accessed bits', protocols: ['modern', 'v7'] },
  { name: 'noAgeFlush', mechanism: 'aging flushes the TLB entries of young pages', protocols: ['modern', 'v7'] },
  { name: 'noReleaseZap', mechanism: 'release zaps every spte', protocols: ['modern', 'v7'] },
  { name: 'noReleaseBalance', mechanism: 'release balances the invalidation counters', protocols: ['modern', 'v7'] },
  { name: 'noPageRef', mechanism: 'v7: the page reference a leaf spte owns', protocols: ['v7'] },
  { name: 'noPin', mechanism: 'pin: the pin a leaf spte owns', protocols: ['pin'] },
  { name: 'noUnregisterSync', mechanism: 'host: mmu_notifier_unregister waits out SRCU (synchronize_srcu)', protocols: ['modern', 'v7', 'pin'] },
  // The race needs a range around try_to_unmap, which the 2008 notifier does not have.
  { name: 'noTakeAllLocks', mechanism: 'host: mmu_notifier_register takes mm_take_all_locks (no join inside a range)', protocols: ['modern', 'pin'] },
];

export function mutationByName(name: string): MutationInfo | undefined {
  return MUTATIONS.find((m) => m.name === name);
}

/** One cell of the kill matrix: a mutation against one scenario in one protocol, seed after seed. */
export interface KillSearch {
  mutation: Mutation;
  scenario: string;
  protocol: KvmProtocol;
  policy: 'random' | 'pct';
  preemptions: number;
  seedFrom: number;
  seedTo: number;
  /** For the cell named guest:FILE. */
  guest?: GuestSpec;
}

export interface KillResult extends KillSearch {
  /** The first seed that failed, or null: the mutation survived this cell. */
  killedAt: number | null;
  /** Runs until the kill (or all of them). */
  runs: number;
  signature?: string;
}

export interface KillRow {
  mutation: MutationInfo;
  cells: KillResult[];
  /** The cell that needed the fewest runs, or null: a survivor. */
  first: KillResult | null;
}

export function killRows(results: readonly KillResult[]): KillRow[] {
  return MUTATIONS.filter((m) => results.some((r) => r.mutation === m.name)).map((m) => {
    const cells = results.filter((r) => r.mutation === m.name);
    const killed = cells.filter((c) => c.killedAt !== null).sort((a, b) => a.runs - b.runs);
    return { mutation: m, cells, first: killed[0] ?? null };
  });
}

export function formatKillMatrix(rows: readonly KillRow[], scenarios: readonly string[]): string {
  const out: string[] = [];
  const short = scenarios.map((s, i) => `S${i + 1}`);
  out.push(`scenarios: ${scenarios.map((s, i) => `${short[i]} ${s}`).join(', ')}`);
  out.push(`cells: the seed that killed the mutation in modern/v7/pin ('.' survived, ' ' not applicable)`);
  const w = Math.max(...rows.map((r) => r.mutation.name.length), 8);
  const cellW = 14;
  out.push(`${'mutation'.padEnd(w)}  ${short.map((s) => s.padEnd(cellW)).join('')}first kill`);
  for (const r of rows) {
    const cells = scenarios.map((s) => {
      const per = (['modern', 'v7', 'pin'] as const).map((p) => {
        const c = r.cells.find((x) => x.scenario === s && x.protocol === p);
        return c === undefined ? ' ' : c.killedAt === null ? '.' : String(c.killedAt);
      });
      return per.join('/').padEnd(cellW);
    });
    const first = r.first === null ? 'SURVIVED' : `${r.first.scenario}/${r.first.protocol} seed ${r.first.killedAt} after ${r.first.runs} run(s): ${r.first.signature ?? ''}`;
    out.push(`${r.mutation.name.padEnd(w)}  ${cells.join('')}${first}`);
  }
  const survivors = rows.filter((r) => r.first === null);
  out.push(
    survivors.length === 0
      ? `every mutation killed (${rows.length} of ${rows.length})`
      : `${survivors.length} mutation(s) survived: ${survivors.map((r) => `${r.mutation.name} (${r.mutation.mechanism})`).join(', ')}: a missing scenario or a switch that changes nothing`,
  );
  return out.join('\n') + '\n';
}
