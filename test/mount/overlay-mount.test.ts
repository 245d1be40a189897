import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountOverlay, overlayMountData, unmount, isOverlayMountPoint, recursiveUnmount } from '../../src/mount/index.js';
import { parseMountinfo, mountsUnder, mountContaining } from '../../src/mount/mountinfo.js';
import { OverlayError } from '../../src/errors.js';
import { mount, pageSize } from '../../src/sys/libc.js';
import { requiresOverlay, tempDir } from '../helpers/requires.js';

function dirs(root: string, ...names: string[]): string[] {
  return names.map((n) => {
    const p = join(root, n);
    mkdirSync(p, { recursive: true });
    return p;
  });
}

test('overlayMountData() builds Docker\'s option string in Docker\'s order', () => {
  assert.equal(
    overlayMountData({ lowers: ['/h/l/A', '/h/l/B'], upper: '/h/x/diff', work: '/h/x/work', target: '/h/x/merged', indexOff: true, userxattr: true }),
    'index=off,userxattr,lowerdir=/h/l/A:/h/l/B,upperdir=/h/x/diff,workdir=/h/x/work',
  );
  assert.equal(overlayMountData({ lowers: ['/a', '/b'], target: '/m' }), 'lowerdir=/a:/b');
  assert.equal(overlayMountData({ lowers: ['/a'], target: '/m', mountLabel: 'system_u:object_r:x:s0' }), 'lowerdir=/a,context="system_u:object_r:x:s0"');
});

test('parseMountinfo() decodes octal escapes, mountsUnder() orders deepest first, mountContaining() finds the mount of a path', () => {
  const text = [
    '36 25 0:32 / /tmp/a\\040b rw - overlay overlay rw,lowerdir=/x',
    '37 36 0:33 / /tmp/a\\040b/c rw - tmpfs tmpfs rw',
    '38 25 0:34 / /tmp/ab rw - tmpfs tmpfs rw',
  ].join('\n');
  const m = parseMountinfo(text);
  assert.equal(m[0]?.mountPoint, '/tmp/a b');
  assert.equal(m[0]?.fsType, 'overlay');
  assert.deepEqual(mountsUnder('/tmp/a b', m), ['/tmp/a b/c', '/tmp/a b']);
  const withRoot = parseMountinfo(['20 1 8:1 / / rw - ext4 /dev/sda1 rw', text].join('\n'));
  assert.equal(mountContaining('/tmp/a b/c/d/e', withRoot)?.fsType, 'tmpfs');
  assert.equal(mountContaining('/tmp/a b/x', withRoot)?.fsType, 'overlay');
  assert.equal(mountContaining('/tmp/a bc', withRoot)?.fsType, 'ext4', 'a name prefix is not a path prefix');
  assert.equal(mountContaining('/tmp/ab', withRoot)?.mountPoint, '/tmp/ab');
});

