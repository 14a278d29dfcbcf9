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
import { tortureSection } from './torture.js';
import { vmmSection } from './vmm.js';
import { xpmemSection } from './xpmem.js';
import type { BenchContext, BenchSection } from './section.js';

export const SECTIONS: BenchSection[] = [hartSection, processSection, hostSection, kvmSection, vmmSection, linuxSection, balloonSection, gruSection, xpmemSection, notifiersSection, tortureSection];

const USAGE = `usage: npm run bench -- [--quick] [--no-qemu] [--only SECTION[,SECTION]] [--elf FILE ...]
sections: ${SECTIONS.map((s) => `${s.name} (${s.description})`).join('; ')}`;

export async function main(argv: string[]): Promise<number> {
  let quick = false;
  let noQemu = false;
  let only: string[] | undefined;
  const elfs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--no-qemu') noQemu = true;
    else if (a === '--only' && argv[i + 1] !== undefined) only = argv[++i]!.split(',');
    else if (a.startsWith('--only=')) only = a.slice(7).split(',');
    else if (a === '--elf' && argv[i + 1] !== undefined) elfs.push(argv[++i]!);
    else if (a.startsWith('--elf=')) elfs.push(a.slice(6));
    else {
      console.error(`bench: unknown argument '${a}'\n${USAGE}`);
      return 2;
    }
  }
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
