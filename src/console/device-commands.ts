// The console's side of the VMM's devices: `balloon SIZE` sets the balloon's
// target as QEMU's monitor and Firecracker's PATCH /balloon do; `info balloon` is
// QEMU's `info balloon` line plus Firecracker's statistics (target, actual, the
// guest's last stats and when they came) and the host-side effect; `info plic` and
// `info virtio` are the devices' own dumps. commands.ts puts them in its tables.
//
// SIZE is the balloon's size, what the guest gives back, as `--balloon SIZE` and
// Firecracker's amount_mib mean it; a bare number is MiB, as QEMU's monitor reads
// one. (QEMU's `balloon N` names the memory the guest keeps instead; `info balloon`
// prints that number too, as QEMU's actual=.)

import { UsageError } from '../args.js';
import { parseBalloonSize } from '../vmm/balloon-options.js';
import { BALLOON_STAT_NAMES, type BalloonStats } from '../vmm/devices/virtio-balloon.js';
import { TIMEBASE_FREQUENCY } from '../vmm/linux-boot.js';
import { VIRTIO_BALLOON_IRQ, type Vmm } from '../vmm/vmm.js';
import type { Command, CommandResult, ConsoleContext } from './commands.js';
import { ConsoleError } from './session.js';

const PAGE_SIZE = 4096;
const MiB = 1 << 20;
/** The stats that are byte counts (the rest count pages or events). */
const BYTE_STATS = new Set(['free_memory', 'total_memory', 'available_memory', 'disk_caches']);

const mib = (pages: number): string => `${((pages * PAGE_SIZE) / MiB).toFixed(1)} MiB`;
const seconds = (ticks: number): string => `${(ticks / TIMEBASE_FREQUENCY).toFixed(3)} s`;
const hexa = (v: number): string => '0x' + v.toString(16);

function expectNoMore(args: readonly string[], from: number, usage: string): void {
  if (args.length > from) throw new ConsoleError(`unexpected argument '${args[from]}' (usage: ${usage})`);
}

function balloonOf(vmm: Vmm): NonNullable<Vmm['balloon']> {
  if (vmm.balloon === null) {
    throw new ConsoleError('no balloon device (start the console with --balloon SIZE, --balloon 0 for an empty one)');
  }
  return vmm.balloon;
}

/** "16M", "4096K", "0" as --balloon reads them; a bare number is MiB. */
function parseTarget(text: string | undefined, guestMemBytes: number): number {
  if (text === undefined) throw new ConsoleError('usage: balloon SIZE (16M, 512K, or a bare number of MiB)');
  let bytes: number;
  try {
    bytes = /^\d+$/.test(text) ? Number(text) * MiB : parseBalloonSize('balloon', text);
  } catch (e) {
    if (e instanceof UsageError) throw new ConsoleError(e.message);
    throw e;
  }
  if (!Number.isSafeInteger(bytes) || bytes > guestMemBytes) {
    throw new ConsoleError(`balloon: ${text} is more than the guest's RAM (${guestMemBytes / MiB} MiB)`);
  }
  return bytes / PAGE_SIZE;
}

function driverState(vmm: Vmm): string {
  const t = vmm.balloonTransport;
  if (t === null) return 'no transport';
  if (t.broken) return `DEVICE_NEEDS_RESET (${t.lastError ?? 'no reason recorded'})`;
  return t.driverOk ? `DRIVER_OK, features ${t.negotiated}` : 'no driver has started the device yet';
}

