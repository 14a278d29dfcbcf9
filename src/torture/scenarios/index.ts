// The named scenarios, in `shadowvisor torture --list` order.

import type { Scenario } from '../scenario.js';
import { agingVsWrite } from './aging-vs-write.js';
import { dontneedVsFault } from './dontneed-vs-fault.js';
import { faultVsUnmap } from './fault-vs-unmap.js';
import { memslotDeleteVsFault } from './memslot-delete-vs-fault.js';
import { memslotMoveVsInvalidate } from './memslot-move-vs-invalidate.js';
import { munmapVsFault } from './munmap-vs-fault.js';
import { oomKillMidFault } from './oom-kill-mid-fault.js';
import { rangeEndWindow } from './range-end-window.js';
import { registerVsUnmap } from './register-vs-unmap.js';
import { releaseVsFault } from './release-vs-fault.js';
import { swapinVsInvalidate } from './swapin-vs-invalidate.js';
import { unregisterVsCallback } from './unregister-vs-callback.js';
import { unregisterVsRelease } from './unregister-vs-release.js';

export const SCENARIOS: readonly Scenario[] = [
  faultVsUnmap,
  rangeEndWindow,
  dontneedVsFault,
  munmapVsFault,
  memslotDeleteVsFault,
  memslotMoveVsInvalidate,
  agingVsWrite,
  swapinVsInvalidate,
  releaseVsFault,
  unregisterVsRelease,
  unregisterVsCallback,
  registerVsUnmap,
  oomKillMidFault,
];

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
