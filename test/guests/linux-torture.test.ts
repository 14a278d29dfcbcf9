// `shadowvisor torture --kernel`: the Linux guest as a campaign unit, judged by
// its exit status, its console and the hash of its memory at the end against a
// run without host pressure. A short workload (the init's balloon mode without
// a balloon: it dirties and frees 8 MiB and powers off) keeps a boot near 70 M
// instructions. Behind SHADOWVISOR_LINUX=1, as the other Linux boots.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { reproduceCommand } from '../../src/torture/campaign.js';
import { runCampaign } from '../../src/torture/command.js';
import type { GuestSpec } from '../../src/torture/guest.js';

const bin = (f: string) => fileURLToPath(new URL(`../../guest-programs/bin/${f}`, import.meta.url));
const enabled = process.env.SHADOWVISOR_LINUX === '1';

const linux: GuestSpec = {
  path: bin('linux-Image'),
  guestMem: 64 << 20,
  hostMem: 12 << 20,
  linux: { initrd: bin('linux-initramfs.cpio'), append: 'earlycon=sbi console=hvc0 panic=-1 svmode=balloon svtouch=8 svsecs=0' },
};

describe.skipIf(!enabled)('torture --kernel', () => {
  it('modern and v7 end with the reference run\'s output and guest memory; the failure line would replay it', async () => {
    const records = await runCampaign({ scenarios: [], protocols: ['modern', 'v7'], policy: 'random', seedFrom: 1, seedTo: 2, preemptions: 2, guest: linux }, 1);
    expect(records.map((r) => [r.scenario, r.protocol, r.seed, r.ok, r.problems ?? []])).toEqual([
      ['linux:linux-Image', 'modern', 1, true, []],
      ['linux:linux-Image', 'modern', 2, true, []],
      ['linux:linux-Image', 'v7', 1, true, []],
      ['linux:linux-Image', 'v7', 2, true, []],
    ]);
    expect(reproduceCommand(records[0]!)).toBe(
      `shadowvisor replay --kernel ${linux.path} --initrd ${linux.linux!.initrd} --append 'earlycon=sbi console=hvc0 panic=-1 svmode=balloon svtouch=8 svsecs=0' ` +
      '--guest-mem 65536K --host-mem 12288K --protocol modern --seed 1');
  }, 300_000);
});
