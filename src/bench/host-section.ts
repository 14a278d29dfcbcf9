// The host kernel section of `npm run bench`: reclaim throughput, notifier call
// cost and simulator memory per MiB (figures computed in host.ts).

import { runHostBench } from './host.js';
import type { BenchSection } from './section.js';

export const hostSection: BenchSection = {
  name: 'host',
  description: 'simulated host kernel: reclaim, mmu_notifier calls, memory per MiB',
  async run(ctx) {
    for (const line of (await runHostBench({ quick: ctx.quick })).split('\n')) ctx.log(line);
  },
};
