// `shadowvisor torture`, `shadowvisor torture merge` and `shadowvisor replay`:
// argument parsing, progress and printing. The work is in campaign.ts, jobs.ts
// and scenario.ts, so tests drive it without a process.
//
// Exit status: 0 when every run passed (every mutation was killed), 1 when some
// failed (survived), 2 on a usage error (cli.ts).

import { readFileSync, writeFileSync } from 'node:fs';
import { UsageError, flag, parseCommandArgs, parseCount, parsePositiveCount, parseSize, stringOption } from '../args.js';
import { existsSync } from 'node:fs';
import { guestName, runGuestUnit } from './guest.js';
import type { GuestSpec } from './guest.js';
import type { CommandIo } from '../cli-io.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { formatSummary, mergeRecords, parseRecords, reproduceCommand, sortRecords, summarize, unitsOf } from './campaign.js';
import type { CampaignSpec, RunRecord, Shard, SummaryRow } from './campaign.js';
import type { Job, KillJob, RunBatch } from './jobs.js';
import { MUTATIONS, formatKillMatrix, killRows, mutationByName } from './mutations.js';
import type { KillResult } from './mutations.js';
import { runJobs } from './pool.js';
import { POLICIES, PROTOCOLS, runScenario } from './scenario.js';
import type { Mutation, PolicyName } from './scenario.js';
import { SCENARIOS, scenarioByName } from './scenarios/index.js';
import { formatRecord } from './trace.js';

export interface TortureIo extends CommandIo {
  /** Progress redraws one line on a terminal; plain lines otherwise. */
  isTTY?: boolean;
  now?: () => number;
}

export const TORTURE_USAGE = `usage: shadowvisor torture [options]          swap-correctness campaign over the named scenarios
       shadowvisor torture --list                   the scenarios, what each reproduces
       shadowvisor torture --mutations [options]    the kill matrix: every safety switch against the scenarios
                                                    (with --guest also against 3 seeds of a whole guest)
       shadowvisor torture merge FILE.jsonl...      one summary from the --out files of several shards

options:
  --scenario NAME[,NAME...]|all   default all
  --seeds A..B | N                seeds A to B (N: 1..N); default 1..100 (--mutations: 1..50 per cell)
  --protocol P[,P...]             modern, v7, pin; default all three
  --policy random|pct|exhaustive  default random (exhaustive ignores --seeds)
  --preemptions K                 pct depth - 1, exhaustive bound; default 2
  --mutation NAME                 run with one safety switch off (see --mutations)
  --guest FILE.elf                a whole S-mode guest too (only it, without --scenario), judged
                                  against a run with host RAM to spare (exit status, output, and
                                  the hash of guest memory at the end); random policy only
  --kernel Image [--initrd FILE] [--append ARGS]
                                  the same with a Linux guest (a boot is seconds: few seeds)
  --guest-mem SIZE --host-mem SIZE  its RAM and the host's (default 4M and 2M, Linux 64M and 24M)
  --shard I/N                     this machine's share: seeds with seed % N == I - 1
                                  (exhaustive: searches by index); e.g. --shard $((JOB_COMPLETION_INDEX+1))/N
  --workers N                     worker threads (default 1: this thread)
  --out FILE.jsonl                one JSON record per run, for merge
  --json                          the summary as JSON on stdout
`;

export const REPLAY_USAGE = `usage: shadowvisor replay --scenario S --protocol P (--policy random|pct --seed N | --schedule C,C,...) [options]
       shadowvisor replay --guest FILE.elf --guest-mem SIZE --host-mem SIZE --protocol P --seed N [options]
       shadowvisor replay --kernel Image [--initrd FILE] [--append ARGS] --guest-mem SIZE --host-mem SIZE --protocol P --seed N

  re-runs one torture run bit for bit and prints its verdict and last events
  --preemptions K      as the campaign had it (pct)
  --mutation NAME      as the campaign had it
  --events N           last events to print (default 40)
  --trace-out FILE     the whole event log, one JSON record per line
  --json               the verdict and the last events as JSON
`;

