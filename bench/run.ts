/**
 * `npm run bench`: overlay2 against its peers on this machine, measured in the same run.
 * Rewrites bench/RESULTS.md. Needs root (drop_caches, kernel overlay mounts, chroot).
 *
 *   npm run bench                      # full run (5 rounds per benchmark, ~6–8 min)
 *   npm run bench -- --quick           # 1 round, short pauses: a smoke run
 *   npm run bench -- --docker          # also `docker load` vs ours (private dockerd, stopped at the end)
 *   options: --rounds N, --pause MS, --no-engine (skip the engine section), --out FILE,
 *            --only apply,diff,changes,docker,engine (diff and changes need apply: it makes their layer dirs)
 *
 * Sections: 1 layer apply + whole load (apply.bench.ts), 2 layer diff (diff.bench.ts), 3 changes
 * (changes.bench.ts), 4 docker load (docker.bench.ts, optional), 5 engine vs kernel mount
 * (engine.bench.ts, owned by the engine: run as a child process and its report included as is).
 * Work dirs live in one temp dir under os.tmpdir() (same fs as /tmp), deleted only at the very end.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyBench } from './apply.bench.js';
import { changesBench } from './changes.bench.js';
import { diffBench } from './diff.bench.js';
import { dockerBench } from './docker.bench.js';
import { SUMMARY_HEAD, machine, runAborters, type Options } from './harness.js';

function parseArgs(argv: string[]): { opts: Omit<Options, 'base' | 'log' | 'summary'>; out: string; apply: boolean } {
  const quick = argv.includes('--quick');
  const val = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const known = new Set(['--quick', '--docker', '--no-engine', '--rounds', '--pause', '--out', '--only']);
  for (const [i, a] of argv.entries()) {
    if (a.startsWith('--') && !known.has(a)) throw new Error(`bench: unknown option ${a}`);
    if (!a.startsWith('--') && !['--rounds', '--pause', '--out', '--only'].includes(argv[i - 1] ?? '')) throw new Error(`bench: unexpected argument ${a}`);
  }
  const rounds = Number(val('--rounds') ?? (quick ? 1 : 5));
  const pauseMs = Number(val('--pause') ?? (quick ? 500 : 3000));
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isFinite(pauseMs) || pauseMs < 0) throw new Error('bench: bad --rounds/--pause');
  const only = val('--only')?.split(',') ?? null;
  const on = (s: string): boolean => only === null || only.includes(s);
  const out = val('--out') ?? fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url));
  return {
    opts: { quick, rounds, pauseMs, docker: argv.includes('--docker') || only?.includes('docker') === true, engine: !argv.includes('--no-engine') && on('engine') },
    out,
    apply: on('apply') || on('diff') || on('changes'),
  };
}

/** bench/engine.bench.ts (the engine helper's, compiled next to this file), run as is in a child. */
function engineSection(opts: Options): string {
  const script = fileURLToPath(new URL('./engine.bench.js', import.meta.url));
  const head = '## 5. Userspace engine vs kernel overlay mount (bench/engine.bench.ts)\n\n';
  if (!existsSync(script)) return `${head}Not run: ${script} does not exist.\n`;
  // It writes <cwd>/bench/RESULTS-engine.md: give it a scratch cwd so the checked-in file is left alone.
  const cwd = join(opts.base, 'engine-cwd');
  mkdirSync(join(cwd, 'bench'), { recursive: true });
  opts.log('engine: node dist/bench/engine.bench.js');
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [script], { cwd, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) return `${head}Failed (exit ${r.status ?? r.signal}): \`${String(r.stderr).trim().slice(0, 1000)}\`\n`;
  const body = String(r.stdout).replace(/^# .*\n/, '').trim();
  return `${head}Run as \`node dist/bench/engine.bench.js\` (its defaults; warm caches, single pass, ${((Date.now() - t0) / 1000).toFixed(1)} s), its own report:\n\n${body}\n`;
}

function cleanup(base: string): void {
  spawnSync('sh', ['-c', `grep -o " ${base}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  rmSync(base, { recursive: true, force: true });
}

async function main(): Promise<void> {
  const { opts: o, out, apply } = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('bench: needs root (drop_caches, overlay mounts, chroot)');
  process.env['OVERLAY2_SHARED'] ??= existsSync(join(process.cwd(), '..', 'shared')) ? join(process.cwd(), '..', 'shared') : '/work/shared';
  const base = mkdtempSync(join(tmpdir(), 'ovl2-bench-'));
  const started = Date.now();
  const log = (l: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${l}\n`); };
  const opts: Options = { ...o, base, log, summary: [] };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping, cleaning up ${base}`);
      runAborters();
      cleanup(base);
      process.exit(130);
    });
  }
  const header = [
    '# overlay2 benchmarks vs peers',
    '',
    `Date: ${new Date().toISOString()}  `,
    `Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` (as root; rewrites this file)`,
    '',
    'Machine:',
    ...machine(base),
    '',
    'Protocol (see /work/shared/guides/layer-extraction-speed.md): before every timed run `sync; echo 3 > /proc/sys/vm/drop_caches` and a',
    `${opts.pauseMs} ms pause; the clock includes a final \`sync\` for runs that write; every run writes into fresh dirs and nothing is deleted`,
    'until the end of the whole benchmark (no-journal ext4 penalises re-creating recently deleted inodes); implementations interleaved',
    `(order rotated each round); ${opts.rounds} round(s) per benchmark, medians reported. CPU = user+sys of this process (all threads,`,
    'including the archive worker threads) plus the child processes it waited for. **Bold** rows are ours; ratios > 1 mean slower than the reference.',
    'Wall times on this VM swing ±30 % run to run; CPU is steadier.',
    '',
  ];
  const sections: string[] = [];
  const section = async (name: string, fn: () => Promise<string> | string): Promise<void> => {
    try {
      sections.push(await fn());
    } catch (e) {
      log(`${name} failed: ${(e as Error).stack ?? String(e)}`);
      sections.push(`## ${name}\n\nFailed: \`${(e as Error).message}\`\n`);
    }
  };
  try {
    let oursLayers: string[] = [];
    if (apply) await section('1. Layer apply', async () => {
      const r = await applyBench(opts);
      oursLayers = r.oursLayers;
      return r.markdown;
    });
    if (oursLayers.length > 0) {
      await section('2. Layer diff', () => diffBench(opts, oursLayers[0]!));
      await section('3. Changes', () => changesBench(opts, oursLayers));
    } else if (apply) {
      sections.push('## 2. Layer diff / 3. Changes\n\nNot run: they use the layer dirs benchmark 1 applies.\n');
    }
    if (opts.docker) await section('4. docker load', () => dockerBench(opts));
    else sections.push('## 4. `docker load` (optional)\n\nNot run: pass `--docker` (needs Debian\'s docker.io; a private dockerd is started and stopped).\n');
    if (opts.engine) await section('5. Engine', () => engineSection(opts));
  } finally {
    log(`cleanup: ${base}`);
    cleanup(base);
  }
  const summary = ['## Summary (medians; details and the other peers below)', '', ...SUMMARY_HEAD, ...opts.summary, ''];
  const md = [...header, ...summary, ...sections, `Total run time: ${((Date.now() - started) / 1000).toFixed(0)} s. Load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (2 vCPUs: above ~1 means other work competed for the CPUs and the disk during the run).`, ''].join('\n');
  writeFileSync(out, md);
  process.stdout.write(md);
  log(`wrote ${out}`);
}

await main();
