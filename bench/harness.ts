/**
 * Benchmark harness (not a test): the measuring protocol of layer-extraction-speed.md.
 *  - cold caches before every timed run (`sync; echo 3 > /proc/sys/vm/drop_caches`), then a pause;
 *  - the clock includes a final `sync` (the data is on disk, not just in the page cache);
 *  - every run writes into a fresh directory, and nothing is deleted until the whole benchmark is over
 *    (no-journal ext4 skips recently deleted inodes for ~30 s: delete-then-recreate inflates sys time);
 *  - implementations are interleaved A B A B … and reported as medians;
 *  - CPU = user+sys of this process (all threads, so worker threads count) plus of the child processes
 *    it waited for (GNU tar, sha256sum, sync, …), from getrusage / /proc/self/stat.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { readFileSync, readdirSync, statfsSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';

export interface Options {
  quick: boolean;
  rounds: number;
  /** Pause (ms) after dropping caches, before the clock starts. */
  pauseMs: number;
  docker: boolean;
  engine: boolean;
  /** Root of every work dir (same fs as /tmp). */
  base: string;
  log: (line: string) => void;
  /** Headline rows (ours vs the peer of each benchmark), printed at the top of RESULTS.md. */
  summary: string[];
}

export interface Sample {
  wallMs: number;
  userMs: number;
  sysMs: number;
}

/** One implementation's samples in one benchmark. */
export interface Series {
  name: string;
  what: string;
  samples: Sample[];
  peer: boolean;
}

const TICKS = 100; // USER_HZ on Linux

/** CPU of the children this process has waited for (cutime, cstime), in ms. */
function childCpuMs(): { user: number; sys: number } {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the ")" of comm: state is field 3; cutime/cstime are fields 16/17.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cut = Number(rest[13]);
  const cst = Number(rest[14]);
  return { user: (cut * 1000) / TICKS, sys: (cst * 1000) / TICKS };
}

function cpuNow(): { user: number; sys: number } {
  const self = process.cpuUsage();
  const ch = childCpuMs();
  return { user: self.user / 1000 + ch.user, sys: self.system / 1000 + ch.sys };
}

export function sh(script: string, opts: SpawnSyncOptions = {}): string {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0) {
    throw new Error(`bench: \`${script.slice(0, 200)}\` failed (${r.status ?? r.signal}): ${String(r.stderr).slice(0, 2000)}`);
  }
  return String(r.stdout);
}

export function dropCaches(): void {
  sh('sync; echo 3 > /proc/sys/vm/drop_caches');
}

