/**
 * How diff/changes/applyDiff/diffSize compose the archive functions: native (the upper dir alone)
 * for the direct parent, naive (mounted trees) otherwise — Docker's isParent rule. The archive
 * functions are spies here; test/store/real-archive.test.ts runs the real ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { OverlayError } from '../../src/errors.js';
import { isOverlayMountPoint } from '../../src/mount/index.js';
import type { ArchiveOps } from '../../src/store/driver.js';
import { requiresOverlay } from '../helpers/requires.js';
import { newDriver } from './fixture.js';

function spies(calls: Array<[string, unknown[]]>, mounted: (p: string) => boolean): Partial<ArchiveOps> {
  const rec = (name: string, args: unknown[]): void => {
    calls.push([name, args.map((a) => (typeof a === 'string' ? `${a}${mounted(a) ? ' (mounted)' : ''}` : Array.isArray(a) ? a : a === null ? null : '<obj>'))]);
  };
  return {
    writeLayerTar: async (...a) => (rec('writeLayerTar', a), { diffId: 'sha256:n', tarSize: 1 }),
    exportChanges: async (...a) => (rec('exportChanges', a), { diffId: 'sha256:x', tarSize: 2 }),
    writeTreeTar: async (...a) => (rec('writeTreeTar', a), { diffId: 'sha256:t', tarSize: 6 }),
    changesDirs: async (...a) => (rec('changesDirs', a), [{ path: '/f', kind: 'A' as const }]),
    overlayChanges: async (...a) => (rec('overlayChanges', a), [{ path: '/g', kind: 'C' as const }]),
    directorySize: async (...a) => (rec('directorySize', a), 11),
    changesSize: async (...a) => (rec('changesSize', a), 22),
    applyLayer: async (...a) => (rec('applyLayer', a), { diffId: 'sha256:a', compression: 'none' as const, tarSize: 3, size: 4, entries: 5 }),
  };
}

test('native paths use the upper dir; naive paths hold mounts of the layer and parent', async (t) => {
  if (!requiresOverlay(t)) return;
  const calls: Array<[string, unknown[]]> = [];
  const { driver: d, home } = await newDriver(t, { archive: spies(calls, isOverlayMountPoint) });
  assert.equal(await d.usesNativeDiff(), true, 'this kernel runs with redirect_dir off');
  await d.create('base', null);
  await d.create('mid', 'base');
  await d.createReadWrite('top', 'mid');
  const diff = (id: string) => join(home, id, 'diff');
  const merged = (id: string) => join(home, id, 'merged');

  assert.deepEqual(await d.diff('top', 'mid', new PassThrough()), { diffId: 'sha256:n', tarSize: 1 });
  assert.deepEqual(calls.splice(0), [['writeLayerTar', [diff('top'), '<obj>', '<obj>']]]);

  assert.equal(await d.diffSize('top', 'mid'), 11);
  assert.deepEqual(calls.splice(0), [['directorySize', [diff('top')]]]);

  assert.deepEqual(await d.changes('top', 'mid'), [{ path: '/g', kind: 'C' }]);
  assert.deepEqual(calls.splice(0), [['overlayChanges', [diff('top'), [diff('mid'), diff('base')], '<obj>']]]);

  assert.equal((await d.applyDiff('top', 'mid', '/x.tar')).size, 4);
  assert.deepEqual(calls.splice(0), [['applyLayer', ['/x.tar', diff('top'), '<obj>']]]);

  // Not the direct parent → naive, against mounted trees (committed mid mounts read-only).
  assert.deepEqual(await d.diff('top', 'base', new PassThrough()), { diffId: 'sha256:x', tarSize: 2 });
  assert.deepEqual(calls.splice(0), [
    ['changesDirs', [`${merged('top')} (mounted)`, diff('base')]],
    ['exportChanges', [`${merged('top')} (mounted)`, [{ path: '/f', kind: 'A' }], '<obj>']],
  ]);
  assert.equal(isOverlayMountPoint(merged('top')), false, 'naive diff put its mounts back');

  // Diff against no parent of a layer that has lowers: Docker's archive.Tar of the whole merged tree.
  assert.deepEqual(await d.diff('top', null, new PassThrough()), { diffId: 'sha256:t', tarSize: 6 });
  assert.deepEqual(calls.splice(0), [['writeTreeTar', [`${merged('top')} (mounted)`, '<obj>']]]);
  assert.equal(isOverlayMountPoint(merged('top')), false);

  assert.equal(await d.diffSize('top', null), 22);
  assert.deepEqual(calls.splice(0), [
    ['changesDirs', [`${merged('top')} (mounted)`, null]],
    ['changesSize', [`${merged('top')} (mounted)`, [{ path: '/f', kind: 'A' }]]],
  ]);

  assert.deepEqual(await d.changes('top', 'base'), [{ path: '/f', kind: 'A' }]);
  assert.deepEqual(calls.splice(0), [['changesDirs', [`${merged('top')} (mounted)`, diff('base')]]]);
  await d.changes('top', 'mid').then(() => calls.splice(0));
  assert.deepEqual(await d.changes('mid', 'base'), [{ path: '/g', kind: 'C' }]);
  calls.splice(0);

  // A base layer's own diff is native with parent null.
  await d.diff('base', null, new PassThrough());
  assert.deepEqual(calls.splice(0), [['writeLayerTar', [diff('base'), '<obj>', '<obj>']]]);

  await assert.rejects(d.applyDiff('top', 'base', '/x.tar'), (e: unknown) => e instanceof OverlayError && e.code === 'EOPNOTSUPP' && e.reason === 'naive-apply-unsupported');
  assert.equal(calls.length, 0);
});