test('mountOverlay() mounts two lowers rw, and a lowers-only overlay read-only', (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  const [l1, l2, up, wk, m] = dirs(d, 'l1', 'l2', 'up', 'wk', 'm') as [string, string, string, string, string];
  writeFileSync(join(l1, 'f'), 'bottom');
  writeFileSync(join(l2, 'f'), 'top');
  writeFileSync(join(l1, 'g'), 'g');
  assert.equal(mountOverlay({ lowers: [l2, l1], upper: up, work: wk, target: m, indexOff: true }), 'mount');
  assert.equal(isOverlayMountPoint(m), true);
  assert.equal(readFileSync(join(m, 'f'), 'utf8'), 'top');
  writeFileSync(join(m, 'new'), 'x');
  assert.equal(readFileSync(join(up, 'new'), 'utf8'), 'x');
  unmount(m);
  assert.equal(isOverlayMountPoint(m), false);
  mountOverlay({ lowers: [l2, l1], target: m });
  assert.throws(() => writeFileSync(join(m, 'nope'), 'x'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
  unmount(m);
});

test('a failed mount carries Docker\'s "error creating overlay mount to" text', (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  const [up, wk, m] = dirs(d, 'up', 'wk', 'm') as [string, string, string];
  assert.throws(
    () => mountOverlay({ lowers: [join(d, 'missing')], upper: up, work: wk, target: m }),
    (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT' && e.message.includes(`error creating overlay mount to ${m}: no such file or directory`),
  );
  assert.equal(isOverlayMountPoint(m), false);
});

test('mount data over a page: new mount API with 200 lowers, and Docker\'s relative-path form', (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  const base = join(d, 'x'.repeat(60));
  const lowers: string[] = [];
  for (let i = 0; i < 200; i++) {
    const l = join(base, 'l', `lower-${String(i).padStart(4, '0')}`);
    mkdirSync(l, { recursive: true });
    writeFileSync(join(l, `f${i}`), String(i));
    lowers.push(l);
  }
  const [up, wk, m] = dirs(base, 'up', 'wk', 'm') as [string, string, string];
  const spec = { lowers, upper: up, work: wk, target: m, indexOff: true, relativeTo: base };
  assert.ok(overlayMountData(spec).length > pageSize(), 'the data must exceed a page for this test');
  assert.equal(mountOverlay(spec), 'fsmount');
  assert.equal(readdirSync(m).length, 200);
  assert.equal(readFileSync(join(m, 'f0'), 'utf8'), '0');
  assert.equal(readFileSync(join(m, 'f199'), 'utf8'), '199');
  unmount(m);
  // Relative form: "l/lower-0000:…" is 16 bytes per lower → 200 lowers fit in a page.
  const cwd = process.cwd();
  assert.equal(mountOverlay({ ...spec, method: 'mount-relative' }), 'mount-relative');
  assert.equal(process.cwd(), cwd);
  assert.equal(readdirSync(m).length, 200);
  unmount(m);
});

test('relative data still over a page fails with "cannot mount layer, mount label too large"', (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  const lowers = Array.from({ length: 40 }, (_, i) => join(d, `${'y'.repeat(120)}${i}`));
  const [up, wk, m] = dirs(d, 'up', 'wk', 'm') as [string, string, string];
  assert.throws(
    () => mountOverlay({ lowers, upper: up, work: wk, target: m, relativeTo: d, method: 'mount-relative' }),
    (e: unknown) => e instanceof OverlayError && e.code === 'E2BIG' && /cannot mount layer, mount label too large \d+/.test(e.message),
  );
});

test('recursiveUnmount() unmounts stacked and nested mounts', (t) => {
  if (!requiresOverlay(t)) return;
  const d = tempDir(t);
  const [l1, l2, m] = dirs(d, 'l1', 'l2', 'm') as [string, string, string];
  writeFileSync(join(l1, 'f'), 'x');
  mount('tmpfs', m, 'tmpfs', 0, 'size=1m');
  mountOverlay({ lowers: [l1, l2], target: m });
  const inner = join(d, 'l2', 'n');
  mkdirSync(inner);
  mountOverlay({ lowers: [l1, l2], target: inner });
  assert.equal(mountsUnder(d).length, 3);
  recursiveUnmount(d);
  assert.equal(isOverlayMountPoint(m), false);
  assert.deepEqual(mountsUnder(d), []);
});

test('mountOverlay() refuses paths with "," or ":" and missing work dir', () => {
  assert.throws(() => mountOverlay({ lowers: ['/a:b'], target: '/m' }), (e: unknown) => e instanceof OverlayError && e.reason === 'path-has-separator');
  assert.throws(() => mountOverlay({ lowers: ['/a'], upper: '/u', target: '/m' }), (e: unknown) => e instanceof OverlayError && e.reason === 'upper-without-work');
  assert.throws(() => mountOverlay({ lowers: [], target: '/m' }), (e: unknown) => e instanceof OverlayError && e.reason === 'no-lowers');
});