function parseList<T extends string>(option: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${option}: empty list`);
  for (const it of items) if (!allowed.includes(it as T)) throw new UsageError(`${option}: '${it}' is not one of ${allowed.join(', ')}`);
  return [...new Set(items)] as T[];
}

export function parseSeeds(text: string): { from: number; to: number } {
  const m = /^(\d+)\.\.(\d+)$/.exec(text.trim());
  if (m) {
    const from = parseCount('--seeds', m[1]!);
    const to = parseCount('--seeds', m[2]!);
    if (to < from) throw new UsageError(`--seeds: ${text} is empty (write A..B with A <= B)`);
    return { from, to };
  }
  return { from: 1, to: parsePositiveCount('--seeds', text) };
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new UsageError(`--shard: '${text}' is not I/N (1 <= I <= N)`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!(count >= 1 && index >= 1 && index <= count)) throw new UsageError(`--shard: ${text}: I must be between 1 and N`);
  return { index, count };
}

function scenarioNames(text: string | undefined): string[] {
  if (text === undefined || text === 'all') return ['all'];
  return parseList('--scenario', text, SCENARIOS.map((s) => s.name));
}

function parseMutation(text: string | undefined): Mutation | null {
  if (text === undefined) return null;
  const m = mutationByName(text);
  if (m === undefined) throw new UsageError(`--mutation: '${text}' is not one of ${MUTATIONS.map((x) => x.name).join(', ')}`);
  return m.name;
}

const TORTURE_OPTIONS = {
  scenario: { type: 'string' },
  seeds: { type: 'string' },
  protocol: { type: 'string' },
  policy: { type: 'string' },
  preemptions: { type: 'string' },
  mutation: { type: 'string' },
  shard: { type: 'string' },
  workers: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  list: { type: 'boolean' },
  mutations: { type: 'boolean' },
  guest: { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  'guest-mem': { type: 'string' },
  'host-mem': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function guestSpec(values: Record<string, string | boolean | undefined>): GuestSpec | undefined {
  const elf = stringOption(values, 'guest');
  const kernel = stringOption(values, 'kernel');
  if (elf !== undefined && kernel !== undefined) throw new UsageError('--guest and --kernel: give one');
  const path = elf ?? kernel;
  if (kernel === undefined) for (const o of ['initrd', 'append']) if (stringOption(values, o) !== undefined) throw new UsageError(`--${o} goes with --kernel`);
  if (path === undefined) {
    for (const o of ['guest-mem', 'host-mem']) if (stringOption(values, o) !== undefined) throw new UsageError(`--${o} goes with --guest or --kernel`);
    return undefined;
  }
  const initrd = stringOption(values, 'initrd');
  const append = stringOption(values, 'append');
  for (const [o, f] of [[kernel ? '--kernel' : '--guest', path], ['--initrd', initrd]] as const) {
    if (f !== undefined && !existsSync(f)) throw new UsageError(`${o}: ${f}: no such file`);
  }
  const gm = stringOption(values, 'guest-mem');
  const hm = stringOption(values, 'host-mem');
  // Linux's defaults are the README's pressure run; an S-mode guest's swap at 4M over 2M.
  const [gDefault, hDefault] = kernel !== undefined ? [64 << 20, 24 << 20] : [4 << 20, 2 << 20];
  return {
    path,
    guestMem: gm === undefined ? gDefault : parseSize('--guest-mem', gm),
    hostMem: hm === undefined ? hDefault : parseSize('--host-mem', hm),
    ...(kernel !== undefined ? { linux: { ...(initrd !== undefined ? { initrd } : {}), ...(append !== undefined ? { append } : {}) } } : {}),
  };
}

function wrap(text: string, indent: string, width = 96): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && indent.length + line.length + 1 + w.length > width) {
      lines.push(indent + line);
      line = w;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines.join('\n');
}

export function listText(): string {
  const out: string[] = [];
  for (const s of SCENARIOS) {
    out.push(`${s.name}  [${s.protocols.join(', ')}${s.exhaustive ? '; exhaustive' : ''}]`);
    out.push(wrap(s.description, '    '));
    out.push(wrap(`Reproduces: ${s.reproduces}`, '    '));
    out.push('');
  }
  return out.join('\n');
}

class Progress {
  private done = 0;
  private failures = 0;
  private lastPrint = -1;
  private readonly start: number;
  constructor(
    private readonly io: TortureIo,
    private readonly total: number,
    private readonly what: string,
  ) {
    this.start = this.clock();
  }
  private clock(): number {
    return this.io.now?.() ?? performance.now();
  }
  add(runs: number, failures: number): void {
    this.done += runs;
    this.failures += failures;
    const t = this.clock();
    if (this.io.isTTY) {
      if (t - this.lastPrint < 100 && this.done < this.total) return;
      this.lastPrint = t;
      this.io.stderr(`\r${this.line(t)}\x1b[K`);
    } else {
      // Plain lines: about ten over the campaign, and the last.
      const step = Math.max(1, Math.ceil(this.total / 10));
      if (Math.floor(this.done / step) === Math.floor((this.done - runs) / step) && this.done < this.total) return;
      this.io.stderr(`${this.line(t)}\n`);
    }
  }
  end(): void {
    if (this.io.isTTY) this.io.stderr('\n');
  }
  private line(t: number): string {
    const secs = (t - this.start) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 ? Math.max(0, (this.total - this.done) / rate) : 0;
    const bar = this.io.isTTY ? `[${'#'.repeat(Math.round((20 * this.done) / Math.max(1, this.total))).padEnd(20)}] ` : '';
    return `torture: ${bar}${this.done}/${this.total} ${this.what}, ${this.failures} failed, ${rate.toFixed(rate < 10 ? 1 : 0)} ${this.what}/s, ETA ${eta.toFixed(0)}s`;
  }
  seconds(): number {
    return (this.clock() - this.start) / 1000;
  }
}

const BATCH = 16;

function summaryJson(rows: readonly SummaryRow[], seconds: number): object {
  const runs = rows.reduce((n, r) => n + r.runs, 0);
  const failures = rows.reduce((n, r) => n + r.failures, 0);
  return {
    runs,
    failures,
    seconds: Number(seconds.toFixed(3)),
    runsPerSecond: seconds > 0 ? Number((runs / seconds).toFixed(1)) : null,
    rows: rows.map((r) => ({
      scenario: r.scenario,
      protocol: r.protocol,
      policy: r.policy,
      mutation: r.mutation,
      runs: r.runs,
      failures: r.failures,
      ...(r.complete !== undefined ? { complete: r.complete } : {}),
      signatures: r.signatures.map((s) => ({ signature: s.signature, count: s.count, replay: reproduceCommand(s.first) })),
    })),
  };
}

function writeRecords(path: string, records: readonly RunRecord[]): void {
  writeFileSync(path, records.map((r) => JSON.stringify(r)).join('\n') + (records.length > 0 ? '\n' : ''));
}

/** Runs a campaign (or a shard of one) and returns its records, in campaign order. */
export async function runCampaign(spec: CampaignSpec, workers: number, progress?: (runs: number, failures: number) => void): Promise<RunRecord[]> {
  const units = unitsOf(spec);
  const jobs: RunBatch[] = [];
  const size = spec.policy === 'exhaustive' ? 1 : BATCH;
  for (let i = 0; i < units.length; i += size) {
    jobs.push({
      kind: 'runs',
      policy: spec.policy,
      preemptions: spec.preemptions,
      mutation: spec.mutation ?? null,
      units: units.slice(i, i + size).map((u) => ({ scenario: u.name, protocol: u.protocol, seed: u.seed })),
      ...(spec.guest ? { guest: spec.guest } : {}),
    });
  }
  const records: RunRecord[] = [];
  await runJobs(jobs, workers, (r) => {
    if (r.kind !== 'runs') return;
    records.push(...r.records);
    progress?.(r.records.reduce((n, x) => n + x.runs, 0), r.records.reduce((n, x) => n + x.failures, 0));
  });
  return sortRecords(records);
}

/** The kill-matrix cells of the given mutations x scenarios x protocols. */
/** Whole-guest cells of the kill matrix try this many seeds at most (a guest run takes seconds). */
export const GUEST_KILL_SEEDS = 3;

export function killJobs(opts: {
  mutations: readonly Mutation[];
  scenarios: readonly string[];
  protocols: readonly KvmProtocol[];
  policy: 'random' | 'pct';
  preemptions: number;
  seedFrom: number;
  seedTo: number;
  guest?: GuestSpec;
}): KillJob[] {
  const jobs: KillJob[] = [];
  const scenarios = opts.scenarios.length === 1 && opts.scenarios[0] === 'all' ? SCENARIOS : opts.scenarios.map((n) => scenarioByName(n)!);
  for (const name of opts.mutations) {
    const m = mutationByName(name)!;
    for (const s of scenarios) {
      for (const p of opts.protocols) {
        if (!m.protocols.includes(p) || !s.protocols.includes(p)) continue;
        jobs.push({ kind: 'kill', mutation: m.name, scenario: s.name, protocol: p, policy: opts.policy, preemptions: opts.preemptions, seedFrom: opts.seedFrom, seedTo: opts.seedTo });
      }
    }
    if (opts.guest !== undefined) {
      for (const p of opts.protocols) {
        if (!m.protocols.includes(p)) continue;
        const seedTo = Math.min(opts.seedTo, opts.seedFrom + GUEST_KILL_SEEDS - 1);
        jobs.push({ kind: 'kill', mutation: m.name, scenario: guestName(opts.guest), protocol: p, policy: 'random', preemptions: opts.preemptions, seedFrom: opts.seedFrom, seedTo, guest: opts.guest });
      }
    }
  }
  return jobs;
}

export async function runKillMatrix(jobs: readonly KillJob[], workers: number, progress?: (runs: number, kills: number) => void): Promise<KillResult[]> {
  const results: KillResult[] = [];
  await runJobs(jobs as readonly Job[], workers, (r) => {
    if (r.kind !== 'kill') return;
    results.push(r.result);
    progress?.(1, r.result.killedAt === null ? 0 : 1);
  });
  const at = (i: number) => String(i < 0 ? 99 : i).padStart(3);
  const order = (r: KillResult) => at(MUTATIONS.findIndex((m) => m.name === r.mutation)) + at(SCENARIOS.findIndex((s) => s.name === r.scenario)) + PROTOCOLS.indexOf(r.protocol);
  return results.sort((a, b) => order(a).localeCompare(order(b)));
}

export async function tortureCommand(argv: readonly string[], io: TortureIo): Promise<number> {
  if (argv[0] === 'merge') return mergeCommand(argv.slice(1), io);
  const { values, positionals } = parseCommandArgs(argv, TORTURE_OPTIONS);
  if (flag(values, 'help')) {
    io.stdout(TORTURE_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (flag(values, 'list')) {
    io.stdout(listText());
    return 0;
  }
  const guest = guestSpec(values);
  const scenarios = guest !== undefined && stringOption(values, 'scenario') === undefined ? [] : scenarioNames(stringOption(values, 'scenario'));
  const protocols = parseList('--protocol', stringOption(values, 'protocol') ?? 'modern,v7,pin', PROTOCOLS);
  const policy = parseList('--policy', stringOption(values, 'policy') ?? 'random', POLICIES);
  if (policy.length !== 1) throw new UsageError('--policy: one policy per campaign');
  const preemptionsText = stringOption(values, 'preemptions');
  const preemptions = preemptionsText === undefined ? 2 : parseCount('--preemptions', preemptionsText);
  const workersText = stringOption(values, 'workers');
  const workers = workersText === undefined ? 1 : parsePositiveCount('--workers', workersText);
  const json = flag(values, 'json');
  const seedsText = stringOption(values, 'seeds');

  if (guest !== undefined && policy[0] !== 'random') throw new UsageError('--guest: a whole guest runs under the random policy only');
  if (flag(values, 'mutations')) {
    if (policy[0] === 'exhaustive') throw new UsageError('--mutations: use --policy random or pct');
    const seeds = parseSeeds(seedsText ?? '1..50');
    const jobs = killJobs({ mutations: MUTATIONS.map((m) => m.name), scenarios, protocols, policy: policy[0] as 'random' | 'pct', preemptions, seedFrom: seeds.from, seedTo: seeds.to, ...(guest ? { guest } : {}) });
    const progress = new Progress(io, jobs.length, 'cells');
    const results = await runKillMatrix(jobs, workers, (n, k) => progress.add(n, k));
    progress.end();
    const rows = killRows(results);
    const names = [...(scenarios[0] === 'all' ? SCENARIOS.map((s) => s.name) : scenarios), ...(guest ? [guestName(guest)] : [])];
    if (json) {
      io.stdout(
        JSON.stringify({
          seeds: `${seeds.from}..${seeds.to}`,
          policy: policy[0],
          seconds: Number(progress.seconds().toFixed(3)),
          mutations: rows.map((r) => ({
            mutation: r.mutation.name,
            mechanism: r.mutation.mechanism,
            killed: r.first !== null,
            first: r.first,
            cells: r.cells.map((c) => ({ scenario: c.scenario, protocol: c.protocol, killedAt: c.killedAt, runs: c.runs, signature: c.signature })),
          })),
        }) + '\n',
      );
    } else {
      io.stdout(formatKillMatrix(rows, names));
      io.stdout(`seeds ${seeds.from}..${seeds.to} per cell, policy ${policy[0]}, ${results.reduce((n, r) => n + r.runs, 0)} runs in ${progress.seconds().toFixed(1)}s\n`);
    }
    return rows.every((r) => r.first !== null) ? 0 : 1;
  }

  const seeds = parseSeeds(seedsText ?? '1..100');
  const shardText = stringOption(values, 'shard');
  const spec: CampaignSpec = {
    scenarios,
    protocols,
    policy: policy[0]!,
    seedFrom: seeds.from,
    seedTo: seeds.to,
    preemptions,
    mutation: parseMutation(stringOption(values, 'mutation')),
    ...(shardText !== undefined ? { shard: parseShard(shardText) } : {}),
    ...(guest !== undefined ? { guest } : {}),
  };
  const total = spec.policy === 'exhaustive' ? unitsOf(spec).length : unitsOf(spec).length;
  const progress = new Progress(io, total, spec.policy === 'exhaustive' ? 'searches' : 'runs');
  const records = await runCampaign(spec, workers, (n, f) => progress.add(spec.policy === 'exhaustive' ? 1 : n, f));
  progress.end();
  const out = stringOption(values, 'out');
  if (out !== undefined) writeRecords(out, records);
  const rows = summarize(records);
  const seconds = progress.seconds();
  if (json) io.stdout(JSON.stringify(summaryJson(rows, seconds)) + '\n');
  else {
    io.stdout(formatSummary(rows));
    const runs = records.reduce((n, r) => n + r.runs, 0);
    io.stdout(`${runs} runs, ${records.reduce((n, r) => n + r.failures, 0)} failed, ${seconds.toFixed(1)}s, ${(runs / Math.max(seconds, 1e-9)).toFixed(0)} runs/s${workers > 1 ? ` on ${workers} workers` : ''}\n`);
  }
  return records.every((r) => r.ok) ? 0 : 1;
}

async function mergeCommand(argv: readonly string[], io: TortureIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { json: { type: 'boolean' }, out: { type: 'string' } });
  if (positionals.length === 0) throw new UsageError('merge: no results files given');
  const lists = positionals.map((path) => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new UsageError(`merge: cannot read ${path}: ${(e as Error).message}`);
    }
    try {
      return parseRecords(text, path);
    } catch (e) {
      throw new UsageError(`merge: ${(e as Error).message}`);
    }
  });
  let records: RunRecord[];
  try {
    records = mergeRecords(lists);
  } catch (e) {
    throw new UsageError(`merge: ${(e as Error).message}`);
  }
  const out = stringOption(values, 'out');
  if (out !== undefined) writeRecords(out, records);
  const rows = summarize(records);
  if (flag(values, 'json')) io.stdout(JSON.stringify(summaryJson(rows, 0)) + '\n');
  else io.stdout(formatSummary(rows) + `${records.reduce((n, r) => n + r.runs, 0)} runs from ${positionals.length} file(s), ${records.reduce((n, r) => n + r.failures, 0)} failed\n`);
  return records.every((r) => r.ok) ? 0 : 1;
}

const REPLAY_OPTIONS = {
  scenario: { type: 'string' },
  protocol: { type: 'string' },
  policy: { type: 'string' },
  seed: { type: 'string' },
  schedule: { type: 'string' },
  preemptions: { type: 'string' },
  mutation: { type: 'string' },
  events: { type: 'string' },
  'trace-out': { type: 'string' },
  guest: { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  'guest-mem': { type: 'string' },
  'host-mem': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function replayCommand(argv: readonly string[], io: TortureIo): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, REPLAY_OPTIONS);
  if (flag(values, 'help')) {
    io.stdout(REPLAY_USAGE);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const guest = guestSpec(values);
  const name = stringOption(values, 'scenario');
  if (name === undefined && guest === undefined) throw new UsageError('--scenario (or --guest, or --kernel) is required');
  if (name !== undefined && guest !== undefined) throw new UsageError('--scenario and a whole guest: give one');
  const scenario = name === undefined ? undefined : scenarioByName(name);
  if (name !== undefined && scenario === undefined) throw new UsageError(`--scenario: '${name}' is not one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const protocolText = stringOption(values, 'protocol');
  if (protocolText === undefined) throw new UsageError('--protocol is required');
  const [protocol] = parseList('--protocol', protocolText, PROTOCOLS);
  if (protocolText.includes(',')) throw new UsageError('--protocol: replay takes one protocol');
  const scheduleText = stringOption(values, 'schedule');
  const seedText = stringOption(values, 'seed');
  const policyText = stringOption(values, 'policy');
  let schedule: number[] | undefined;
  let policy: PolicyName = 'random';
  let seed = 1;
  if (scheduleText !== undefined) {
    if (seedText !== undefined) throw new UsageError('--schedule and --seed: give one');
    schedule = scheduleText === '-' ? [] : scheduleText.split(',').map((c) => parseCount('--schedule', c.trim()));
    policy = 'exhaustive';
  } else {
    if (seedText === undefined) throw new UsageError('--seed (or --schedule) is required');
    seed = parseCount('--seed', seedText);
    if (policyText !== undefined) {
      const [p] = parseList('--policy', policyText, ['random', 'pct'] as const);
      policy = p!;
    }
  }
  const preemptionsText = stringOption(values, 'preemptions');
  const preemptions = preemptionsText === undefined ? 2 : parseCount('--preemptions', preemptionsText);
  const mutation = parseMutation(stringOption(values, 'mutation'));
  const eventsText = stringOption(values, 'events');
  const nEvents = eventsText === undefined ? 40 : parseCount('--events', eventsText);

  if (guest !== undefined && (schedule !== undefined || policy !== 'random')) throw new UsageError('--guest: replay takes --seed and the random policy');
  const traceOut = stringOption(values, 'trace-out');
  const o =
    scenario !== undefined
      ? runScenario(scenario, { protocol: protocol!, policy, seed, preemptions, mutation, trace: true, ...(schedule ? { schedule } : {}) })
      : runGuestUnit(guest!, protocol!, seed, mutation, { trace: true, ...(traceOut === undefined ? { traceLimit: 20_000 } : {}) });
  const label = scenario !== undefined ? scenario.name : `guest ${guest!.path}`;
  const trace = o.trace ?? [];
  if (traceOut !== undefined) writeFileSync(traceOut, trace.map((r) => JSON.stringify(r)).join('\n') + (trace.length > 0 ? '\n' : ''));
  // The events up to the violation (the run stopped there; teardown events follow a pass).
  const tail = nEvents === 0 ? [] : trace.filter((r) => r.step <= o.verdict.step).slice(-nEvents);
  const v = o.verdict;
  const what = `${label} ${protocol} ${schedule ? `schedule of ${schedule.length} choices` : `${policy} seed ${seed}`}${mutation ? ` [${mutation}]` : ''}`;
  if (flag(values, 'json')) {
    io.stdout(JSON.stringify({ scenario: scenario?.name ?? `guest:${guest!.path}`, protocol, policy, seed, mutation, verdict: v, steps: o.steps, scheduleHash: o.scheduleHash, events: tail }) + '\n');
  } else {
    const lines: string[] = [];
    if (v.ok) lines.push(`replay ${what}: ok after ${o.steps} steps${v.note ? ` (${v.note})` : ''}`);
    else {
      lines.push(`replay ${what}: ${v.kind} violation at step ${v.step}`);
      for (const p of v.problems.slice(0, 8)) lines.push(`  ${p.split('\n').join('\n  ')}`);
      lines.push(`signature: ${v.signature}`);
    }
    lines.push(`schedule: ${o.scheduleHash} (choices:hash)`);
    lines.push(`last ${tail.length} events${v.ok ? '' : ' before the violation'}:`);
    for (const r of tail) lines.push(formatRecord(r));
    if (traceOut !== undefined) lines.push(`${trace.length} events written to ${traceOut}`);
    io.stdout(lines.join('\n') + '\n');
  }
  return v.ok ? 0 : 1;
}
