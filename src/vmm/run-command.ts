// `shadowvisor run FILE.elf` (without --bare), or `run --kernel Image [--initrd FILE]
// [--append ARGS]` (a Linux kernel, see linux-boot.ts): boot an S-mode guest under the VMM,
// KVM and the simulated host kernel, print its console, then what memory
// management did to it. Argument parsing and printing only; the machine is vmm.ts.
//
// Exit status: the guest's (SRST reset reason, see sbi.ts), or one of vmm.ts's
// EXIT_* codes; 2 for a usage error, an unreadable file or a bad ELF.

import { flag, onePositional, parseCommandArgs, parseCount, parsePositiveCount, parseSize, stringOption, UsageError } from '../args.js';
import { writeFileSync } from 'node:fs';
import { driveRun, EXIT_STDOUT_CLOSED, readImageFile, type CommandIo } from '../cli-io.js';
import { Vmm, type VmmConfig, type VmmResult } from './vmm.js';
import type { BalloonStats } from './devices/virtio-balloon.js';
import type { KvmProtocol } from '../kvm/vm.js';
import { BALLOON_OPTIONS, BALLOON_USAGE, balloonConfigOf } from './balloon-options.js';

export const EXIT_USAGE = 2;

export const RUN_USAGE = `usage: shadowvisor run FILE.elf [options]
       shadowvisor run --kernel Image [--initrd FILE] [--append ARGS] [options]

Boot an RV32 S-mode guest (entered in S-mode at the ELF entry, a0 = hartid,
SBI for console, timer and reset) in a VM whose RAM is ordinary anonymous
memory of the VMM's host process, which the simulated host kernel may swap.

options:
  --kernel Image      boot a RISC-V Linux Image instead of an ELF: loaded at RAM
                      + text_offset, entered with a1 = a device tree the VMM builds
  --initrd FILE       an initramfs for --kernel (linux,initrd-start/end)
  --append ARGS       the kernel command line (default "earlycon=sbi console=hvc0 panic=-1")
  --dtb-out FILE      also write the device tree given to --kernel to FILE
  --guest-mem SIZE    guest RAM at 0x80000000 (default 64M)
  --host-mem SIZE     host RAM the simulated kernel manages (default 32M);
                      the host's swap is twice that
  --protocol P        how KVM keeps its shadow pages coherent with the host:
                      modern (mmu notifier, range_start/end + retry; default),
                      v7 (the 2008 notifier), pin (no notifier: pages pinned)
  --seed N            scheduler seed (default 1); a run is a function of it
  --max-insns N       stop after N guest instructions (exit 124)
  --pressure SIZE     run a second host process that keeps SIZE of memory busy
                      (at most host RAM + swap, three times --host-mem)
  --jit               compile the guest's hot code to JavaScript (the block
                      compiler; the same results as without)
${BALLOON_USAGE}  --json              print the summary as one JSON object on the last line
  -h, --help          this text

exit status: the guest's SBI system-reset reason (0 no reason, 1 system
failure), 124 instruction limit, 125 hart idle forever, 137 the host
OOM-killed the VMM, 70 internal error, 2 usage error or bad ELF,
141 stdout closed before the end
`;

export type RunIo = Omit<CommandIo, 'readFile'> & {
  /** Defaults to readImageFile (regular files only, at most maxBytes). */
  readFile?(path: string, maxBytes: number): Uint8Array;
  /** Defaults to writeFileSync (--dtb-out). */
  writeFile?(path: string, data: Uint8Array): void;
};

const PROTOCOLS: readonly KvmProtocol[] = ['modern', 'v7', 'pin'];

