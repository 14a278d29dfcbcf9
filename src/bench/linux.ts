// Linux benchmark: the committed Linux 6.12 guest (guest-programs/bin/linux-Image
// + linux-initramfs.cpio) from reset to its init's PASS line and power-off, with
// and without host memory pressure, and the same images on qemu-system-riscv32
// in the same run (guest-programs/linux/qemu-check.sh), as a ratio; then the
// same boots with the block compiler (--jit). One run per configuration: each is
// some 700 M guest instructions.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { KvmProtocol } from '../kvm/vm.js';
import { Vmm } from '../vmm/vmm.js';
import type { BenchSection } from './section.js';

const MiB = 1 << 20;
const BIN = new URL('../../guest-programs/bin/', import.meta.url);
const QEMU_CHECK = fileURLToPath(new URL('../../guest-programs/linux/qemu-check.sh', import.meta.url));

function boot(kernel: Uint8Array, initrd: Uint8Array, protocol: KvmProtocol, hostMemBytes: number, jit: boolean) {
  const vmm = new Vmm({ guestMemBytes: 64 * MiB, hostMemBytes, protocol, seed: 1, ...(jit ? { jit: {} } : {}) });
  const err = vmm.bootLinux(kernel, { initrd });
  if (err !== null) throw new Error(`bench: linux: ${err}`);
  const t0 = performance.now();
  const r = vmm.run();
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0 || !r.output.includes('shadowvisor-init: PASS')) {
    throw new Error(`bench: the Linux guest did not pass under ${protocol} (${r.reason}${r.message ? `: ${r.message}` : ''})`);
  }
  const g = r.stats.guest;
  const n = (k: string) => (typeof g[k] === 'number' ? (g[k] as number) : 0);
  const t = vmm.vcpu!.translator;
  return {
    seconds, insns: r.stats.instructions, sfence: t.sfenceCalls, spCreated: n('mmu_cache_miss'), spZapped: n('mmu_shadow_zapped'),
    faults: n('pf_taken'), pswpout: r.stats.host.pswpout, pswpin: r.stats.host.pswpin,
  };
}

/** Seconds for QEMU to boot the same images to PASS, or a reason it did not run. */
function qemu(): number | string {
  if (spawnSync('qemu-system-riscv32', ['--version'], { stdio: 'ignore' }).status !== 0) return 'qemu-system-riscv32 not installed';
  const t0 = performance.now();
  const q = spawnSync(QEMU_CHECK, [], { encoding: 'utf8', timeout: 300_000 });
  const seconds = (performance.now() - t0) / 1000;
  return q.status === 0 ? seconds : `qemu-check.sh exited ${q.status}: ${(q.stderr || q.stdout).trim().split('\n').pop()}`;
}

export const linuxSection: BenchSection = {
  name: 'linux',
  description: 'Linux 6.12 rv32 + nolibc init (32 MiB fill, fork, COW): boot to PASS without and with host memory pressure, and on QEMU',
  run(ctx) {
    const kernel = new Uint8Array(readFileSync(new URL('linux-Image', BIN)));
    const initrd = new Uint8Array(readFileSync(new URL('linux-initramfs.cpio', BIN)));
    const configs: Array<[string, KvmProtocol, number, boolean]> = [
      ['no pressure', 'modern', 128 * MiB, false],
      ['64M guest/24M host', 'modern', 24 * MiB, false],
      ...(ctx.quick ? [] : [['64M guest/24M host', 'v7', 24 * MiB, false] as [string, KvmProtocol, number, boolean]]),
      ['no pressure --jit', 'modern', 128 * MiB, true],
      ['64M/24M --jit', 'modern', 24 * MiB, true],
      ...(ctx.quick ? [] : [['64M/24M --jit', 'v7', 24 * MiB, true] as [string, KvmProtocol, number, boolean]]),
    ];
    ctx.log('linux: one boot each, reset to power-off; wall time of vmm.run()');
    ctx.log('  config              protocol  instructions  seconds    MIPS  sfence.vma  sp created/zapped  faults  swap out/in');
    let reference = 0;
    const interpSeconds: number[] = [];
    const speedups: string[] = [];
    for (const [label, protocol, host, jit] of configs) {
      const s = boot(kernel, initrd, protocol, host, jit);
      if (reference === 0) reference = s.seconds;
      if (!jit) interpSeconds.push(s.seconds);
      else speedups.push(`${protocol} ${host >= 64 * MiB ? 'no pressure' : '64M/24M'} ${(interpSeconds[speedups.length]! / s.seconds).toFixed(2)}x`);
      ctx.log(
        `  ${label.padEnd(19)} ${protocol.padEnd(8)}  ${String(s.insns).padStart(12)}  ${s.seconds.toFixed(2).padStart(7)}`
        + `  ${(s.insns / s.seconds / 1e6).toFixed(1).padStart(6)}  ${String(s.sfence).padStart(10)}  ${`${s.spCreated}/${s.spZapped}`.padStart(17)}`
        + `  ${String(s.faults).padStart(6)}  ${`${s.pswpout}/${s.pswpin}`.padStart(11)}`,
      );
    }
    ctx.log(`  --jit against the interpreter (time ratio): ${speedups.join(', ')}`);
    if (ctx.noQemu) return;
    const q = qemu();
    if (typeof q === 'string') ctx.log(`  qemu: skipped (${q})`);
    else ctx.log(`  qemu-system-riscv32 -machine virt (whole process, firmware included): ${q.toFixed(2)} s; shadowvisor without pressure is ${(reference / q).toFixed(1)}x that`);
  },
};
