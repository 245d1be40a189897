/**
 * Benchmark 2, layer diff/commit: our native `writeLayerTar(upper, out)` of a big upper dir (the
 * applied base layer of edge, as if a container had written the whole Debian tree) vs GNU tar -c of
 * the same dir. Every run writes a new file under <base>/diff; nothing is deleted here.
 */
import { createWriteStream, mkdirSync, statSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { writeLayerTar } from '../src/archive/index.js';
import { headline, sampleLine, sh, table, timed, type Options, type Series } from './harness.js';

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export async function diffBench(opts: Options, upper: string): Promise<string> {
  const root = join(opts.base, 'diff');
  mkdirSync(root, { recursive: true });
  const entries = Number(sh(`find ${q(upper)} | wc -l`).trim());
  const bytes = Number(sh(`du -sb ${q(upper)} | cut -f1`).trim());
  const sizes = new Map<string, number>();
  const out = (round: number, impl: string): string => join(root, `r${round}-${impl}.tar`);

  type Impl = { name: string; what: string; peer: boolean; run: (round: number) => Promise<void> | void };
  const impls: Impl[] = [
    {
      name: 'ours writeLayerTar', what: 'to a new file (Docker\'s PAX headers + sha256 diffID)', peer: false,
      run: async (round) => {
        const r = await writeLayerTar(upper, createWriteStream(out(round, 'ours')));
        sizes.set('ours', r.tarSize);
      },
    },
    {
      name: 'GNU tar -cf', what: '`tar -cf FILE -C upper .`', peer: true,
      run: (round) => {
        sh(`tar -cf ${q(out(round, 'gnu'))} -C ${q(upper)} .`);
        sizes.set('gnu', statSync(out(round, 'gnu')).size);
      },
    },
    {
      name: 'GNU tar -nx -cf', what: '`tar --numeric-owner --xattrs -cf FILE -C upper .`', peer: true,
      run: (round) => { sh(`tar --numeric-owner --xattrs -cf ${q(out(round, 'gnu-nx'))} -C ${q(upper)} .`); },
    },
    {
      name: 'ours → discard', what: 'writeLayerTar into a Writable that drops the bytes (read + format + hash)', peer: false,
      run: async () => {
        const sink = new Writable({ write(_c, _e, cb) { cb(); }, writev(_c, cb) { cb(); } });
        await writeLayerTar(upper, sink);
      },
    },
    {
      name: 'GNU tar → pipe', what: '`tar -cf - -C upper . \\| cat >/dev/null` (a pipe: GNU tar skips reading files when it sees /dev/null)', peer: true,
      run: () => { sh(`tar -cf - -C ${q(upper)} . | cat >/dev/null`); },
    },
  ];
  const series: Series[] = impls.map((i) => ({ name: i.name, what: i.what, peer: i.peer, samples: [] }));
  for (let round = 0; round < opts.rounds; round++) {
    opts.log(`diff: round ${round + 1}/${opts.rounds}`);
    const order = impls.map((_, i) => (i + round) % impls.length);
    for (const k of order) {
      const impl = impls[k]!;
      const s = await timed(opts, () => impl.run(round));
      series[k]!.samples.push(s);
      opts.log(sampleLine(impl.name, s));
    }
  }
  headline(opts, 'diff: tar of the 120 MB base layer', series, 'ours writeLayerTar', 'GNU tar -cf');
  return [
    '## 2. Layer diff / commit (native writeLayerTar of a big upper)',
    '',
    `Upper: our applied base layer of edge (${entries} paths, ${(bytes / 1e6).toFixed(1)} MB), read with cold caches; output tar ${(((sizes.get('ours') ?? 0)) / 1e6).toFixed(1)} MB (ours) / ${((sizes.get('gnu') ?? 0) / 1e6).toFixed(1)} MB (GNU).`,
    'File outputs are new files on the same fs, final `sync` inside the clock. Ratios are to `GNU tar -cf`.',
    '',
    table(series, 'GNU tar -cf'),
    '',
  ].join('\n');
}