const aborters = new Set<() => void>();
/** Register synchronous cleanup to run if the benchmark is interrupted (SIGINT/SIGTERM); returns its remover. */
export function onAbort(fn: () => void): () => void {
  aborters.add(fn);
  return () => aborters.delete(fn);
}
export function runAborters(): void {
  for (const fn of [...aborters].reverse()) {
    try {
      fn();
    } catch { /* best effort */ }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One timed run: drop caches, pause, then time `fn` plus a final sync.
 * `cold: false` skips the cache drop; `sync: false` leaves the final sync out (read-only work).
 */
export async function timed(opts: Options, fn: () => Promise<void> | void, how: { cold?: boolean; sync?: boolean } = {}): Promise<Sample> {
  if (how.cold !== false) dropCaches();
  await sleep(opts.pauseMs);
  const c0 = cpuNow();
  const t0 = process.hrtime.bigint();
  await fn();
  if (how.sync !== false) spawnSync('sync');
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c1 = cpuNow();
  return { wallMs, userMs: c1.user - c0.user, sysMs: c1.sys - c0.sys };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function fmtS(ms: number): string {
  return ms >= 100 ? (ms / 1000).toFixed(2) : (ms / 1000).toFixed(4);
}

function fmtRatio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a';
}

/**
 * A markdown table: one row per series with median wall, min–max, median CPU (user+sys), and the
 * ratios of wall and CPU to the reference series (the first peer unless `refName` names another).
 */
export function table(series: Series[], refName?: string): string {
  const ref = series.find((s) => s.name === refName) ?? series.find((s) => s.peer) ?? series[0]!;
  const refWall = median(ref.samples.map((s) => s.wallMs));
  const refCpu = median(ref.samples.map((s) => s.userMs + s.sysMs));
  const lines = [
    `| implementation | what | n | median wall s | min–max s | median CPU s (user+sys) | wall ×${ref.name} | CPU ×${ref.name} |`,
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const s of series) {
    const walls = s.samples.map((x) => x.wallMs);
    const cpu = median(s.samples.map((x) => x.userMs + x.sysMs));
    const u = median(s.samples.map((x) => x.userMs));
    const y = median(s.samples.map((x) => x.sysMs));
    lines.push(
      `| ${s.peer ? '' : '**'}${s.name}${s.peer ? '' : '**'} | ${s.what} | ${s.samples.length} | ${fmtS(median(walls))} | ` +
        `${fmtS(Math.min(...walls))}–${fmtS(Math.max(...walls))} | ${fmtS(cpu)} (${fmtS(u)}+${fmtS(y)}) | ` +
        `${fmtRatio(median(walls) / refWall)} | ${fmtRatio(cpu / refCpu)} |`,
    );
  }
  return lines.join('\n');
}

/** Add "ours vs peer" (medians) to the summary table. */
export function headline(opts: Options, bench: string, series: Series[], ours: string, peer: string): void {
  const a = series.find((s) => s.name === ours);
  const b = series.find((s) => s.name === peer);
  if (a === undefined || b === undefined) return;
  const w = (s: Series): number => median(s.samples.map((x) => x.wallMs));
  const c = (s: Series): number => median(s.samples.map((x) => x.userMs + x.sysMs));
  opts.summary.push(
    `| ${bench} | ${ours} | ${fmtS(w(a))} | ${fmtS(c(a))} | ${peer} | ${fmtS(w(b))} | ${fmtS(c(b))} | ${fmtRatio(w(a) / w(b))} | ${fmtRatio(c(a) / c(b))} |`,
  );
}

export const SUMMARY_HEAD = [
  '| benchmark | ours | wall s | CPU s | peer | wall s | CPU s | wall ours/peer | CPU ours/peer |',
  '| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
];

/** One line per sample, for the log. */
export function sampleLine(name: string, s: Sample): string {
  return `  ${name.padEnd(22)} wall ${fmtS(s.wallMs).padStart(7)} s  cpu ${fmtS(s.userMs + s.sysMs).padStart(7)} s (u ${fmtS(s.userMs)} s ${fmtS(s.sysMs)})`;
}

/** The machine, for the results header. */
export function machine(workDir: string): string[] {
  const cpu = cpus()[0]?.model ?? 'unknown';
  const fs = (() => {
    try {
      return sh(`findmnt -n -o FSTYPE,SOURCE,OPTIONS -T ${workDir}`).trim();
    } catch {
      return 'unknown';
    }
  })();
  const journal = (() => {
    // A journalled ext4 has a jbd2 entry named after its device (/proc/fs/jbd2/vda-8).
    try {
      const dev = sh(`findmnt -n -o SOURCE -T ${workDir}`).trim().replace(/^\/dev\//, '');
      const ra = (() => {
        try {
          return `, read-ahead ${readFileSync(`/sys/block/${dev}/queue/read_ahead_kb`, 'utf8').trim()} KiB`;
        } catch {
          return '';
        }
      })();
      const jbd = (() => {
        try {
          return readdirSync('/proc/fs/jbd2');
        } catch {
          return [];
        }
      })();
      return `${jbd.some((j) => j.startsWith(`${dev}-`)) ? 'journal: yes' : '**no journal** (no /proc/fs/jbd2 entry)'}${ra}`;
    } catch {
      return 'journal: unknown';
    }
  })();
  const free = (() => {
    try {
      const s = statfsSync(workDir);
      return `${((s.bavail * s.bsize) / 2 ** 30).toFixed(0)} GiB free`;
    } catch {
      return '';
    }
  })();
  const ver = (cmd: string): string => {
    try {
      return sh(`${cmd} 2>&1 | head -1`).trim();
    } catch {
      return 'not installed';
    }
  };
  const dockerds = (() => {
    try {
      return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && safeComm(p) === 'dockerd').length;
    } catch {
      return 0;
    }
  })();
  return [
    `- CPU: ${cpus().length} × ${cpu} (nproc ${sh('nproc').trim()})`,
    `- Memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(freemem() / 2 ** 30).toFixed(1)} GiB free at start`,
    `- Kernel: Linux ${release()}; Node ${process.version}; ${ver('tar --version')}`,
    `- Work dir: ${workDir} on ${fs.replace(/\s+/g, ' ')}; ${journal}; ${free}`,
    `- Load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}; other dockerd processes running: ${dockerds}`,
  ];
}

function safeComm(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
