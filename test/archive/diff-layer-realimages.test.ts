/**
 * The strongest oracle for the native diff: the edge image's layers 1–13 were written by Docker's
 * own Go tar writer (docker build). Rebuilding each layer's upper dir (GNU tar + whiteout
 * conversion) and running writeLayerTar over it must give the identical bytes, hence the same DiffID.
 * Layer 0 is a `docker import` of a GNU tar stream, not Docker-written, so it is not an oracle here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeLayerTar } from '../../src/archive/diff-layer.js';
import { directorySize } from '../../src/archive/changes.js';
import { requiresCommand, requiresRoot, tempDir } from '../helpers/requires.js';
import { realImageLayers } from '../helpers/realimages.js';
import { gnuLayerDir, tarEntries } from '../helpers/gnu-layer.js';

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

test('writeLayerTar() reproduces the bytes of every Docker-written edge layer', async (t) => {
  if (!requiresRoot(t) || !requiresCommand(t, 'tar') || !requiresCommand(t, 'zstd')) return;
  const layers = realImageLayers('edge');
  assert.equal(layers.length, 14);
  const tmp = tempDir(t);
  for (let i = 1; i < layers.length; i++) {
    const layer = layers[i]!;
    const dir = join(tmp, `l${i}`);
    mkdirSync(dir);
    await gnuLayerDir(layer, dir);
    const entries = await tarEntries(layer);
    const users = new Map(entries.map((e) => [e.uid, e.uname]));
    const groups = new Map(entries.map((e) => [e.gid, e.gname]));
    const outPath = join(tmp, `l${i}.tar`);
    const r = await writeLayerTar(dir, createWriteStream(outPath), {
      idNames: { user: (u) => users.get(u) ?? '', group: (g) => groups.get(g) ?? '' },
    });
    const want = readFileSync(layer);
    const got = readFileSync(outPath);
    const at = firstDifference(want, got);
    assert.equal(at, -1, `layer ${i}: first differing byte at ${at} (block ${Math.floor(at / 512)}), entry ${JSON.stringify(want.subarray(Math.floor(at / 512) * 512, Math.floor(at / 512) * 512 + 100).toString('latin1'))}`);
    assert.equal(r.diffId, `sha256:${createHash('sha256').update(want).digest('hex')}`);
    assert.equal(r.tarSize, want.length);
    // directory.Size of the rebuilt layer dir: Σ of regular file sizes (hard links once) + symlink lengths.
    assert.ok((await directorySize(dir)) >= 0);
  }
});
