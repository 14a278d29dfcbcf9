// KVM is a driver: it reaches the host only through SecondaryMmuHost (src/host/secondary-mmu.ts).
// Its MMU code may name the host's handle types (an mm, a notifier and its ranges) but
// import no host code and no host state: no HostKernel, frame table, page-table
// encoding or debug view. Only the inspection module (faces: console, tests) takes a
// HostDebugView, and only as a parameter. This test is the wall; it fails on the first
// import that would let the fault or notifier path read host page tables again.

import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sourceFiles } from '../source-files.js';

const KVM_DIR = join(__dirname, '../../src/kvm');

/** Host modules whose types a driver may name: mm_struct, the notifier structs, the interface itself. */
const DRIVER_TYPES = new Set(['mm.js', 'mmu-notifier.js', 'secondary-mmu.js']);
/** The inspection view, for src/kvm/inspect.ts alone. */
const DEBUG_TYPES = new Set(['debug-view.js', 'inspect.js']);

function hostImports(src: string): { typeOnly: boolean; module: string; line: string }[] {
  const out: { typeOnly: boolean; module: string; line: string }[] = [];
  for (const m of src.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'([^']*\/host\/([^']+))';/gms)) {
    out.push({ typeOnly: m[1] !== undefined, module: m[3]!, line: m[0] });
  }
  return out;
}

describe('KVM reaches the host only through SecondaryMmuHost', () => {
  const files = sourceFiles(KVM_DIR);

  it('finds the KVM sources', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  for (const file of files) {
    const name = relative(KVM_DIR, file);
    it(name, () => {
      const src = readFileSync(file, 'utf8');
      const allowed = name === 'inspect.ts' ? new Set([...DRIVER_TYPES, ...DEBUG_TYPES]) : DRIVER_TYPES;
      for (const imp of hostImports(src)) {
        expect(imp.typeOnly, `${name}: a value import from the host: ${imp.line}`).toBe(true);
        expect(allowed.has(imp.module), `${name}: imports host/${imp.module}: ${imp.line}`).toBe(true);
      }
      const code = src.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
      expect(code, `${name} names the host kernel`).not.toMatch(/\bHostKernel\b/);
      expect(code, `${name} reads a host page table`).not.toMatch(/\.pt\.(get|set)\(/);
      expect(code, `${name} reads the host frame table`).not.toMatch(/\.frames\b/);
      if (name !== 'inspect.ts') expect(code, `${name} holds the debug view`).not.toMatch(/\bHostDebugView\b/);
    });
  }
});
