// dtc (Debian's device-tree-compiler) as an independent reader of our DTBs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasDtc = spawnSync('dtc', ['--version'], { stdio: 'ignore' }).status === 0;

/** dtb -> dts through `dtc -I dtb -O dts`; throws with dtc's stderr when it fails or warns. */
export function dtcDecompile(dtb: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'fdt-'));
  try {
    const f = join(dir, 'tree.dtb');
    writeFileSync(f, dtb);
    const r = spawnSync('dtc', ['-I', 'dtb', '-O', 'dts', f], { encoding: 'utf8' });
    if (r.status !== 0 || r.stderr !== '') throw new Error(`dtc: ${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
