/**
 * Benchmark 1, layer apply: our `applyLayer` (worker thread) over the 14 layers of the real edge
 * image vs GNU tar of the same layers; and our whole `load` (ImageStore.open + loadImages of
 * edge.tar) vs GNU tar of the archive plus sha256sum and GNU tar of every layer.
 * Every run extracts into fresh dirs under <base>/apply; nothing is deleted here.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer } from '../src/archive/index.js';
import { ImageStore, loadImages } from '../src/image/index.js';
import { headline, sampleLine, sh, table, timed, type Options, type Series } from './harness.js';
import { edgeArchive, edgeLayers } from './images.js';

export interface ApplyBenchResult {
  markdown: string;
  /** Our applied layer dirs from the first round (bottom first), for the diff and changes benchmarks. */
  oursLayers: string[];
}

const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function gnuScript(layers: string[], dirs: string[], flags: string): string {
  return layers.map((l, i) => `tar ${flags} ${q(l)} -C ${q(dirs[i]!)}`).join(' && ');
}

export async function applyBench(opts: Options): Promise<ApplyBenchResult> {
  const layers = edgeLayers();
  const archive = edgeArchive();
  const tarBytes = layers.reduce((n, l) => n + statSync(l).size, 0);
  const root = join(opts.base, 'apply');
  let oursLayers: string[] = [];
  let entries = 0;

  const fresh = (round: number, impl: string): string[] => {
    const dirs = layers.map((_, i) => join(root, `r${round}`, impl, `l${i}`));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    return dirs;
  };

  type Impl = { name: string; what: string; peer: boolean; group: 'apply' | 'load'; run: (round: number) => Promise<void> | void };
  const impls: Impl[] = [
    {
      name: 'ours applyLayer', what: '14 layers one after another (worker thread)', peer: false, group: 'apply',
      run: async (round) => {
        const dirs = fresh(round, 'ours');
        let n = 0;
        for (const [i, l] of layers.entries()) n += (await applyLayer(l, dirs[i]!)).entries;
        if (round === 0) {
          oursLayers = dirs;
          entries = n;
        }
      },
    },
    {
      name: 'ours applyLayer ‖', what: '14 layers at once (pool of 2 workers)', peer: false, group: 'apply',
      run: async (round) => {
        const dirs = fresh(round, 'ours-par');
        await Promise.all(layers.map((l, i) => applyLayer(l, dirs[i]!)));
      },
    },
    {
      name: 'GNU tar -xf', what: '`tar -xf L -C dir`, layers one after another', peer: true, group: 'apply',
      run: (round) => { sh(gnuScript(layers, fresh(round, 'gnu'), '-xf')); },
    },
    {
      name: 'GNU tar -nx', what: '`tar --numeric-owner --xattrs -xpf`', peer: true, group: 'apply',
      run: (round) => { sh(gnuScript(layers, fresh(round, 'gnu-nx'), '--numeric-owner --xattrs -xpf')); },
    },
    {
      name: 'ours load', what: '`ImageStore.open` + `loadImages(edge.tar)` into a fresh data root', peer: false, group: 'load',
      run: async (round) => {
        const dataRoot = join(root, `r${round}`, 'ours-load');
        mkdirSync(dataRoot, { recursive: true });
        const store = await ImageStore.open(dataRoot);
        const r = await loadImages(store, archive);
        if (r.layersCreated.length !== layers.length) throw new Error(`bench: load created ${r.layersCreated.length} layers`);
      },
    },
    {
      name: 'GNU tar+sha256sum', what: '`tar -xf edge.tar`, then per layer `sha256sum` + `tar --numeric-owner --xattrs -xpf`', peer: true, group: 'load',
      run: (round) => {
        const s = join(root, `r${round}`, 'gnu-load', 'archive');
        mkdirSync(s, { recursive: true });
        const dirs = fresh(round, 'gnu-load');
        const rel = layers.map((l) => join(s, l.slice(l.lastIndexOf('/', l.lastIndexOf('/') - 1) + 1)));
        const script = [`tar -xf ${q(archive)} -C ${q(s)}`, ...rel.map((l, i) => `sha256sum ${q(l)} >/dev/null && tar --numeric-owner --xattrs -xpf ${q(l)} -C ${q(dirs[i]!)}`)];
        sh(script.join(' && '));
      },
    },
  ];

  const series: Series[] = impls.map((i) => ({ name: i.name, what: i.what, peer: i.peer, samples: [] }));
  for (let round = 0; round < opts.rounds; round++) {
    opts.log(`apply: round ${round + 1}/${opts.rounds}`);
    // Rotate the order every round (A B C D, B C D A, …).
    const order = impls.map((_, i) => (i + round) % impls.length);
    for (const k of order) {
      const impl = impls[k]!;
      const s = await timed(opts, () => impl.run(round));
      series[k]!.samples.push(s);
      opts.log(sampleLine(impl.name, s));
    }
  }

  const applySeries = series.filter((_, i) => impls[i]!.group === 'apply');
  const loadSeries = series.filter((_, i) => impls[i]!.group === 'load');
  headline(opts, 'apply 14 edge layers', series, 'ours applyLayer', 'GNU tar -xf');
  headline(opts, 'apply 14 edge layers', series, 'ours applyLayer ‖', 'GNU tar -xf');
  headline(opts, 'load edge.tar', series, 'ours load', 'GNU tar+sha256sum');
  const markdown = [
    '## 1. Layer apply (edge, 14 layers)',
    '',
    `Input: the 14 layer tars of the real \`edge\` image (${(tarBytes / 1e6).toFixed(1)} MB, ${entries} tar entries), every run into fresh dirs, cold caches, final \`sync\` inside the clock.`,
    'Ours runs in this process (layers are extracted on the archive module\'s worker threads); GNU tar runs as child processes.',
    'Ratios are to `GNU tar -xf`. GNU tar does not convert whiteouts (`.wh.*` stay regular files) — it is the I/O floor, not an equivalent.',
    '',
    table(applySeries, 'GNU tar -xf'),
    '',
    '### Whole `load` of edge.tar',
    '',
    'Ours: open a fresh data root (driver probes included) and `loadImages` (extract the archive to scratch, verify every blob digest and diffID,',
    'apply each layer, write layerdb/imagedb/repositories.json, remove the scratch). Peer: the same I/O with GNU tools',
    '(extract the archive, `sha256sum` each layer, extract each layer into its own dir).',
    '',
    table(loadSeries, 'GNU tar+sha256sum'),
    '',
  ].join('\n');
  return { markdown, oursLayers };
}
