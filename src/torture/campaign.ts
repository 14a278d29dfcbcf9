// Campaigns: many runs of the named scenarios, split into shards, summarized.
//
// The unit of work is one run: (scenario, protocol, seed) under random or pct, or one
// whole exhaustive search (scenario, protocol). Units are listed in a fixed order
// (seed, then scenario, then protocol; exhaustive: scenario, then protocol), and a
// shard I/N (1-based) takes the seeds with seed % N === I - 1 (exhaustive: the units
// with index % N === I - 1). Striding rather than blocks spreads slow and fast seeds
// evenly over the shards. A run depends on its unit alone, so the records of any
// sharding, merged, are the records of the unsharded campaign, and a summary is a
// function of the records, sorted.

import { exploreScenario, runScenario } from './scenario.js';
import type { Mutation, PolicyName, Scenario } from './scenario.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { SCENARIOS, scenarioByName } from './scenarios/index.js';
import { guestName, runGuestUnit } from './guest.js';
import type { GuestSpec } from './guest.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export interface CampaignSpec {
  scenarios: readonly string[];
  protocols: readonly KvmProtocol[];
  policy: PolicyName;
  /** Inclusive. Ignored by the exhaustive policy. */
  seedFrom: number;
  seedTo: number;
  preemptions: number;
  mutation?: Mutation | null;
  shard?: Shard;
  /** A whole guest run under pressure, as one more "scenario" (random policy only). */
  guest?: GuestSpec;
}

/** One line of results.jsonl. */
export interface RunRecord {
  scenario: string;
  protocol: KvmProtocol;
  policy: PolicyName;
  /** random/pct: the seed; exhaustive: 0. */
  seed: number;
  preemptions: number;
  mutation: Mutation | null;
  ok: boolean;
  /** Runs this record stands for: 1, or the schedules an exhaustive search ran. */
  runs: number;
  failures: number;
  signature?: string;
  kind?: string;
  problems?: string[];
  note?: string;
  steps: number;
  scheduleHash: string;
  /** exhaustive: the first failing schedule; every search: whether it covered the bound. */
  schedule?: number[];
  complete?: boolean;
  guest?: GuestSpec;
}

export interface Unit {
  /** The scenario's name, or guest:FILE. */
  name: string;
  scenario: Scenario | null;
  guest?: GuestSpec;
  protocol: KvmProtocol;
  seed: number;
}

function scenariosOf(names: readonly string[]): Scenario[] {
  if (names.length === 0) return [];
  if (names.length === 1 && names[0] === 'all') return [...SCENARIOS];
  return names.map((n) => {
    const s = scenarioByName(n);
    if (s === undefined) throw new Error(`unknown scenario '${n}' (shadowvisor torture --list names them)`);
    return s;
  });
}

/** The units of a campaign's shard, in campaign order. */
export function unitsOf(spec: CampaignSpec): Unit[] {
  const scenarios = scenariosOf(spec.scenarios);
  const shard = spec.shard ?? { index: 1, count: 1 };
  const mine = (n: number): boolean => n % shard.count === shard.index - 1;
  const units: Unit[] = [];
  if (spec.policy === 'exhaustive') {
    let u = 0;
    for (const scenario of scenarios) {
      if (!scenario.exhaustive) continue;
      for (const protocol of spec.protocols) {
        if (scenario.protocols.includes(protocol) && mine(u)) units.push({ name: scenario.name, scenario, protocol, seed: 0 });
        u++;
      }
    }
    return units;
  }
  for (let seed = spec.seedFrom; seed <= spec.seedTo; seed++) {
    if (!mine(seed)) continue;
    for (const scenario of scenarios) for (const protocol of spec.protocols) if (scenario.protocols.includes(protocol)) units.push({ name: scenario.name, scenario, protocol, seed });
    if (spec.guest) for (const protocol of spec.protocols) units.push({ name: guestName(spec.guest), scenario: null, guest: spec.guest, protocol, seed });
  }
  return units;
}

export function runUnit(u: Unit, spec: Pick<CampaignSpec, 'policy' | 'preemptions' | 'mutation'>): RunRecord {
  const mutation = spec.mutation ?? null;
  const base = { scenario: u.name, protocol: u.protocol, policy: spec.policy, seed: u.seed, preemptions: spec.preemptions, mutation, ...(u.guest ? { guest: u.guest } : {}) };
  if (u.scenario === null) {
    return oneRunRecord(base, runGuestUnit(u.guest!, u.protocol, u.seed, mutation));
  }
  if (spec.policy === 'exhaustive') {
    const r = exploreScenario(u.scenario, { protocol: u.protocol, preemptions: spec.preemptions, mutation, stopOnFailure: true });
    const f = r.failures[0];
    return {
      ...base,
      ok: f === undefined,
      runs: r.schedules,
      failures: r.failures.length,
      ...(f ? { signature: f.verdict.signature!, kind: f.verdict.kind!, problems: f.verdict.problems.slice(0, 3), schedule: f.schedule } : {}),
      steps: 0,
      scheduleHash: '',
      complete: r.complete,
    };
  }
  return oneRunRecord(base, runScenario(u.scenario, { protocol: u.protocol, policy: spec.policy, seed: u.seed, preemptions: spec.preemptions, mutation }));
}

/** The record of one seeded run, a scenario's or a whole guest's. */
function oneRunRecord<B extends object>(
  base: B,
  o: { verdict: { ok: boolean; signature?: string; kind?: string; problems: string[]; note?: string }; steps: number; scheduleHash: string },
) {
  const v = o.verdict;
  return {
    ...base,
    ok: v.ok,
    runs: 1,
    failures: v.ok ? 0 : 1,
    ...(v.ok ? {} : { signature: v.signature!, kind: v.kind!, problems: v.problems.slice(0, 3) }),
    ...(v.note !== undefined ? { note: v.note } : {}),
    steps: o.steps,
    scheduleHash: o.scheduleHash,
  };
}

