// `shadowvisor run FILE.elf` (without --bare): boot an S-mode guest under the VMM,
// KVM and the simulated host kernel, print its console, then what memory
// management did to it. Argument parsing and printing only; the machine is vmm.ts.
//
// Exit status: the guest's (SRST reset reason, see sbi.ts), or one of vmm.ts's
// EXIT_* codes; 2 for a usage error, an unreadable file or a bad ELF.

import { readFileSync } from 'node:fs';
import { forEachArg, parseCount, parseSize, UsageError } from '../args.js';
import { Vmm, type VmmConfig, type VmmResult } from './vmm.js';
import type { KvmProtocol } from '../kvm/vm.js';

export const EXIT_USAGE = 2;

export const RUN_USAGE = `usage: shadowvisor run FILE.elf [options]

Boot an RV32 S-mode guest (entered in S-mode at the ELF entry, a0 = hartid,
SBI for console, timer and reset) in a VM whose RAM is ordinary anonymous
memory of the VMM's host process, which the simulated host kernel may swap.

options:
  --guest-mem SIZE    guest RAM at 0x80000000 (default 64M)
  --host-mem SIZE     host RAM the simulated kernel manages (default 32M)
  --protocol P        how KVM keeps its shadow pages coherent with the host:
                      modern (mmu notifier, range_start/end + retry; default),
                      v7 (the 2008 notifier), pin (no notifier: pages pinned)
  --seed N            scheduler seed (default 1); a run is a function of it
  --max-insns N       stop after N guest instructions (exit 124)
  --pressure SIZE     run a second host process that keeps SIZE of memory busy
  --json              print the summary as one JSON object on the last line
  -h, --help          this text

exit status: the guest's SBI system-reset reason (0 no reason, 1 system
failure), 124 instruction limit, 125 hart idle forever, 137 the host
OOM-killed the VMM, 70 internal error, 2 usage error or bad ELF
`;

export interface RunIo {
  stdout(chunk: string | Uint8Array): void;
  stderr(chunk: string | Uint8Array): void;
  /** Defaults to fs.readFileSync. */
  readFile?(path: string): Uint8Array;
}

const PROTOCOLS: readonly KvmProtocol[] = ['modern', 'v7', 'pin'];

export interface RunArgs {
  file: string;
  json: boolean;
  config: Omit<VmmConfig, 'onOutput'>;
}

export function parseRunCommandArgs(argv: string[]): RunArgs | 'help' {
  let file: string | undefined;
  let json = false;
  let guestMemBytes = 64 << 20;
  let hostMemBytes = 32 << 20;
  let protocol: KvmProtocol = 'modern';
  let seed = 1;
  let maxInsns: number | undefined;
  let pressure: number | undefined;
  let help = false;
  forEachArg(argv, (arg, value, inline) => {
    switch (arg) {
      case '-h':
      case '--help':
        help = true;
        break;
      case '--guest-mem':
        guestMemBytes = parseSize(arg, value());
        break;
      case '--host-mem':
        hostMemBytes = parseSize(arg, value());
        break;
      case '--protocol': {
        const p = value();
        if (!(PROTOCOLS as readonly string[]).includes(p)) throw new UsageError(`--protocol: '${p}' is not one of ${PROTOCOLS.join(', ')}`);
        protocol = p as KvmProtocol;
        break;
      }
      case '--seed':
        seed = parseCount(arg, value());
        break;
      case '--max-insns':
        maxInsns = parseCount(arg, value());
        break;
      case '--pressure':
        pressure = parseSize(arg, value());
        break;
      case '--json':
        if (inline !== undefined) throw new UsageError('--json takes no value');
        json = true;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option: ${arg}`);
        if (file !== undefined) throw new UsageError(`more than one guest image: ${file}, ${arg}`);
        file = arg;
    }
  });
  if (help) return 'help';
  if (file === undefined) throw new UsageError('no guest image given');
  if (guestMemBytes + 0x80000000 > 2 ** 32) throw new UsageError('--guest-mem: RAM at 0x80000000 must end below 4 GiB (at most 2G)');
  // The host's frame buffer is one ArrayBuffer the hart indexes with int32 offsets.
  if (hostMemBytes >= 2 ** 31) throw new UsageError('--host-mem: must be under 2G');
  // Below this the host kernel's min/low/high watermarks leave no frame to allocate.
  if (hostMemBytes < 256 * 1024) throw new UsageError('--host-mem: must be at least 256K');
  return {
    file,
    json,
    config: {
      guestMemBytes,
      hostMemBytes,
      protocol,
      seed,
      ...(maxInsns !== undefined ? { maxInsns } : {}),
      ...(pressure !== undefined ? { pressure: { bytes: pressure } } : {}),
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
    '',
  ].join('\n');
}

export function runCommand(argv: string[], io: RunIo): number {
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

  let elf: Uint8Array;
  try {
    elf = (io.readFile ?? readFileSync)(args.file);
  } catch (e) {
    io.stderr(`shadowvisor run: cannot read ${args.file}: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }

  let lastByte = 0x0a;
  const vmm = new Vmm({
    ...args.config,
    onOutput: (bytes) => {
      if (bytes.length > 0) lastByte = bytes[bytes.length - 1]!;
      io.stdout(bytes);
    },
  });
  const err = vmm.boot(elf);
  const result = vmm.run();
  if (err !== null) {
    io.stderr(`shadowvisor run: ${args.file}: ${err}\n`);
    return result.exitCode;
  }
  if (lastByte !== 0x0a) io.stdout('\n');
  if (result.message !== undefined) io.stderr(`shadowvisor run: ${result.message}\n`);
  const summary = summarize(args, result);
  io.stdout(args.json ? JSON.stringify(summary) + '\n' : textSummary(summary));
  return result.exitCode;
}