export const RUN_OPTIONS = {
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  'dtb-out': { type: 'string' },
  'guest-mem': { type: 'string' },
  'host-mem': { type: 'string' },
  protocol: { type: 'string' },
  seed: { type: 'string' },
  'max-insns': { type: 'string' },
  pressure: { type: 'string' },
  jit: { type: 'boolean' },
  ...BALLOON_OPTIONS,
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface RunArgs {
  /** The ELF, or with `linux` the kernel Image. */
  file: string;
  linux?: { initrd?: string; append?: string; dtbOut?: string };
  json: boolean;
  config: Omit<VmmConfig, 'onOutput'>;
}

export function parseRunCommandArgs(argv: readonly string[]): RunArgs | 'help' {
  const { values, positionals } = parseCommandArgs(argv, RUN_OPTIONS);
  if (flag(values, 'help')) return 'help';
  const opt = (name: string) => stringOption(values, name);
  const kernel = opt('kernel');
  let file: string;
  if (kernel !== undefined) {
    if (positionals.length > 0) throw new UsageError(`--kernel ${kernel} and an ELF ('${positionals[0]}') given: boot one of them`);
    file = kernel;
  } else {
    for (const o of ['initrd', 'append', 'dtb-out']) if (opt(o) !== undefined) throw new UsageError(`--${o} needs --kernel`);
    file = onePositional(positionals, 'guest image');
  }
  const initrd = opt('initrd');
  const append = opt('append');
  const dtbOut = opt('dtb-out');
  const size = (name: string, dflt: number) => {
    const t = opt(name);
    return t === undefined ? dflt : parseSize(`--${name}`, t);
  };
  const guestMemBytes = size('guest-mem', 64 << 20);
  const hostMemBytes = size('host-mem', 32 << 20);
  const p = opt('protocol') ?? 'modern';
  if (!(PROTOCOLS as readonly string[]).includes(p)) throw new UsageError(`--protocol: '${p}' is not one of ${PROTOCOLS.join(', ')}`);
  const protocol = p as KvmProtocol;
  const seedText = opt('seed');
  const seed = seedText === undefined ? 1 : parseCount('--seed', seedText);
  const maxInsnsText = opt('max-insns');
  const maxInsns = maxInsnsText === undefined ? undefined : parsePositiveCount('--max-insns', maxInsnsText);
  const pressureText = opt('pressure');
  const pressure = pressureText === undefined ? undefined : parseSize('--pressure', pressureText);

  if (guestMemBytes + 0x80000000 > 2 ** 32) throw new UsageError('--guest-mem: RAM at 0x80000000 must end below 4 GiB (at most 2G)');
  // The host's frame buffer is one ArrayBuffer the hart indexes with int32 offsets.
  if (hostMemBytes >= 2 ** 31) throw new UsageError('--host-mem: must be under 2G');
  // Below this the host kernel's min/low/high watermarks leave no frame to allocate.
  if (hostMemBytes < 256 * 1024) throw new UsageError('--host-mem: must be at least 256K');
  // More than RAM + swap cannot be kept busy: the host would OOM-kill instead
  // (and past the pressure process's address space its mmap fails outright).
  const pressureMax = 3 * hostMemBytes;
  if (pressure !== undefined && pressure > pressureMax) {
    throw new UsageError(`--pressure: ${pressureText} is more than the host's RAM and swap together (at most ${pressureMax >> 10}K with --host-mem ${hostMemBytes >> 10}K)`);
  }
  const balloon = balloonConfigOf(values, guestMemBytes);
  return {
    file,
    ...(kernel !== undefined ? {
      linux: { ...(initrd !== undefined ? { initrd } : {}), ...(append !== undefined ? { append } : {}), ...(dtbOut !== undefined ? { dtbOut } : {}) },
    } : {}),
    json: flag(values, 'json'),
    config: {
      guestMemBytes,
      hostMemBytes,
      protocol,
      seed,
      ...(maxInsns !== undefined ? { maxInsns } : {}),
      ...(pressure !== undefined ? { pressure: { bytes: pressure } } : {}),
      ...(balloon !== undefined ? { balloon } : {}),
      ...(flag(values, 'jit') ? { jit: {} } : {}),
    },
  };
}

/** The numbers the summary shows, flat, as --json prints them. */
export function summarize(args: RunArgs, r: VmmResult): Record<string, unknown> {
  const g = r.stats.guest;
  const h = r.stats.host;
  const n = (k: string) => (typeof g[k] === 'number' ? (g[k] as number) : 0);
  return {
    exitCode: r.exitCode,
    reason: r.reason,
    ...(r.message !== undefined ? { message: r.message } : {}),
    protocol: args.config.protocol,
    seed: args.config.seed,
    guestMemBytes: args.config.guestMemBytes,
    hostMemBytes: args.config.hostMemBytes,
    pageFaults: { taken: n('pf_taken'), fixed: n('pf_fixed'), retries: n('pf_retry'), guest: n('pf_guest') },
    swap: { out: h.pswpout, in: h.pswpin },
    invalidations: n('invalidations'),
    aging: { calls: n('age_calls'), youngHits: n('young_hits') },
    oomKills: h.oomKill,
    instructions: r.stats.instructions,
    ticks: r.stats.ticks,
    sbiCalls: r.stats.sbiCalls,
    ...(r.stats.balloon !== undefined ? { balloon: r.stats.balloon } : {}),
    kvm: g,
    host: h,
  };
}

/** "1: 812, 2-3: 40, ..." from kvm stats' rmap_histogram, empty buckets left out. */
function rmapLine(kvm: unknown): string {
  const h = (kvm as { rmap_histogram?: Record<string, number> }).rmap_histogram ?? {};
  const parts = Object.entries(h).filter(([, n]) => n > 0).map(([k, n]) => `${k}: ${n}`);
  return parts.length > 0 ? parts.join(', ') : 'none';
}

function textSummary(s: ReturnType<typeof summarize>): string {
  const pf = s.pageFaults as { taken: number; fixed: number; retries: number; guest: number };
  const sw = s.swap as { out: number; in: number };
  const ag = s.aging as { calls: number; youngHits: number };
  return [
    `--- shadowvisor: guest exit status ${s.exitCode} (${s.reason}), protocol ${s.protocol}, seed ${s.seed}`,
    `page faults:   ${pf.taken} taken, ${pf.fixed} fixed, ${pf.retries} retries, ${pf.guest} reflected to the guest`,
    `swap:          ${sw.out} pages out, ${sw.in} pages in`,
    `mmu notifier:  ${s.invalidations} invalidations, ${ag.calls} aging calls, ${ag.youngHits} young hits`,
    `rmap chains:   ${rmapLine(s.kvm)} (sptes per gfn at shutdown)`,
    `instructions:  ${s.instructions} (${s.ticks} simulated ticks, ${s.sbiCalls} SBI calls)`,
    ...(s.balloon !== undefined ? [balloonLine(s.balloon as BalloonStats)] : []),
    '',
  ].join('\n');
}

function balloonLine(b: BalloonStats): string {
  const mib = (pages: number) => `${(pages * 4096 / (1 << 20)).toFixed(1)} MiB`;
  const g = b.guest;
  const guest = b.statsUpdatedAt === null ? '' :
    `; guest free ${mib((g.free_memory ?? 0) / 4096)} of ${mib((g.total_memory ?? 0) / 4096)} at tick ${b.statsUpdatedAt}`;
  return `balloon:       target ${mib(b.targetPages)}, actual ${mib(b.actualPages)}, holds ${mib(b.inflatedPages)}; ` +
    `${b.inflateRequests} inflate / ${b.deflateRequests} deflate requests, ${mib(b.reportedPages)} reported free, ` +
    `host got back ${mib(b.hostFreedPages)}${guest}`;
}

export async function runCommand(argv: readonly string[], io: RunIo): Promise<number> {
  let args: RunArgs;
  try {
    const parsed = parseRunCommandArgs(argv);
    if (parsed === 'help') {
      io.stdout(RUN_USAGE);
      return 0;
    }
    args = parsed;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`shadowvisor run: ${e.message}\n\n${RUN_USAGE}`);
      return EXIT_USAGE;
    }
    throw e;
  }

  const read = (path: string): Uint8Array | null => {
    try {
      return (io.readFile ?? readImageFile)(path, args.config.guestMemBytes);
    } catch (e) {
      io.stderr(`shadowvisor run: cannot read ${path}: ${(e as Error).message}\n`);
      return null;
    }
  };
  const elf = read(args.file);
  if (elf === null) return EXIT_USAGE;
  const initrd = args.linux?.initrd !== undefined ? read(args.linux.initrd) : undefined;
  if (initrd === null) return EXIT_USAGE;

  let lastByte = 0x0a;
  const vmm = new Vmm({
    ...args.config,
    onOutput: (bytes) => {
      if (bytes.length > 0) lastByte = bytes[bytes.length - 1]!;
      io.stdout(bytes);
    },
  });
  let err: string | null;
  if (args.linux === undefined) {
    err = vmm.boot(elf);
  } else {
    err = vmm.bootLinux(elf, {
      ...(initrd !== undefined ? { initrd } : {}),
      ...(args.linux.append !== undefined ? { bootargs: args.linux.append } : {}),
    });
    const dtb = vmm.linuxBoot?.dtb;
    if (args.linux.dtbOut !== undefined && dtb !== undefined) {
      try {
        (io.writeFile ?? writeFileSync)(args.linux.dtbOut, dtb);
      } catch (e) {
        io.stderr(`shadowvisor run: cannot write ${args.linux.dtbOut}: ${(e as Error).message}\n`);
        return EXIT_USAGE;
      }
    }
  }
  const result = await driveRun(io, (pause) => vmm.resume(pause));
  if (result === null) return EXIT_STDOUT_CLOSED;
  if (err !== null) {
    io.stderr(`shadowvisor run: ${args.file}: ${err}\n`);
    return result.exitCode;
  }
  if (lastByte !== 0x0a) io.stdout('\n');
  if (result.message !== undefined) io.stderr(`shadowvisor run: ${result.message}\n`);
  if (result.reason === 'internal-error') io.stderr(reproduceLine(argv, args.config.seed ?? 1));
  const summary = summarize(args, result);
  io.stdout(args.json ? JSON.stringify(summary) + '\n' : textSummary(summary));
  return result.exitCode;
}

/** A run is a function of (image, options, seed): the same command line replays it. */
export function reproduceLine(argv: readonly string[], seed: number): string {
  const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`));
  return `shadowvisor: seed ${seed}; to reproduce: shadowvisor run ${quoted.join(' ')}\n`;
}
