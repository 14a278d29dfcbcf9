// Whole-guest torture runs: an S-mode ELF, or a Linux Image with its initrd and
// command line, booted by the VMM on guest RAM larger than host RAM, so the host
// swaps it while the guest runs. Judged against a reference run of the same image
// with host RAM to spare (same output, same exit status, and the same guest memory
// at the end: guestMemoryHash, taken before teardown), with the
// coherency audit at a fixed interval of scheduler steps, and after the VMM's own
// teardown (KVM_DESTROY_VM, exit_mmap) with the leak audit: host invariants, every
// frame back, no shadow page left. pin's expected end when guest RAM exceeds host
// RAM is the OOM kill (exit 137), not a failure.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { auditCoherency } from '../check/coherency.js';
import { guestMemoryHash } from '../check/guest-memory.js';
import { auditKernel } from '../host/audit.js';
import { hostDebugView } from '../host/debug-view.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { EXIT_OOM, Vmm } from '../vmm/vmm.js';
import type { VmmResult } from '../vmm/vmm.js';
import { applyMutation, hashSchedule, signatureOf } from './scenario.js';
import type { Mutation, RunOutcome, Verdict, ViolationKind } from './scenario.js';
import { TraceLog } from './trace.js';

export interface GuestSpec {
  /** The ELF, or with `linux` the kernel Image. */
  path: string;
  guestMem: number;
  hostMem: number;
  linux?: { initrd?: string; append?: string };
}

/** Steps between two coherency audits of a whole guest (its shadow-page half every 16th). */
export const GUEST_AUDIT_EVERY = 256;
/** A Linux boot takes millions of steps over 64 MiB: audit less often. */
export const LINUX_AUDIT_EVERY = 20_000;

export function guestName(g: GuestSpec): string {
  return `${g.linux ? 'linux' : 'guest'}:${basename(g.path)}`;
}

/** What a Vmm needs for a whole-guest run, and how often to audit it. */
function bootGuest(vmm: Vmm, g: GuestSpec): string | null {
  if (g.linux === undefined) return vmm.boot(image(g.path));
  return vmm.bootLinux(image(g.path), {
    ...(g.linux.initrd !== undefined ? { initrd: image(g.linux.initrd) } : {}),
    ...(g.linux.append !== undefined ? { bootargs: g.linux.append } : {}),
  });
}

/** Records the guest memory hash just before the VMM tears guest RAM down. */
function hashAtEnd(into: { hash: string | null }) {
  return (vmm: Vmm) => {
    into.hash = guestMemoryHash(hostDebugView(vmm.kernel), vmm.proc.mm, vmm.ramHva, vmm.config.guestMemBytes);
  };
}

const images = new Map<string, Uint8Array>();
const references = new Map<string, { result: VmmResult; memoryHash: string | null }>();

function image(path: string): Uint8Array {
  let img = images.get(path);
  if (img === undefined) {
    img = readFileSync(path);
    images.set(path, img);
  }
  return img;
}

/** The same guest with host RAM to spare: what a run under pressure must print and return. */
export function referenceRun(g: GuestSpec): { result: VmmResult; memoryHash: string | null } {
  const key = JSON.stringify([g.path, g.guestMem, g.linux ?? null]);
  let r = references.get(key);
  if (r === undefined) {
    const end = { hash: null as string | null };
    const vmm = new Vmm({ guestMemBytes: g.guestMem, hostMemBytes: g.guestMem * 2 + (1 << 20), protocol: 'modern', seed: 1, beforeTeardown: hashAtEnd(end) });
    bootGuest(vmm, g);
    r = { result: vmm.run(), memoryHash: end.hash };
    references.set(key, r);
  }
  return r;
}

function firstDifference(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `output line ${i + 1}: ${JSON.stringify((la[i] ?? '<end>').slice(0, 80))}, the reference has ${JSON.stringify((lb[i] ?? '<end>').slice(0, 80))}`;
  }
  return 'output differs';
}

