// The CLI as a user runs it: the built dist/cli.js in its own process, its
// stdout a real pipe (npm test builds dist first). A guest that floods its
// console must wait for a slow reader with bounded memory, and a reader that
// goes away must end the run quietly (exit 141, nothing on stderr).
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const bin = (name: string) => fileURLToPath(new URL(`../../guest-programs/bin/${name}.elf`, import.meta.url));

type Child = ChildProcessByStdio<null, Readable, Readable>;

function start(args: string[]): { child: Child; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, stderr: () => stderr, exit };
}

/** Resident set and CPU seconds (user + system) of a process, from /proc. */
function sample(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  // Fields after the parenthesised name: utime and stime are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssBytes: rssKb * 1024, cpuSeconds: ticks / 100 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!existsSync(CLI) || process.platform !== 'linux')('shadowvisor in a process, stdout a pipe', () => {
  it.each([
    ['run', bin('sguest-flood-dbcn'), '--guest-mem', '8M', '--host-mem', '8M'],
    ['run', '--bare', bin('flood')],
  ])('%s %s: a reader that closes early ends the run with 141 and no stack trace', async (...args) => {
    const p = start(args);
    await new Promise<void>((resolve) => p.child.stdout.once('data', () => resolve()));
    p.child.stdout.destroy();
    expect(await p.exit).toBe(141);
    expect(p.stderr()).toBe('');
  }, 30_000);

  it('a guest flooding the console waits for a reader that stops, with bounded memory, and loses nothing', async () => {
    const p = start(['run', bin('sguest-flood-dbcn'), '--guest-mem', '8M', '--host-mem', '8M']);
    let text = '';
    p.child.stdout.on('data', (d: Buffer) => void (text += d.toString('latin1')));
    await sleep(1500); // boot and warm up, reading as fast as it comes
    p.child.stdout.pause();
    await sleep(500); // the pipe fills
    const before = sample(p.child.pid!);
    await sleep(1500);
    const after = sample(p.child.pid!);
    // A guest that kept running while nobody read would burn a core and buffer its output.
    expect(after.cpuSeconds - before.cpuSeconds).toBeLessThan(0.3);
    expect(after.rssBytes - before.rssBytes).toBeLessThan(16 << 20);
    p.child.stdout.resume();
    await sleep(500);
    p.child.stdout.destroy();
    expect(await p.exit).toBe(141);
    expect(p.stderr()).toBe('');
    // Every line arrived, in order, none dropped while the reader was away.
    const lines = text.split('\n').slice(1, -1); // the banner; the cut-off last line
    expect(lines.length).toBeGreaterThan(1000);
    const first = Number(lines[0]!.slice(6));
    lines.forEach((l, i) => {
      if (l !== `flood ${String(first + i).padStart(10, '0')}`) throw new Error(`line ${i}: '${l}'`);
    });
  }, 30_000);
});
