import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/args.js';
import { parseRunCommandArgs } from '../../src/vmm/run-command.js';
import { parseBalloonSchedule, parseGuestSeconds } from '../../src/vmm/balloon-options.js';

const MiB = 1 << 20;
const parse = (...argv: string[]) => {
  const r = parseRunCommandArgs(['g.elf', ...argv]);
  if (r === 'help') throw new Error('help');
  return r.config.balloon;
};

describe('run --balloon options', () => {
  it('no balloon option, no device', () => {
    expect(parse()).toBeUndefined();
  });

  it('any balloon option adds the device; the initial target defaults to 0', () => {
    expect(parse('--balloon-stats', '2')).toEqual({ targetPages: 0, statsIntervalTicks: 20_000_000 });
    expect(parse('--balloon', '16M', '--balloon-deflate-on-oom', '--balloon-free-page-reporting')).toEqual({
      targetPages: 4096, deflateOnOom: true, freePageReporting: true,
    });
    expect(parse('--balloon', '0')).toEqual({ targetPages: 0 });
  });

  it('reads a schedule in guest seconds (s, ms, decimals) with SIZE targets', () => {
    expect(parse('--balloon-schedule', '2s:48M,6s:16M,6.5s:0')?.schedule).toEqual([
      { atTicks: 20_000_000, targetPages: 48 * 256 },
      { atTicks: 60_000_000, targetPages: 16 * 256 },
      { atTicks: 65_000_000, targetPages: 0 },
    ]);
    expect(parseGuestSeconds('--x', '500ms')).toBe(5_000_000);
    expect(parseGuestSeconds('--x', '3')).toBe(30_000_000);
  });

  it('says what is wrong with a bad value, in one line', () => {
    const bad: [string[], RegExp][] = [
      [['--balloon', '65M'], /--balloon: 65M is more than the guest's RAM/],
      [['--balloon', '12345'], /not a positive multiple of 4 KiB/],
      [['--balloon-stats', '0'], /longer than 0/],
      [['--balloon-stats', 'soon'], /cannot read time 'soon'/],
      [['--balloon-schedule', '2s'], /'2s' is not TIME:SIZE/],
      [['--balloon-schedule', '2s:1G'], /more than the guest's RAM/],
      [['--balloon-schedule', 'x:1M'], /cannot read time 'x'/],
      [['--balloon-schedule', '1e999s:1M'], /cannot read time/],
    ];
    for (const [argv, msg] of bad) expect(() => parse(...argv), argv.join(' ')).toThrow(msg);
    expect(() => parseBalloonSchedule('--s', '99999999999999999s:1M', 64 * MiB)).toThrow(UsageError);
  });
});