export function runGuestUnit(g: GuestSpec, protocol: KvmProtocol, seed: number, mutation: Mutation | null, opts: { trace?: boolean; traceLimit?: number } = {}): RunOutcome {
  const { result: ref, memoryHash: refHash } = referenceRun(g);
  const log = opts.trace ? new TraceLog(opts.traceLimit) : null;
  const end = { hash: null as string | null };
  const vmm = new Vmm({ guestMemBytes: g.guestMem, hostMemBytes: g.hostMem, protocol, seed, beforeTeardown: hashAtEnd(end), ...(log ? { events: log.events } : {}) });
  log?.attach(vmm.sched);
  const bootError = bootGuest(vmm, g);
  const auditEvery = g.linux ? LINUX_AUDIT_EVERY : GUEST_AUDIT_EVERY;
  let violation: { kind: ViolationKind; problems: string[]; step: number } | null = null;
  let applied = mutation === null;
  let steps = 0;
  const result = bootError !== null
    ? null
    : vmm.resume(() => {
        const vm = vmm.vm;
        if (vm === null) return false;
        if (!applied) {
          applyMutation(vmm.kernel, vm, mutation!);
          applied = true;
        }
        if (++steps % auditEvery !== 0 || vm.destroyed) return false;
        const problems = auditCoherency(vm, hostDebugView(vmm.kernel), { mmu: steps % (auditEvery * 16) === 0 });
        if (problems.length === 0) return false;
        violation = { kind: 'coherency', problems, step: vmm.sched.steps };
        return true;
      });
  const v = violation as { kind: ViolationKind; problems: string[]; step: number } | null;
  const fail = (kind: ViolationKind, problems: string[]): Verdict => ({ ok: false, kind, signature: signatureOf(kind, problems[0] ?? ''), problems, step: vmm.sched.steps });
  let verdict: Verdict;
  if (bootError !== null) verdict = fail('crash', [`boot: ${bootError}`]);
  else if (v !== null) {
    vmm.kernel.shutdown();
    verdict = { ...fail(v.kind, v.problems), step: v.step };
  } else {
    const r = result!;
    const vm = vmm.vm;
    const k = vmm.kernel;
    const leaks = auditKernel(k).map((p) => `host audit: ${p}`);
    if (k.frames.nrFree !== k.frames.nrFrames) leaks.push(`${k.frames.nrFrames - k.frames.nrFree} frame(s) still allocated after the VMM exited (a leaked page reference or pin)`);
    if (vm !== null && vm.sps.nUsedMmuPages !== 0) leaks.push(`${vm.sps.nUsedMmuPages} shadow page(s) left after destroy`);
    const oomExpected = protocol === 'pin' && g.guestMem > g.hostMem && r.exitCode === EXIT_OOM;
    if (vm !== null && vm.warnings.length > 0) verdict = fail('warning', vm.warnings.map((w) => `kvm warning: ${w}`));
    else if (r.reason === 'internal-error') verdict = fail('crash', [r.message ?? 'internal error']);
    else if (oomExpected) verdict = leaks.length > 0 ? fail('leak', leaks) : { ok: true, problems: [], step: vmm.sched.steps, note: 'pin: OOM kill with guest RAM over host RAM (expected)' };
    else if (r.exitCode !== ref.exitCode || r.output !== ref.output) {
      verdict = fail('data', [r.exitCode !== ref.exitCode ? `exit status ${r.exitCode} (${r.reason}${r.message ? `: ${r.message.split('\n')[0]}` : ''}), the reference run's is ${ref.exitCode}` : firstDifference(r.output, ref.output)]);
    } else if (end.hash !== refHash) {
      verdict = fail('data', [`guest memory at the end hashes to ${end.hash ?? 'nothing (not taken)'}, the reference run's to ${refHash ?? 'nothing'}: the output agrees, the memory does not`]);
    } else if (leaks.length > 0) verdict = fail('leak', leaks);
    else verdict = { ok: true, problems: [], step: vmm.sched.steps };
  }
  // The VMM does not record its schedule (a long guest would make it huge): the run's
  // fingerprint is where it ended (steps, simulated time, instructions) and what it printed.
  const out = result?.output ?? '';
  const fingerprint = [vmm.sched.steps, vmm.sched.now, result?.stats.instructions ?? 0, out.length];
  for (let i = 0; i < out.length; i++) fingerprint.push(out.charCodeAt(i));
  return { verdict, steps: vmm.sched.steps, schedule: [], scheduleHash: hashSchedule(fingerprint), trace: log?.records ?? null };
}
