// The interactive console in a real terminal: tmux runs the built dist/cli.js
// (npm test builds dist first) and we type at it. Prompt, Tab completion of
// command names and info subcommands, Ctrl-C stopping a running guest without
// killing the process, history, Ctrl-D quitting. Skipped without tmux.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const ELF = fileURLToPath(new URL('../../guest-programs/bin/sguest-small.elf', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const session = `svconsole${process.pid}`;

const tmux = (...args: string[]) => execFileSync('tmux', args, { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', session);
const keys = (...k: string[]) => void tmux('send-keys', '-t', session, ...k);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(test: (s: string) => boolean, what: string, ms = 15_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const s = screen();
    if (test(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; screen:\n${s}`);
    await sleep(50);
  }
}

/** The last non-empty line on the screen. */
const lastLine = (s: string) => s.trimEnd().split('\n').pop() ?? '';

describe.skipIf(!hasTmux || !existsSync(CLI))('shadowvisor console in a terminal (tmux)', () => {
  afterAll(() => void spawnSync('tmux', ['kill-session', '-t', session]));

  it('prompts, completes, stops a running guest on Ctrl-C, keeps history, quits on Ctrl-D', async () => {
    tmux('new-session', '-d', '-s', session, '-x', '150', '-y', '50',
      `${process.execPath} ${CLI} console ${ELF} --guest-mem 4M --host-mem 2M; echo "[exited $?]"; sleep 60`);
    let s = await waitFor((t) => lastLine(t) === '(shadowvisor)', 'the first prompt');
    expect(s).toContain('stopped before the first instruction');
    expect(s).toContain('0x80000000: auipc gp, 0x2');

    keys('inf', 'Tab');
    await waitFor((t) => lastLine(t) === '(shadowvisor) info', 'command completion');
    keys('regi', 'Tab');
    await waitFor((t) => lastLine(t) === '(shadowvisor) info registers', 'info subcommand completion');
    keys('Enter');
    s = await waitFor((t) => t.includes('pc   0x80000000  priv S') && lastLine(t) === '(shadowvisor)', 'info registers');

    // A run of the whole workload takes seconds; Ctrl-C comes back to the prompt mid-way.
    keys('continue', 'Enter');
    await waitFor((t) => t.includes('sguest-workload: 2 MiB'), 'guest output');
    await sleep(200);
    keys('C-c');
    s = await waitFor((t) => /interrupted/.test(t) && lastLine(t) === '(shadowvisor)', 'the prompt after Ctrl-C');
    expect(s).not.toContain('sguest-workload: OK');
    expect(s).not.toContain('[exited');

    // Ctrl-C at the prompt clears the line and keeps the process.
    keys('garbage', 'C-c');
    await waitFor((t) => lastLine(t) === '(shadowvisor)' && t.includes('^C'), 'Ctrl-C at the prompt');

    keys('Up');
    await waitFor((t) => lastLine(t) === '(shadowvisor) continue', 'history');
    keys('C-u', 'step', 'Enter');
    await waitFor((t) => /\n0x8[0-9a-f]{7}: [a-z]/.test(t.split('(shadowvisor) step').pop() ?? ''), 'a step');

    keys('C-d');
    await waitFor((t) => t.includes('[exited 0]'), 'exit on Ctrl-D');
  }, 60_000);
});