const SCENARIO_ORDER = new Map<string, number>(SCENARIOS.map((s, i) => [s.name, i]));
const PROTOCOL_ORDER: Record<string, number> = { modern: 0, v7: 1, pin: 2 };

/** Campaign order, whatever order the shards (or workers) finished in. */
export function sortRecords(records: RunRecord[]): RunRecord[] {
  return records.sort(
    (a, b) =>
      (a.mutation ?? '').localeCompare(b.mutation ?? '') ||
      a.policy.localeCompare(b.policy) ||
      (SCENARIO_ORDER.get(a.scenario) ?? 99) - (SCENARIO_ORDER.get(b.scenario) ?? 99) ||
      (PROTOCOL_ORDER[a.protocol] ?? 9) - (PROTOCOL_ORDER[b.protocol] ?? 9) ||
      a.seed - b.seed,
  );
}

export interface SummaryRow {
  scenario: string;
  protocol: KvmProtocol;
  policy: PolicyName;
  mutation: Mutation | null;
  runs: number;
  failures: number;
  signatures: Array<{ signature: string; count: number; first: RunRecord }>;
  complete?: boolean;
}

export function summarize(records: readonly RunRecord[]): SummaryRow[] {
  const rows = new Map<string, SummaryRow>();
  for (const r of sortRecords([...records])) {
    const key = `${r.mutation ?? ''}|${r.policy}|${r.scenario}|${r.protocol}`;
    let row = rows.get(key);
    if (row === undefined) {
      row = { scenario: r.scenario, protocol: r.protocol, policy: r.policy, mutation: r.mutation, runs: 0, failures: 0, signatures: [] };
      rows.set(key, row);
    }
    row.runs += r.runs;
    row.failures += r.failures;
    if (r.complete !== undefined) row.complete = (row.complete ?? true) && r.complete;
    if (r.signature !== undefined) {
      const sig = row.signatures.find((s) => s.signature === r.signature);
      if (sig) sig.count++;
      else row.signatures.push({ signature: r.signature, count: 1, first: r });
    }
  }
  return [...rows.values()];
}

/** The options that name a whole guest, as `torture` and `replay` take them. */
function guestArgs(g: GuestSpec): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  const image = g.linux ? [`--kernel ${q(g.path)}`, ...(g.linux.initrd !== undefined ? [`--initrd ${q(g.linux.initrd)}`] : []), ...(g.linux.append !== undefined ? [`--append ${q(g.linux.append)}`] : [])] : [`--guest ${q(g.path)}`];
  return [...image, `--guest-mem ${g.guestMem / 1024}K`, `--host-mem ${g.hostMem / 1024}K`].join(' ');
}

/** The command line that re-runs a failing record bit for bit. */
export function reproduceCommand(r: RunRecord): string {
  const parts = ['shadowvisor replay', r.guest ? guestArgs(r.guest) : `--scenario ${r.scenario}`, `--protocol ${r.protocol}`];
  if (r.guest) parts.push(`--seed ${r.seed}`);
  else if (r.policy === 'exhaustive') parts.push(`--schedule ${(r.schedule ?? []).join(',') || '-'}`);
  else parts.push(`--policy ${r.policy}`, `--seed ${r.seed}`);
  if (r.policy === 'pct') parts.push(`--preemptions ${r.preemptions}`);
  if (r.mutation) parts.push(`--mutation ${r.mutation}`);
  return parts.join(' ');
}

export function formatSummary(rows: readonly SummaryRow[]): string {
  const head = ['scenario', 'protocol', 'policy', 'runs', 'failures', 'signatures'];
  const body = rows.map((r) => [
    r.scenario + (r.mutation ? ` [${r.mutation}]` : ''),
    r.protocol,
    r.policy,
    String(r.runs) + (r.complete === false ? '+' : ''),
    String(r.failures),
    String(r.signatures.length),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [line(head), ...body.map(line)];
  for (const r of rows) {
    for (const s of r.signatures) out.push(`  ${r.scenario} ${r.protocol} ${r.policy}: ${s.count}x ${s.signature}`, `    ${reproduceCommand(s.first)}`);
  }
  return out.join('\n') + '\n';
}

/** Parses results.jsonl text (blank lines allowed). */
export function parseRecords(text: string, source: string): RunRecord[] {
  const out: RunRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: unknown;
    try {
      r = JSON.parse(line);
    } catch {
      throw new Error(`${source}:${i + 1}: not a JSON line`);
    }
    const rec = r as Partial<RunRecord>;
    if (typeof rec.scenario !== 'string' || typeof rec.protocol !== 'string' || typeof rec.ok !== 'boolean' || typeof rec.runs !== 'number') {
      throw new Error(`${source}:${i + 1}: not a torture record (scenario, protocol, ok, runs)`);
    }
    out.push(rec as RunRecord);
  });
  return out;
}

/** Merged records of several shards: duplicates (the same unit twice) are an error. */
export function mergeRecords(lists: ReadonlyArray<readonly RunRecord[]>): RunRecord[] {
  const seen = new Set<string>();
  const all: RunRecord[] = [];
  for (const list of lists) {
    for (const r of list) {
      const key = `${r.mutation ?? ''}|${r.policy}|${r.preemptions}|${r.scenario}|${r.protocol}|${r.seed}`;
      if (seen.has(key)) throw new Error(`the run ${key.replace(/\|/g, ' ')} is in more than one file (overlapping shards?)`);
      seen.add(key);
      all.push(r);
    }
  }
  return sortRecords(all);
}
