/**
 * The store with the real archive functions on Docker-made images: createFromTar of the 14 edge
 * layers, mounted through the driver, must list exactly as Docker's own merged view
 * (edge.expected-tree.txt). Applied once for the whole file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import { changesDirs, directorySize } from '../../src/archive/index.js';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { createHash } from 'node:crypto';
import { OverlayError } from '../../src/errors.js';
import { Overlay2Driver } from '../../src/store/driver.js';
import type { ApplyLayerResult } from '../../src/archive/types.js';
import { kernelOverlayWorks } from '../helpers/requires.js';
import { realImageLayers, realImagesDir } from '../helpers/realimages.js';

const inCI = process.env['CI'] === 'true';
let root = '';
let d: Overlay2Driver | undefined;
let layers: string[] = [];
const results: ApplyLayerResult[] = [];

before(async () => {
  if (!kernelOverlayWorks()) return;
  layers = realImageLayers('edge');
  root = mkdtempSync(join(tmpdir(), 'ovl2-store-edge-'));
  d = await Overlay2Driver.init(join(root, 'overlay2'));
  let parent: string | null = null;
  for (let i = 0; i < layers.length; i++) {
    results.push(await d.createFromTar(`L${i}`, parent, layers[i] ?? ''));
    parent = `L${i}`;
  }
});

after(async () => {
  if (d) await d.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

function skipUnlessReady(t: { skip: (m: string) => void }): Overlay2Driver | undefined {
  if (d === undefined) {
    if (inCI) throw new Error('CI=true and this test needs root and a kernel overlay mount');
    t.skip('needs root and a kernel overlay mount');
  }
  return d;
}

const withoutRootLine = (s: string): string[] => s.split('\n').filter((l) => !l.startsWith('d / '));

test('edge: 14 layers via createFromTar mount to exactly Docker\'s merged tree', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  assert.equal(layers.length, 14);
  await drv.createReadWrite('ctr', 'L13');
  const m = await drv.get('ctr');
  try {
    const got = execFileSync('python3', [join(realImagesDir(), 'tree-manifest.py'), m], { maxBuffer: 1 << 28 }).toString();
    const want = readFileSync(join(realImagesDir(), 'edge.expected-tree.txt'), 'utf8');
    assert.deepEqual(withoutRootLine(got), withoutRootLine(want));
  } finally {
    await drv.put('ctr');
    await drv.remove('ctr');
  }
  assert.equal(readFileSync(join(drv.home, 'L13', 'lower'), 'utf8').split(':').length, 13);
  assert.deepEqual(readdirSync(drv.home).filter((n) => n.startsWith('.staging-')), []);
});

test('edge: each createFromTar result carries the layer\'s diffId (sha256 of the tar)', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  for (let i = 0; i < layers.length; i++) {
    const want = `sha256:${createHash('sha256').update(readFileSync(layers[i] ?? '')).digest('hex')}`;
    assert.equal(results[i]?.diffId, want, `layer ${i}`);
  }
});

test('native diff of a Docker-built layer against its parent reproduces the layer\'s diffId', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  for (const i of [1, 13]) {
    const out = new PassThrough();
    out.resume();
    const r = await drv.diff(`L${i}`, `L${i - 1}`, out);
    assert.equal(r.diffId, results[i]?.diffId, `layer ${i}`);
  }
});

async function treeOf(drv: Overlay2Driver, id: string): Promise<string[]> {
  const m = await drv.get(id);
  try {
    return withoutRootLine(execFileSync('python3', [join(realImagesDir(), 'tree-manifest.py'), m], { maxBuffer: 1 << 28 }).toString());
  } finally {
    await drv.put(id);
  }
}

test('naive diff across four layers (L13 against L9), re-applied on L9, rebuilds L13\'s tree exactly', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  const tarPath = join(root, 'naive.tar');
  const out = createWriteStream(tarPath);
  await drv.diff('L13', 'L9', out);
  out.end();
  await finished(out);
  await drv.createFromTar('N', 'L9', tarPath);
  await drv.createReadWrite('a', 'L13');
  await drv.createReadWrite('b', 'N');
  assert.deepEqual(await treeOf(drv, 'b'), await treeOf(drv, 'a'));
  assert.deepEqual(await drv.changes('a', 'L13'), []);
  for (const id of ['a', 'b', 'N']) await drv.remove(id);
});

test('changes of a container: the upper-dir walk equals the naive comparison of mounted trees', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  await drv.createReadWrite('ctr2', 'L13');
  const m = await drv.get('ctr2');
  try {
    writeFileSync(join(m, 'etc', 'hostname'), 'changed\n');
    rmSync(join(m, 'usr', 'share', 'doc'), { recursive: true, force: true });
    mkdirSync(join(m, 'new', 'deep'), { recursive: true });
    writeFileSync(join(m, 'new', 'deep', 'f'), 'x');
  } finally {
    await drv.put('ctr2');
  }
  const native = await drv.changes('ctr2', 'L13');
  assert.ok(native.length > 5);
  const ctrFs = await drv.get('ctr2');
  const parentFs = await drv.get('L13');
  try {
    assert.deepEqual(native, await changesDirs(ctrFs, parentFs));
  } finally {
    await drv.put('L13');
    await drv.put('ctr2');
  }
  assert.equal(await drv.diffSize('ctr2', 'L13'), await directorySize(join(drv.home, 'ctr2', 'diff')));
  await drv.remove('ctr2');
});

test('a hostile tar (entry escaping the root) fails createFromTar and leaves nothing', async (t) => {
  const drv = skipUnlessReady(t);
  if (!drv) return;
  const tarPath = join(root, 'evil.tar');
  execFileSync('python3', ['-c', `
import tarfile, io
with tarfile.open(${JSON.stringify(tarPath)}, 'w', format=tarfile.PAX_FORMAT) as tf:
    for name, data in [('ok', b'fine'), ('../escape', b'evil')]:
        ti = tarfile.TarInfo(name); ti.size = len(data); tf.addfile(ti, io.BytesIO(data))
`]);
  const before = readdirSync(drv.home).sort();
  const links = readdirSync(join(drv.home, 'l')).length;
  await assert.rejects(drv.createFromTar('evil', 'L13', tarPath), (e: unknown) => e instanceof OverlayError && e.code === 'EINVAL');
  assert.deepEqual(readdirSync(drv.home).sort(), before);
  assert.equal(readdirSync(join(drv.home, 'l')).length, links);
  assert.equal(await drv.exists('evil'), false);
});
