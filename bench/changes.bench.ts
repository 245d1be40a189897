/**
 * Benchmark 3, changes (`docker diff`): our `overlayChanges(upper, lowers)` (walks the upper only,
 * looks paths up in the lowers) vs the naive full-tree comparison Docker falls back to
 * (`changesDirs(merged, mergedOfLowers)` over two kernel mounts), with `find upper` as a floor.
 * Two uppers: (a) a real container of edge after `edge.container-changes.sh` ran in it (chroot
 * into a kernel overlay mount of our applied layers), (b) edge's package-install layer (python3,
 * attr, acl, libcap2-bin: ~1.7k entries) as if it were a container's upper over the two layers below.
 * Read-only work: no final sync in the clock; caches dropped before every run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changesDirs, overlayChanges } from '../src/archive/index.js';
import { MNT_DETACH, MS_BIND, MS_RDONLY, mount, umount2 } from '../src/sys/libc.js';
import { headline, onAbort, sampleLine, sh, table, timed, type Options, type Series } from './harness.js';
import { realImagesDir } from './images.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const OVL = 'index=off,redirect_dir=off,metacopy=off';

interface Case { short: string; title: string; upper: string; lowers: string[]; merged: string; old: string }

async function measureCase(opts: Options, c: Case): Promise<string> {
  const counts = new Map<string, number>();
  type Impl = { name: string; what: string; peer: boolean; run: () => Promise<void> | void };
  const impls: Impl[] = [
    {
      name: 'ours overlayChanges', what: 'walk the upper, look up in the lowers', peer: false,
      run: async () => { counts.set('ours', (await overlayChanges(c.upper, c.lowers)).length); },
    },
    {
      name: 'naive changesDirs', what: 'full-tree comparison of the merged mount vs a mount of the lowers (Docker\'s fallback)', peer: true,
      run: async () => { counts.set('naive', (await changesDirs(c.merged, c.old)).length); },
    },
    {
      name: 'find upper', what: '`find upper -printf "%y %p\\n"` (a floor: lists the upper, no comparison)', peer: true,
      run: () => { sh(`find ${q(c.upper)} -printf '%y %p\\n' >/dev/null`); },
    },
  ];
  const series: Series[] = impls.map((i) => ({ name: i.name, what: i.what, peer: i.peer, samples: [] }));
  const rounds = opts.quick ? 1 : Math.max(opts.rounds, 7);
  for (let round = 0; round < rounds; round++) {
    const order = impls.map((_, i) => (i + round) % impls.length);
    for (const k of order) {
      const s = await timed({ ...opts, pauseMs: Math.min(opts.pauseMs, 500) }, impls[k]!.run, { sync: false });
      series[k]!.samples.push(s);
      opts.log(sampleLine(impls[k]!.name, s));
    }
  }
  headline(opts, `changes: ${c.short}`, series, 'ours overlayChanges', 'naive changesDirs');
  const paths = Number(sh(`find ${q(c.upper)} | wc -l`).trim());
  const same = counts.get('ours') === counts.get('naive') ? 'the same' : `**different** (naive: ${counts.get('naive')})`;
  return [
    `### ${c.title}`,
    '',
    `Upper: ${paths} paths; ${c.lowers.length} lowers. Changes found: ${counts.get('ours')} (ours), ${same} count from the naive diff. Ratios are to the naive diff.`,
    '',
    table(series, 'naive changesDirs'),
    '',
  ].join('\n');
}

export async function changesBench(opts: Options, oursLayers: string[]): Promise<string> {
  const root = join(opts.base, 'changes');
  const mounts: string[] = [];
  const unmountAll = (): void => {
    for (const m of mounts.reverse()) {
      try { umount2(m, MNT_DETACH); } catch { /* already gone */ }
    }
    mounts.length = 0;
  };
  const dropAbort = onAbort(unmountAll);
  const mnt = (src: string, target: string, fstype: string | null, flags: number, data: string | null): void => {
    mount(src, target, fstype, flags, data);
    mounts.push(target);
  };
  try {
    // (a) a real container of edge.
    const lowers = [...oursLayers].reverse(); // top first
    const [upper, work, merged, old] = ['upper', 'work', 'merged', 'old'].map((d) => join(root, d)) as [string, string, string, string];
    for (const d of [upper, work, merged, old]) mkdirSync(d, { recursive: true });
    mnt('overlay', merged, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work},${OVL}`);
    const hostname = join(root, 'hostname');
    writeFileSync(hostname, 'edge\n');
    mnt(hostname, join(merged, 'etc/hostname'), null, MS_BIND, null);
    mnt('/dev', join(merged, 'dev'), null, MS_BIND, null);
    const script = readFileSync(join(realImagesDir(), 'edge.container-changes.sh'));
    const r = spawnSync('chroot', [merged, '/bin/bash', '-s'], {
      input: script, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' },
    });
    if (r.status !== 0) throw new Error(`bench: edge.container-changes.sh failed: ${r.stderr.toString()}`);
    for (const m of [join(merged, 'dev'), join(merged, 'etc/hostname')]) {
      umount2(m, 0);
      mounts.splice(mounts.indexOf(m), 1);
    }
    mnt('overlay', old, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')},${OVL}`);
    opts.log('changes: (a) edge container');
    const a = await measureCase(opts, { short: 'edge container', title: '(a) edge container after edge.container-changes.sh', upper, lowers, merged, old });

    // (b) the package-install layer as an upper.
    const [l0, l1, l2] = oursLayers as [string, string, string];
    const bNew = join(root, 'b-new');
    const bOld = join(root, 'b-old');
    for (const d of [bNew, bOld]) mkdirSync(d, { recursive: true });
    mnt('overlay', bNew, 'overlay', MS_RDONLY, `lowerdir=${l2}:${l1}:${l0},${OVL}`);
    mnt('overlay', bOld, 'overlay', MS_RDONLY, `lowerdir=${l1}:${l0},${OVL}`);
    opts.log('changes: (b) package-install layer');
    const b = await measureCase(opts, { short: 'package-install upper', title: '(b) package-install layer of edge as the upper (apt install python3 attr acl libcap2-bin)', upper: l2, lowers: [l1, l0], merged: bNew, old: bOld });
    return ['## 3. Changes (`docker diff`)', '', a, b].join('\n');
  } finally {
    dropAbort();
    unmountAll();
  }
}