function balloonInfo(ctx: ConsoleContext): CommandResult {
  const vmm = ctx.session.vmm;
  const b: BalloonStats = balloonOf(vmm).stats();
  const ramPages = vmm.config.guestMemBytes / PAGE_SIZE;
  // QEMU's info balloon: actual= is the guest's RAM less what the balloon holds, in MiB.
  const qemuActual = Math.floor(((ramPages - b.actualPages) * PAGE_SIZE) / MiB);
  const lines = [
    `balloon: actual=${qemuActual}  (MiB the guest keeps, as QEMU prints it)`,
    `target:   ${mib(b.targetPages)} (${b.targetPages} pages)  actual: ${mib(b.actualPages)} (${b.actualPages} pages)  held: ${b.inflatedPages} pages`,
    `requests: ${b.inflateRequests} inflate, ${b.deflateRequests} deflate, ${b.rejectedPfns} pfns rejected`,
    `reported: ${b.reportedPages} free pages in ${b.reports} reports${vmm.config.balloon?.freePageReporting ? '' : ' (free page reporting not offered)'}`,
    `host:     the VMM's footprint fell ${b.hostFreedPages} pages (${mib(b.hostFreedPages)}), ${b.hostFramesFreed} host frames freed (pages the host never backed cost nothing to give back)`,
    `driver:   ${driverState(vmm)}`,
  ];
  const interval = vmm.config.balloon?.statsIntervalTicks;
  if (b.statsUpdatedAt === null) {
    lines.push(interval ? `guest stats: none yet (polled every ${seconds(interval)})` : 'guest stats: not offered (--balloon-stats SECONDS)');
  } else {
    lines.push(`guest stats: update ${b.statsUpdates} at tick ${b.statsUpdatedAt} (${seconds(b.statsUpdatedAt)}; now ${seconds(vmm.sched.now)}), polled every ${seconds(interval ?? 0)}`);
    const cells = BALLOON_STAT_NAMES.filter((n) => b.guest[n] !== undefined)
      .map((n) => (BYTE_STATS.has(n) ? `${n} ${mib(b.guest[n]! / PAGE_SIZE)}` : `${n} ${b.guest[n]}`));
    for (let i = 0; i < cells.length; i += 4) lines.push(`  ${cells.slice(i, i + 4).join('  ')}`);
  }
  return {
    text: lines.join('\n'),
    data: {
      ...b,
      // Firecracker's GET /balloon/statistics names, and QEMU's actual.
      targetMib: (b.targetPages * PAGE_SIZE) / MiB,
      actualMib: (b.actualPages * PAGE_SIZE) / MiB,
      qemuActualMib: qemuActual,
      statsIntervalTicks: interval ?? null,
      now: vmm.sched.now,
      driverOk: vmm.balloonTransport?.driverOk ?? false,
    },
  };
}

/** `balloon SIZE`: a command of its own. */
export const BALLOON_COMMAND: Command = {
  name: 'balloon',
  args: 'SIZE',
  help: "set the balloon's target, what the guest gives back (16M, 512K, 0; a bare number is MiB); the driver moves actual as the guest runs",
  run(ctx, args) {
    const vmm = ctx.session.vmm;
    const balloon = balloonOf(vmm);
    ctx.session.live();
    const pages = parseTarget(args[0], vmm.config.guestMemBytes);
    expectNoMore(args, 1, 'balloon SIZE');
    const before = balloon.stats();
    balloon.setTarget(pages);
    const keeps = vmm.config.guestMemBytes / PAGE_SIZE - pages;
    const t = vmm.balloonTransport;
    const note = t?.driverOk ? 'the driver moves actual when the guest runs' : 'no driver yet: it reads the target when it starts the device';
    return {
      text: `balloon target ${mib(pages)} (${pages} pages, was ${before.targetPages}): the guest keeps ${mib(keeps)}; actual ${mib(before.actualPages)} now, ${note}`,
      data: { targetPages: pages, targetMib: (pages * PAGE_SIZE) / MiB, previousTargetPages: before.targetPages, actualPages: before.actualPages, driverOk: t?.driverOk ?? false },
    };
  },
};

/** The info subcommands: balloon, plic, virtio. */
export const DEVICE_INFO: Command[] = [
  {
    name: 'balloon',
    args: '',
    help: "the balloon: target, actual, requests, reported pages, what the host got back, the guest's last stats and when",
    run(ctx, args) {
      expectNoMore(args, 0, 'info balloon');
      return balloonInfo(ctx);
    },
  },
  {
    name: 'plic',
    args: '',
    help: 'the interrupt controller: SEIP, threshold, enabled, pending and claimed sources',
    run(ctx, args) {
      expectNoMore(args, 0, 'info plic');
      const vmm = ctx.session.vmm;
      const sources = vmm.balloonTransport !== null ? [{ irq: VIRTIO_BALLOON_IRQ, device: vmm.balloonTransport.name }] : [];
      const text = [vmm.plic.dump(), ...sources.map((s) => `  source ${s.irq}: ${s.device}`)].join('\n');
      return { text, data: { dump: vmm.plic.dump(), sources } };
    },
  },
  {
    name: 'virtio',
    args: '',
    help: 'the virtio-mmio devices: status, negotiated features, queues (avail/used), interrupt status, the last error',
    run(ctx, args) {
      expectNoMore(args, 0, 'info virtio');
      const t = ctx.session.vmm.balloonTransport;
      if (t === null) return { text: 'no virtio devices (--balloon SIZE adds a virtio-balloon)', data: { devices: [] } };
      const dev = {
        name: t.name, base: t.base, irq: VIRTIO_BALLOON_IRQ, deviceId: t.backend.deviceId, driverOk: t.driverOk, broken: t.broken,
        features: String(t.negotiated), lastError: t.lastError, dump: t.dump(),
      };
      return { text: `${t.dump()}\n  irq ${dev.irq}, mmio ${hexa(t.base)}-${hexa(t.base + t.size)}, ${driverState(ctx.session.vmm)}`, data: { devices: [dev] } };
    },
  },
];
