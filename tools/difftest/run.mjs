#!/usr/bin/env node
// Differential test of the bare hart against QEMU's spike machine.
//
//   node tools/difftest/run.mjs [--seeds N] [--start S] [--length L] [--jobs J]
//                               [--misaligned] [--keep] [--out DIR] [--engine interp|jit|both] [--jit]
//   node tools/difftest/run.mjs --asm FILE.S [...]   # compare one complete hand-written program
//   node tools/difftest/run.mjs --probe guest-programs/difftest/priv-probe.S [...]
//                               # a probe body (see that file) + gen.mjs's runtime()
//
// Needs riscv64-unknown-elf-gcc, qemu-system-riscv32 and a built dist/ (npx tsc -p tsconfig.json).
// Every seed: generate (gen.mjs) -> build -> run QEMU and ours -> compare the HTIF
// console dumps line by line. Ours runs once per engine (--engine, default both):
// the interpreter, and the block compiler with threshold 1 (every block compiled
// the first time it is reached: a random program runs its body once). Mismatching
// programs (and with --keep, all) stay in --out.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import { generate, runtime } from './gen.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const flag = (name) => args.includes(name);
const seeds = Number(opt('--seeds', '100'));
const start = Number(opt('--start', '1'));
const length = Number(opt('--length', '400'));
const jobs = Number(opt('--jobs', String(Math.max(1, Math.min(8, cpus().length)))));
const outDir = resolve(opt('--out', '/tmp/shadowvisor-difftest'));
const asmFiles = args.flatMap((a, i) => (args[i - 1] === '--asm' ? [a] : []));
const probeFiles = args.flatMap((a, i) => (args[i - 1] === '--probe' ? [a] : []));
const misaligned = flag('--misaligned');
const keep = flag('--keep');
const engineOpt = flag('--jit') ? 'jit' : opt('--engine', 'both');
const ENGINE_ARGS = { interp: [], jit: ['--jit', '--jit-threshold', '1'] };
if (!['interp', 'jit', 'both'].includes(engineOpt)) throw new Error(`--engine: '${engineOpt}' is not interp, jit or both`);
const engines = engineOpt === 'both' ? ['interp', 'jit'] : [engineOpt];

const CC = process.env.RISCV_CC ?? 'riscv64-unknown-elf-gcc';
// QEMU reduced to our ISA: no C (so misaligned jumps trap), no F/D, no bitmanip.
// The console goes to a file: on -nographic's stdio mux QEMU drops HTIF bytes.
export const QEMU = ['qemu-system-riscv32', '-machine', 'spike', '-bios', 'none', '-display', 'none', '-monitor', 'none',
  '-cpu', 'rv32,c=false,f=false,d=false,h=false,zba=false,zbb=false,zbc=false,zbs=false'];
const CLI = [join(root, 'dist/cli.js'), 'run', '--bare'];

function sh(cmd, argv, timeoutMs) {
  return new Promise((res) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, sig) => { clearTimeout(t); res({ code, sig, out, err }); });
  });
}

async function build(src, elf) {
  const r = await sh(CC, ['-march=rv32ima_zicsr_zifencei', '-mabi=ilp32', '-nostdlib', '-nostartfiles', '-static',
    '-T', join(root, 'guest-programs/common/link.ld'), '-Wl,--no-warn-rwx-segments', '-o', elf, src], 60000);
  if (r.code !== 0) throw new Error(`build failed for ${src}:\n${r.err}`);
}

// Trap-log lines "T cause mepc mtval" where QEMU 7.2 is known to differ and the spec allows ours.
function knownQemuDifference(q, o) {
  const qm = /^T ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})$/.exec(q ?? '');
  const om = /^T ([0-9a-f]{8}) ([0-9a-f]{8}) ([0-9a-f]{8})$/.exec(o ?? '');
  if (!qm || !om || qm[1] !== om[1] || qm[2] !== om[2]) return false;
  const cause = parseInt(om[1], 16), epc = parseInt(om[2], 16), tq = parseInt(qm[3], 16), to = parseInt(om[3], 16);
  // ebreak: QEMU writes mtval = 0, we write the pc (Spike does too); both allowed (priv 3.1.16).
  if (cause === 3 && tq === 0 && to === epc) return true;
  // A taken branch/jal to pc+6 (the generator's only such form): QEMU 7.2 stores a stale pc
  // (cpu_pc of the translation block) in mtval; the spec wants the target.
  if (cause === 0 && ((to - epc) >>> 0) === 6) return true;
  return false;
}

