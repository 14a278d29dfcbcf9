// Golden transcripts of the debug console: each NAME.script here runs through
// `shadowvisor console --script` (its first line, `# args: ...`, gives the image
// and the run options) and its stdout, then `[exit N]`, must equal NAME.txt byte
// for byte. A run is a function of (image, options, seed), so the transcript is too.
// After an intended change: UPDATE_GOLDEN=1 npx vitest run test/console, then read the diff.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../src/cli.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = (name: string) => fileURLToPath(new URL(`../../guest-programs/bin/${name}`, import.meta.url));

export async function transcript(script: string, argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const text = (c: string | Uint8Array) => (typeof c === 'string' ? c : Buffer.from(c).toString('latin1'));
  const io: CliIo & { readScript(path: string): string } = {
    stdout: (c) => void (stdout += text(c)),
    stderr: (c) => void (stderr += text(c)),
    readFile: (p) => readFileSync(p),
    readScript: () => script,
  };
  const code = await main(['console', ...argv, '--script', '-'], io);
  return { code, stdout, stderr };
}

function argsOf(script: string): string[] {
  const m = /^# args: (.*)$/m.exec(script.split('\n')[0]!);
  if (m === null) throw new Error('a golden script starts with "# args: IMAGE OPTIONS"');
  // A word that is not an option and follows no size-taking option names a file in guest-programs/bin.
  const words = m[1]!.trim().split(/\s+/);
  return words.map((w, i) => (!w.startsWith('-') && (i === 0 || ['--kernel', '--initrd'].includes(words[i - 1]!)) ? bin(w) : w));
}

const scripts = readdirSync(here).filter((f) => f.endsWith('.script')).sort();

describe('console golden transcripts', () => {
  it('has scripts', () => expect(scripts.length).toBeGreaterThan(0));
  for (const f of scripts) {
    it(f, async () => {
      const script = readFileSync(here + f, 'utf8');
      const r = await transcript(script, argsOf(script));
      const got = `${r.stdout}${r.stderr ? `[stderr]\n${r.stderr}` : ''}[exit ${r.code}]\n`;
      const goldenPath = here + f.replace(/\.script$/, '.txt');
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenPath, got);
      expect(got).toBe(readFileSync(goldenPath, 'utf8'));
    }, 60_000);
  }
});
