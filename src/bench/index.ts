// npm run bench [-- --quick] [--no-qemu] [--only SECTION[,SECTION]] [--elf FILE ...]
// Runs every benchmark section in turn; new sections register in SECTIONS.

import { balloonSection } from './balloon.js';
import { hartSection } from './hart.js';
import { gruSection } from './gru.js';
import { hostSection } from './host.js';
import { kvmSection } from './kvm.js';
import { linuxSection } from './linux.js';
import { notifiersSection } from './notifiers.js';
import { processSection } from './process.js';
import { substrateSection } from './substrate.js';
import { tortureSection } from './torture.js';
import { vmmSection } from './vmm.js';
import { xpmemSection } from './xpmem.js';
import type { BenchContext, BenchSection } from './section.js';
import { parseBenchArgs } from './args.js';

export const SECTIONS: BenchSection[] = [hartSection, processSection, hostSection, kvmSection, vmmSection, linuxSection, balloonSection, gruSection, xpmemSection, notifiersSection, tortureSection, substrateSection];

const USAGE = `usage: npm run bench -- [--quick] [--no-qemu] [--only SECTION[,SECTION]] [--elf FILE ...]
sections: ${SECTIONS.map((s) => `${s.name} (${s.description})`).join('; ')}`;

export async function main(argv: string[]): Promise<number> {
  const args = parseBenchArgs(argv);
  if (typeof args === 'string') {
    console.error(`bench: ${args}\n${USAGE}`);
    return 2;
  }
  const { quick, noQemu, only, elfs } = args;
  const selected = only ? SECTIONS.filter((s) => only.includes(s.name)) : SECTIONS;
  if (only && selected.length !== only.length) {
    console.error(`bench: unknown section in '${only.join(',')}'\n${USAGE}`);
    return 2;
  }
  const ctx: BenchContext = { quick, noQemu, elfs, log: (line) => console.log(line) };
  console.log(`shadowvisor bench (node ${process.version}${quick ? ', quick' : ''})`);
  for (const s of selected) {
    console.log(`\n== ${s.name}: ${s.description}`);
    await s.run(ctx);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