async function compare(name, src) {
  const elf = src.replace(/\.S$/, '.elf');
  await build(src, elf);
  const [q, ...ours] = await Promise.all([
    sh(QEMU[0], [...QEMU.slice(1), '-serial', `file:${elf}.qemu.txt`, '-kernel', elf], 30000)
      .then((r) => ({ ...r, out: existsSync(`${elf}.qemu.txt`) ? readFileSync(`${elf}.qemu.txt`, 'utf8') : '' })),
    ...engines.map((e) => sh('node', [...CLI, ...ENGINE_ARGS[e], elf, '--max-insns', '5000000'], 60000)),
  ]);
  const ql = q.out.replace(/\r/g, '').split('\n');
  const diffs = [];
  const failedEngines = [];
  if (q.code !== 0) diffs.push(`  qemu exited ${q.code ?? q.sig}: ${q.err.trim()}`);
  let traps = 0;
  engines.forEach((engine, k) => {
    const o = ours[k];
    const ol = o.out.split('\n');
    const mine = [];
    for (let i = 0; i < Math.max(ql.length, ol.length); i++) {
      if (ql[i] !== ol[i] && !knownQemuDifference(ql[i], ol[i])) mine.push(`  ${engine} line ${i + 1}: qemu ${JSON.stringify(ql[i] ?? null)}  ours ${JSON.stringify(ol[i] ?? null)}`);
    }
    if (o.code !== 0) mine.push(`  ${engine}: ours exited ${o.code}: ${o.err.trim()}`);
    if (!(ql.includes('E') && ol.includes('E'))) mine.push(`  ${engine}: dump incomplete`);
    if (mine.length > 0) failedEngines.push(engine);
    diffs.push(...mine);
    traps = ol.filter((l) => l.startsWith('T ')).length;
  });
  return { name, ok: diffs.length === 0, diffs, traps, failedEngines };
}

async function main() {
  mkdirSync(outDir, { recursive: true });
  if (!existsSync(join(root, 'dist/cli.js'))) throw new Error('build dist first: npx tsc -p tsconfig.json');
  const work = [];
  for (const f of probeFiles) { // a probe body + the common runtime (dump, handlers, buffer)
    const src = join(outDir, basename(f).replace(/\.S$/, '') + '.probe.S');
    writeFileSync(src, readFileSync(f, 'utf8') + '\n' + runtime({ logEntries: 4096, full: flag('--full') }));
    work.push({ name: basename(f), src, gen: false });
  }
  if (probeFiles.length) { /* probes only */ } else if (asmFiles.length) for (const f of asmFiles) work.push({ name: basename(f), src: resolve(f), gen: false });
  else {
    for (let s = start; s < start + seeds; s++) {
      const src = join(outDir, `seed${s}.S`);
      writeFileSync(src, generate(s, { length, misaligned, full: flag('--full') }));
      work.push({ name: `seed ${s}`, src, gen: true });
    }
  }
  let next = 0, pass = 0, fail = 0, traps = 0;
  const failed = [];
  const engineFails = Object.fromEntries(engines.map((e) => [e, 0]));
  async function worker() {
    while (next < work.length) {
      const w = work[next++];
      let r;
      try { r = await compare(w.name, w.src); } catch (e) { r = { name: w.name, ok: false, diffs: [String(e.message)], traps: 0, failedEngines: engines }; }
      traps += r.traps;
      for (const e of r.failedEngines) engineFails[e]++;
      if (r.ok) pass++;
      else {
        fail++;
        failed.push(w.name);
        console.log(`MISMATCH ${w.name} (${w.src})\n${r.diffs.slice(0, flag("--all-diffs") ? 1e9 : 12).join('\n')}`);
      }
    }
  }
  await Promise.all(Array.from({ length: jobs }, worker));
  console.log(`${pass} passed, ${fail} failed (${work.length} programs, ${work.length && work[0].gen ? length + ' random instructions each, ' : ''}${traps} traps compared)`);
  console.log(engines.map((e) => `${e}: ${work.length - engineFails[e]}/${work.length} match QEMU`).join(', '));
  if (failed.length) console.log('failed: ' + failed.join(', '));
  process.exitCode = fail === 0 ? 0 : 1;
}

main().catch((e) => { console.error(e); process.exit(2); });
