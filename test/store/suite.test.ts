/** containerd SnapshotterSuite-style checks on the overlay2 driver with real kernel mounts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OverlayError } from '../../src/errors.js';
import { lgetxattr, major, minor } from '../../src/sys/libc.js';
import { requiresOverlay } from '../helpers/requires.js';
import { newDriver } from './fixture.js';

const isWhiteout = (p: string): boolean => {
  const st = lstatSync(p);
  return st.isCharacterDevice() && major(st.rdev) === 0 && minor(st.rdev) === 0;
};

test('transitivity: a file added in each of three layers is visible in the top one', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d } = await newDriver(t);
  await d.createReadWrite('l1', null);
  writeFileSync(join(await d.get('l1'), 'f1'), '1');
  await d.put('l1');
  await d.createReadWrite('l2', 'l1');
  writeFileSync(join(await d.get('l2'), 'f2'), '2');
  await d.put('l2');
  await d.createReadWrite('l3', 'l2');
  const m = await d.get('l3');
  assert.deepEqual(readdirSync(m).sort(), ['f1', 'f2']);
  await d.put('l3');
});

test('remove intermediate: Docker\'s driver removes it; the child then fails to mount with ENOENT', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d } = await newDriver(t);
  await d.create('base', null);
  await d.create('mid', 'base');
  await d.createReadWrite('top', 'mid');
  // Refusing to remove a layer with children is the layer store's job (it knows the references).
  await d.remove('mid');
  await assert.rejects(d.get('top'), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
  await d.remove('top');
  await d.remove('base');
  assert.equal(await d.exists('base'), false);
});

test('deleted file in child: a whiteout in the upper hides the lower file; the parent keeps it', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.createReadWrite('base', null);
  const b = await d.get('base');
  writeFileSync(join(b, 'foo'), 'foo');
  writeFileSync(join(b, 'bar'), 'bar');
  await d.put('base');
  await d.createReadWrite('child', 'base');
  const m = await d.get('child');
  rmSync(join(m, 'foo'));
  await d.put('child');
  assert.ok(isWhiteout(join(home, 'child', 'diff', 'foo')));
  const m2 = await d.get('child');
  assert.deepEqual(readdirSync(m2), ['bar']);
  await d.put('child');
  assert.equal(readFileSync(join(await d.get('base'), 'foo'), 'utf8'), 'foo');
});

test('opaque dir: a directory removed and re-created in the child hides all lower entries', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  mkdirSync(join(home, 'base', 'diff', 'dir'));
  writeFileSync(join(home, 'base', 'diff', 'dir', 'a'), 'a');
  await d.createReadWrite('child', 'base');
  const m = await d.get('child');
  rmSync(join(m, 'dir'), { recursive: true });
  mkdirSync(join(m, 'dir'));
  writeFileSync(join(m, 'dir', 'b'), 'b');
  assert.deepEqual(readdirSync(join(m, 'dir')), ['b']);
  await d.put('child');
  assert.equal(lgetxattr(join(home, 'child', 'diff', 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
  await d.create('grandchild', 'child');
  const g = await d.get('grandchild');
  assert.deepEqual(readdirSync(join(g, 'dir')), ['b']);
  await d.put('grandchild');
});

test('B34: renaming a lower directory gives EXDEV (redirect_dir off); new dirs and files rename', async (t) => {
  if (!requiresOverlay(t)) return;
  const redirect = readFileSync('/sys/module/overlay/parameters/redirect_dir', 'utf8').trim();
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  mkdirSync(join(home, 'base', 'diff', 'test', 'mydir'), { recursive: true });
  writeFileSync(join(home, 'base', 'diff', 'test', 'mydir', 'file.txt'), 'data');
  await d.createReadWrite('c', 'base');
  const m = await d.get('c');
  try {
    if (redirect === 'N') {
      assert.throws(() => renameSync(join(m, 'test', 'mydir'), join(m, 'test', 'mydir__')), (e: NodeJS.ErrnoException) => e.code === 'EXDEV');
      assert.deepEqual(readdirSync(join(m, 'test')), ['mydir'], 'state unchanged');
    }
    mkdirSync(join(m, 'n'));
    renameSync(join(m, 'n'), join(m, 'n2'));
    renameSync(join(m, 'test', 'mydir', 'file.txt'), join(m, 'test', 'f2'));
    assert.equal(readFileSync(join(m, 'test', 'f2'), 'utf8'), 'data');
    assert.deepEqual(readdirSync(join(m, 'test', 'mydir')), []);
  } finally {
    await d.put('c');
  }
  const up = join(home, 'c', 'diff');
  assert.ok(isWhiteout(join(up, 'test', 'mydir', 'file.txt')), 'a whiteout at the old name');
  assert.equal(readFileSync(join(up, 'test', 'f2'), 'utf8'), 'data', 'copied up');
  assert.ok(existsSync(join(up, 'n2')));
  assert.equal(readFileSync(join(home, 'base', 'diff', 'test', 'mydir', 'file.txt'), 'utf8'), 'data', 'lower untouched');
});

test('close twice / put twice and get after remove of merged leftovers are harmless', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.createReadWrite('c', 'base');
  await d.get('c');
  await d.put('c');
  await d.put('c');
  mkdirSync(join(home, 'c', 'merged'));
  const m = await d.get('c');
  assert.deepEqual(readdirSync(m), []);
  await d.put('c');
  assert.equal(existsSync(m), false);
});

test('root permission: the merged root of a child has the diff dir\'s 0755 root:root', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d } = await newDriver(t);
  await d.create('base', null);
  await d.createReadWrite('c', 'base');
  const st = lstatSync(await d.get('c'));
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(st.uid, 0);
  await d.put('c');
});

test('concurrent gets of one layer mount once; concurrent puts unmount once', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.createReadWrite('c', 'base');
  const paths = await Promise.all(Array.from({ length: 8 }, () => d.get('c')));
  assert.ok(paths.every((p) => p === join(home, 'c', 'merged')));
  assert.equal(d.mountRefs('c'), 8);
  await Promise.all(Array.from({ length: 8 }, () => d.put('c')));
  assert.equal(d.mountRefs('c'), 0);
  assert.equal(existsSync(join(home, 'c', 'merged')), false);
});
