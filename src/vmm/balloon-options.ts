// The balloon's options on `shadowvisor run`, in QEMU's and Firecracker's words:
//   --balloon SIZE                  initial target (QEMU `balloon`, Firecracker amount_mib), 0 allowed
//   --balloon-deflate-on-oom        offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM (Firecracker deflate_on_oom)
//   --balloon-stats SECONDS         offer the stats queue, polled that often (stats_polling_interval_s)
//   --balloon-free-page-reporting   offer VIRTIO_BALLOON_F_REPORTING (free_page_reporting)
//   --balloon-schedule T:SIZE,...   set the target to SIZE at time T (e.g. 2s:48M,6s:16M)
// Times are guest seconds: the `time` CSR's rate the device tree announces
// (TIMEBASE_FREQUENCY), which the simulated clock keeps with the guest.

import { parseSize, UsageError } from '../args.js';
import { TIMEBASE_FREQUENCY } from './linux-boot.js';
import type { BalloonConfig } from './devices/virtio-balloon.js';
import type { BalloonStep } from './vmm.js';

const PAGE_SIZE = 4096;

export const BALLOON_OPTIONS = {
  balloon: { type: 'string' },
  'balloon-deflate-on-oom': { type: 'boolean' },
  'balloon-stats': { type: 'string' },
  'balloon-free-page-reporting': { type: 'boolean' },
  'balloon-schedule': { type: 'string' },
} as const;

export const BALLOON_USAGE = `  --balloon SIZE      add a virtio-balloon (virtio-mmio at 0x10001000) with
                      this initial target; the guest gives SIZE back to the host
  --balloon-deflate-on-oom       let the guest take pages back when it is out of memory
  --balloon-stats SECONDS        offer the stats queue, polled every SECONDS
  --balloon-free-page-reporting  offer free page reporting (free guest memory
                      goes back to the host without a target change)
  --balloon-schedule T:SIZE,...  set the target to SIZE at guest time T
                      (seconds, e.g. 2s:48M,6s:16M)
`;

/** A size that may be 0 (an empty balloon), else a multiple of 4 KiB. */
export function parseBalloonSize(option: string, text: string): number {
  if (/^0+[KMG]?(i?B)?$/i.test(text.trim())) return 0;
  return parseSize(option, text);
}

/** Seconds of guest time ("2", "2s", "0.5s", "500ms") in simulated ticks. */
export function parseGuestSeconds(option: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|ms)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${option}: cannot read time '${text}' (try 2s or 500ms)`);
  const seconds = Number(m[1]) / (m[2] === 'ms' ? 1000 : 1);
  const ticks = Math.round(seconds * TIMEBASE_FREQUENCY);
  if (!Number.isSafeInteger(ticks)) throw new UsageError(`${option}: ${text} is too long`);
  return ticks;
}

export function parseBalloonSchedule(option: string, text: string, guestMemBytes: number): BalloonStep[] {
  const steps: BalloonStep[] = [];
  for (const part of text.split(',')) {
    const colon = part.indexOf(':');
    if (colon < 0) throw new UsageError(`${option}: '${part}' is not TIME:SIZE (e.g. 2s:48M)`);
    const atTicks = parseGuestSeconds(option, part.slice(0, colon));
    const bytes = parseBalloonSize(option, part.slice(colon + 1));
    if (bytes > guestMemBytes) throw new UsageError(`${option}: ${part.slice(colon + 1)} is more than the guest's RAM`);
    steps.push({ atTicks, targetPages: bytes / PAGE_SIZE });
  }
  return steps;
}

type Values = { [K in keyof typeof BALLOON_OPTIONS]?: (typeof BALLOON_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** The balloon config the options ask for, or undefined when none of them is given. */
export function balloonConfigOf(values: Values, guestMemBytes: number): (BalloonConfig & { schedule?: BalloonStep[] }) | undefined {
  const any = Object.keys(BALLOON_OPTIONS).some((k) => values[k as keyof Values] !== undefined && values[k as keyof Values] !== false);
  if (!any) return undefined;
  const target = values.balloon === undefined ? 0 : parseBalloonSize('--balloon', values.balloon);
  if (target > guestMemBytes) throw new UsageError(`--balloon: ${values.balloon} is more than the guest's RAM`);
  const stats = values['balloon-stats'] === undefined ? undefined : parseGuestSeconds('--balloon-stats', values['balloon-stats']);
  if (stats === 0) throw new UsageError('--balloon-stats: the interval must be longer than 0');
  const schedule = values['balloon-schedule'] === undefined ? undefined : parseBalloonSchedule('--balloon-schedule', values['balloon-schedule'], guestMemBytes);
  return {
    targetPages: target / PAGE_SIZE,
    ...(values['balloon-deflate-on-oom'] === true ? { deflateOnOom: true } : {}),
    ...(stats !== undefined ? { statsIntervalTicks: stats } : {}),
    ...(values['balloon-free-page-reporting'] === true ? { freePageReporting: true } : {}),
    ...(schedule !== undefined ? { schedule } : {}),
  };
}
