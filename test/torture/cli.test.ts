// shadowvisor torture / torture merge / replay, driven through main().
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../src/cli.js';
import { SCENARIOS } from '../../src/torture/scenarios/index.js';

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cliWith({}, ...argv);
}

async function cliWith(extra: Partial<CliIo>, ...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'));
  const io: CliIo = {
    stdout: (c) => void (stdout += text(c)),
    stderr: (c) => void (stderr += text(c)),
    readFile: (p) => readFileSync(p),
    ...extra,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'torture-cli-'));

describe('shadowvisor torture', () => {
  it('--list names every scenario with what it reproduces', async () => {
    const r = await cli('torture', '--list');
    expect(r.code).toBe(0);
    for (const s of SCENARIOS) expect(r.stdout).toContain(`${s.name}  [`);
    expect(r.stdout.match(/Reproduces: /g)?.length).toBe(SCENARIOS.length);
  });

  it('prints the summary table and plain progress lines off a terminal', async () => {
    const r = await cli('torture', '--scenario', 'dontneed-vs-fault,release-vs-fault', '--seeds', '1..5', '--protocol', 'modern,v7');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^scenario +protocol +policy +runs +failures +signatures\n/);
    expect(r.stdout).toMatch(/dontneed-vs-fault +modern +random +5 +0 +0/);
    expect(r.stdout).toMatch(/20 runs, 0 failed, .* runs\/s/);
    expect(r.stderr).toMatch(/^torture: 20\/20 runs, 0 failed, [\d.]+ runs\/s, ETA 0s$/m);
    expect(r.stderr).not.toContain('\r');
  });

  it('on a terminal, one progress line redrawn with a bar', async () => {
    const r = await cliWith({ isTTY: true }, 'torture', '--scenario', 'release-vs-fault', '--seeds', '1..3', '--protocol', 'modern');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^\rtorture: \[#{20}\] 3\/3 runs, 0 failed, [\d.]+ runs\/s, ETA 0s\x1b\[K\n$/);
  });

  it('a failure prints the line that replays it, and replay reproduces it with its last events', async () => {
    const r = await cli('torture', '--scenario', 'dontneed-vs-fault', '--seeds', '1..30', '--protocol', 'modern', '--mutation', 'noRetry');
    expect(r.code).toBe(1);
    const line = /shadowvisor replay (--scenario dontneed-vs-fault --protocol modern --policy random --seed (\d+) --mutation noRetry)/.exec(r.stdout);
    expect(line, r.stdout).not.toBeNull();
    const traceOut = join(dir, 'trace.jsonl');
    const again = await cli('replay', ...line![1]!.split(' '), '--events', '12', '--trace-out', traceOut);
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(new RegExp(`^replay dontneed-vs-fault modern random seed ${line![2]} \\[noRetry\\]: coherency violation at step \\d+`));
    expect(again.stdout).toMatch(/signature: coherency: /);
    expect(again.stdout).toMatch(/last 12 events before the violation:/);
    const events = readFileSync(traceOut, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { tp: string });
    expect(events.some((e) => e.tp === 'kvm_mmu_page_fault')).toBe(true);
    expect(events.some((e) => e.tp === 'mmu_notifier_invalidate_range_end')).toBe(true);
    // The signature in the summary is the one replay reports.
    const sig = /signature: (.*)/.exec(again.stdout)![1]!;
    expect(r.stdout).toContain(sig);
  });

  it('--shard and --out, then merge: the summary of the unsharded campaign', async () => {
    const args = ['torture', '--scenario', 'fault-vs-unmap,munmap-vs-fault', '--seeds', '1..9', '--mutation', 'noRetry'];
    const whole = await cli(...args, '--json');
    const parts = [1, 2, 3].map((i) => join(dir, `part-${i}.jsonl`));
    for (const [i, out] of parts.entries()) await cli(...args, '--shard', `${i + 1}/3`, '--out', out);
    const merged = await cli('torture', 'merge', ...parts, '--json');
    expect(merged.code).toBe(whole.code);
    const a = JSON.parse(whole.stdout) as { rows: unknown; runs: number; failures: number };
    const b = JSON.parse(merged.stdout) as { rows: unknown; runs: number; failures: number };
    expect(b.rows).toEqual(a.rows);
    expect([b.runs, b.failures]).toEqual([a.runs, a.failures]);
    expect(a.runs).toBe(2 * 3 * 9);
  });

  it('exhaustive: reports the schedules explored', async () => {
    const r = await cli('torture', '--scenario', 'memslot-delete-vs-fault', '--protocol', 'modern', '--policy', 'exhaustive', '--preemptions', '1', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { rows: Array<{ runs: number; failures: number; complete: boolean }> };
    expect(j.rows.length).toBe(1);
    expect(j.rows[0]!.runs).toBeGreaterThan(10);
    expect(j.rows[0]!.complete).toBe(true);
  });

  it('--mutations prints the kill matrix and names the survivors', async () => {
    const r = await cli('torture', '--mutations', '--scenario', 'release-vs-fault', '--protocol', 'modern', '--seeds', '1..20');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^noReleaseZap +\d+\/ \/ +release-vs-fault\/modern seed \d+ after \d+ run\(s\)/m);
    expect(r.stdout).toMatch(/^noDirtyCarry +\.\/ \/ +SURVIVED/m);
    expect(r.stdout).toMatch(/mutation\(s\) survived: .*noDirtyCarry/);
  });

  it('usage errors exit 2 with one line and the usage', async () => {
    for (const args of [
      ['torture', '--seeds', '5..1'],
      ['torture', '--protocol', 'kvm'],
      ['torture', '--shard', '4/3'],
      ['torture', '--scenario', 'nope'],
      ['torture', '--mutation', 'noSuch'],
      ['replay', '--scenario', 'fault-vs-unmap'],
      ['replay', '--scenario', 'fault-vs-unmap', '--protocol', 'modern'],
      ['torture', 'merge'],
      ['torture', 'merge', join(dir, 'missing.jsonl')],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n')[0]).toMatch(/^shadowvisor: /);
      expect(r.stderr).toContain('usage: shadowvisor');
    }
  });
});
