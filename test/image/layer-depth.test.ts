/**
 * Docker's layer-store depth limit (maxLayerDepth = 125, driver spec §2.2): an image may have at
 * most 125 layers, so that its init and rw layers still fit the driver's 128 lowers. Registering a
 * layer on a parent of depth 125 fails with "max depth exceeded" — on load (a 126-layer image) and
 * on commit (a container of a 125-layer image). A 125-layer image loads and its container mounts.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { kernelOverlayWorks, requiresOverlay } from '../helpers/requires.js';
import { ImageStore, loadImages, createContainer, mountContainer, umountContainer, commitContainer } from '../../src/image/index.js';
import { OverlayError } from '../../src/errors.js';
import { dockerSaveArchive, layerTar, treeSnapshot } from './fixtures.js';

async function layers(n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) out.push(await layerTar([{ name: 'layers/', type: 'directory' }, { name: `layers/${i}`, content: `layer ${i}\n` }]));
  return out;
}

const maxDepth = (e: unknown): boolean => {
  assert.ok(e instanceof OverlayError, String(e));
  assert.equal(e.code, 'EINVAL');
  assert.equal(e.reason, 'max-depth-exceeded');
  assert.match(e.message, /max depth exceeded$/);
  return true;
};

describe('image depth limit', { skip: !kernelOverlayWorks() && process.env['CI'] !== 'true' ? 'needs root and a kernel overlay mount' : false }, () => {
  let work: string;
  let store: ImageStore;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'ovl2-depth-'));
    store = await ImageStore.open(join(work, 'root'));
  });
  after(() => {
    spawnSync('sh', ['-c', `grep -o " ${work}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
    rmSync(work, { recursive: true, force: true });
  });

  test('a 126-layer image is refused with "max depth exceeded" before anything is stored', async (t) => {
    if (!requiresOverlay(t)) return;
    const img = await dockerSaveArchive(join(work, 'in126'), await layers(126), 'deep:126');
    const before = treeSnapshot(store.root);
    await assert.rejects(loadImages(store, img.archive), maxDepth);
    assert.deepEqual(treeSnapshot(store.root), before, 'the data root changed after the refused load');
  });

  test('a 125-layer image loads, its container mounts all 125 layers, and commit is "max depth exceeded"', async (t) => {
    if (!requiresOverlay(t)) return;
    const img = await dockerSaveArchive(join(work, 'in125'), await layers(125), 'deep:125');
    const r = await loadImages(store, img.archive);
    assert.equal(r.layersCreated.length, 125);
    const c = await createContainer(store, 'deep', 'deep:125');
    // rw layer: init + 125 image layers = 126 lowers (the driver allows 128).
    assert.equal(((await store.driver.lowerDirs(c.mountId)) ?? []).length, 126);
    const merged = await mountContainer(store, 'deep');
    try {
      assert.equal(readFileSync(join(merged, 'layers', '0'), 'utf8'), 'layer 0\n');
      assert.equal(readFileSync(join(merged, 'layers', '124'), 'utf8'), 'layer 124\n');
      writeFileSync(join(merged, 'new-file'), 'x');
    } finally {
      await umountContainer(store, 'deep');
    }
    const before = treeSnapshot(store.root);
    await assert.rejects(commitContainer(store, 'deep', 'deep:126'), maxDepth);
    assert.deepEqual(treeSnapshot(store.root), before, 'the data root changed after the refused commit');
  });
});
