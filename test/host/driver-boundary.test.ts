// The GRU device, the HMM mirror and the XPMEM exporter are drivers, as KVM is
// (test/kvm/host-boundary.test.ts): each reaches the host only through
// SecondaryMmuHost. Each folder has three kinds of module, and each kind its wall:
//
//   driver    (gru.ts, dmirror.ts, xpmem.ts) names the host's handle types (an mm, a
//             notifier and its ranges, an interval notifier, a VMA's operations) and
//             the mman constants, and nothing else: no HostKernel, no frame table, no
//             page-table encoding, no debug view.
//   audit     looks behind the protocol to judge it, through HostDebugView only: it may
//             decode what the view returns (pte.js, the frame flags of frames.js) but
//             holds no HostKernel and reads no page table itself.
//   scenario  is the host side (it builds the kernel, its processes and mmaps, and
//             drives reclaim), so it may hold the HostKernel; what it reads behind the
//             protocol goes through the view too: no page table, no lockless helper, no
//             frame table but the view's.

import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(__dirname, '../../src');

type Role = 'driver' | 'audit' | 'scenario';

/** Host modules whose types a driver may name. */
const DRIVER_TYPES = new Set(['mm.js', 'mmu-notifier.js', 'interval-notifier.js', 'secondary-mmu.js', 'vma.js']);
/** Values a driver may import: include/uapi's mman constants. */
const DRIVER_VALUES: Record<string, ReadonlySet<string>> = { 'vma.js': new Set(['PROT_NONE', 'PROT_READ', 'PROT_WRITE']) };
/** What an audit may import besides the driver's types: the view's type, and the decoders of what it returns. */
const AUDIT_MODULES = new Set([...DRIVER_TYPES, 'debug-view.js', 'pte.js', 'frames.js']);

const DRIVERS: Record<string, Record<string, Role>> = {
  gru: { 'gru.ts': 'driver', 'audit.ts': 'audit', 'scenario.ts': 'scenario' },
  hmm: { 'dmirror.ts': 'driver', 'audit.ts': 'audit', 'scenario.ts': 'scenario' },
  xpmem: { 'xpmem.ts': 'driver', 'audit.ts': 'audit', 'scenario.ts': 'scenario' },
};

interface HostImport {
  typeOnly: boolean;
  module: string;
  /** The names imported as values (not `type X`). */
  values: string[];
  line: string;
}

function hostImports(src: string): HostImport[] {
  const out: HostImport[] = [];
  for (const m of src.matchAll(/^import\s+(type\s+)?(?:\{([^}]*)\}|[^;]*?)\s*from\s+'([^']*\/host\/([^']+))';/gms)) {
    const typeOnly = m[1] !== undefined;
    const names = (m[2] ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
    const values = typeOnly ? [] : names.filter((n) => !n.startsWith('type ')).map((n) => n.split(/\s+as\s+/)[0]!);
    out.push({ typeOnly, module: m[4]!, values, line: m[0] });
  }
  return out;
}

function code(src: string): string {
  return src.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
}

describe('the GRU, HMM and XPMEM drivers reach the host only through SecondaryMmuHost', () => {
  for (const [dir, roles] of Object.entries(DRIVERS)) {
    it(`${dir}: every module has a role`, () => {
      const files = readdirSync(join(SRC, dir)).filter((f) => f.endsWith('.ts'));
      expect(files.sort()).toEqual(Object.keys(roles).sort());
    });

    for (const [file, role] of Object.entries(roles)) {
      it(`${dir}/${file} (${role})`, () => {
        const src = readFileSync(join(SRC, dir, file), 'utf8');
        const c = code(src);
        const imports = hostImports(src);
        if (role === 'driver') {
          for (const imp of imports) {
            expect(DRIVER_TYPES.has(imp.module), `${file}: imports host/${imp.module}: ${imp.line}`).toBe(true);
            const allowed = DRIVER_VALUES[imp.module] ?? new Set<string>();
            for (const v of imp.values) expect(allowed.has(v), `${file}: a value import from the host: ${v} (${imp.line})`).toBe(true);
          }
          expect(c, `${file} holds the debug view`).not.toMatch(/\bHostDebugView\b/);
        } else if (role === 'audit') {
          for (const imp of imports) expect(AUDIT_MODULES.has(imp.module), `${file}: imports host/${imp.module}: ${imp.line}`).toBe(true);
          expect(c, `${file} takes no debug view`).toMatch(/\bHostDebugView\b/);
        } else {
          for (const imp of imports) expect(imp.module, `${file}: the lockless helpers are the view's: ${imp.line}`).not.toBe('inspect.js');
          expect(c, `${file} reads the frame table behind the view`).not.toMatch(/(?<!view)\.frames\b/);
        }
        if (role !== 'scenario') expect(c, `${file} names the host kernel`).not.toMatch(/\bHostKernel\b/);
        expect(c, `${file} reads a host page table`).not.toMatch(/\.pt\.(get|set)\(/);
        expect(c, `${file} reads ptes without the view`).not.toMatch(/\bfollowPteUnlocked\b/);
        if (role === 'driver') expect(c, `${file} reads the host frame table`).not.toMatch(/\.frames\b/);
      });
    }
  }
});

// The checkers of src/check judge every secondary MMU and the guest's memory: they
// look behind the protocol through the view too. race-run.ts alone takes the kernel,
// as the host side: its settle is the host's reclaim finishing.
describe('src/check reads the host through HostDebugView', () => {
  const dir = join(SRC, 'check');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    it(`check/${file}`, () => {
      const c = code(readFileSync(join(dir, file), 'utf8'));
      if (file !== 'race-run.ts') expect(c, `${file} names the host kernel`).not.toMatch(/\bHostKernel\b/);
      expect(c, `${file} reads a host page table`).not.toMatch(/\.pt\.(get|set)\(/);
      expect(c, `${file} reads ptes without the view`).not.toMatch(/\bfollowPteUnlocked\b/);
      for (const imp of hostImports(readFileSync(join(dir, file), 'utf8'))) expect(imp.module, `${file}: ${imp.line}`).not.toBe('inspect.js');
    });
  }
});
