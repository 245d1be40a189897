/**
 * Layer cases that need the kernel to make the upper: B09 (redirect_dir rename → the native diff is
 * refused and the naive diff carries the full subtree) and B10 (hard links to a lower file in a
 * commit: data once, other names as link entries to the first name emitted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changesDirs, overlayChanges } from '../../src/archive/changes.js';
import { exportChanges, findNativeDiffBlocker, writeLayerTar } from '../../src/archive/diff-layer.js';
import { MS_RDONLY, mount, umount2 } from '../../src/sys/libc.js';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { Collector, readTar } from '../archive/diff-tar-read.js';

function dirs(root: string, names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => { const d = join(root, n); mkdirSync(d); return [n, d]; }));
}

test('B09: a redirect_dir rename is refused by the native diff and committed in full by the naive diff', async (t) => {
  if (!requiresOverlay(t)) return;
  const d = dirs(tempDir(t), ['l1', 'l0', 'u', 'w', 'm', 'ro']);
  mkdirSync(join(d['l1']!, 'foo'));
  writeFileSync(join(d['l1']!, 'foo/bar'), 'hello');
  const lowers = [d['l1']!, d['l0']!];
  mount('overlay', d['m']!, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${d['u']},workdir=${d['w']},redirect_dir=on,index=off`);
  t.after(() => { try { umount2(d['m']!, 2); } catch (e) { void e; } });
  execFileSync('mv', [join(d['m']!, 'foo'), join(d['m']!, 'foo2')]);

  assert.deepEqual(await findNativeDiffBlocker(d['u']!), { path: '/foo2', reason: 'upper-has-redirect' });
  await assert.rejects(writeLayerTar(d['u']!, new Collector()), { code: 'EOPNOTSUPP', reason: 'upper-has-redirect' });
  await assert.rejects(overlayChanges(d['u']!, lowers), { code: 'EOPNOTSUPP' });

  mount('overlay', d['ro']!, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')}`);
  t.after(() => { try { umount2(d['ro']!, 2); } catch (e) { void e; } });
  const changes = await changesDirs(d['m']!, d['ro']!);
  assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`), ['D /foo', 'A /foo2', 'A /foo2/bar']);
  const c = new Collector();
  await exportChanges(d['m']!, changes, c);
  const entries = await readTar(c.data);
  assert.deepEqual(entries.map((e) => e.name), ['.wh.foo', 'foo2/', 'foo2/bar']);
  assert.equal(entries[2]!.body.toString(), 'hello');
  assert.ok(!c.data.includes(Buffer.from('overlay.redirect')));
});

test('B10: links made in a container to a lower file store the data once, other names link to the first', async (t) => {
  if (!requiresOverlay(t)) return;
  const d = dirs(tempDir(t), ['l1', 'u', 'w', 'm']);
  const payload = randomBytes(1024 * 1024);
  writeFileSync(join(d['l1']!, 'file1'), payload);
  linkSync(join(d['l1']!, 'file1'), join(d['l1']!, 'file2'));
  linkSync(join(d['l1']!, 'file1'), join(d['l1']!, 'file3'));
  mount('overlay', d['m']!, 'overlay', 0, `lowerdir=${d['l1']},upperdir=${d['u']},workdir=${d['w']},index=off`);
  t.after(() => { try { umount2(d['m']!, 2); } catch (e) { void e; } });
  execFileSync('sh', ['-ec', 'ln file1 file4 && ln file1 file5'], { cwd: d['m']! });
  const c = new Collector();
  await writeLayerTar(d['u']!, c);
  const entries = await readTar(c.data);
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.linkname]), [
    ['file1', 'file', ''], ['file4', 'link', 'file1'], ['file5', 'link', 'file1'],
  ]);
  assert.deepEqual(entries[0]!.body, payload);
  assert.equal(c.data.indexOf(payload.subarray(0, 64)), c.data.lastIndexOf(payload.subarray(0, 64)));
  // The copy-up of file1 keeps mode, owner, size and mtime (only nlink changes): Docker shows no C.
  assert.deepEqual((await overlayChanges(d['u']!, [d['l1']!])).map((x) => `${x.kind} ${x.path}`), ['A /file4', 'A /file5']);
});

test('B08: a userxattr container that removes and recreates a dir commits it with .wh..wh..opq', async (t) => {
  if (!requiresOverlay(t)) return;
  const d = dirs(tempDir(t), ['l1', 'l2', 'u', 'w', 'm']);
  mkdirSync(join(d['l1']!, 'tmp/dir1'), { recursive: true });
  mkdirSync(join(d['l2']!, 'tmp/dir1'), { recursive: true });
  writeFileSync(join(d['l2']!, 'tmp/dir1/should_be_deleted'), '');
  const lowers = [d['l2']!, d['l1']!];
  mount('overlay', d['m']!, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${d['u']},workdir=${d['w']},userxattr,index=off`);
  t.after(() => { try { umount2(d['m']!, 2); } catch (e) { void e; } });
  execFileSync('sh', ['-ec', 'rm -r tmp/dir1 && mkdir tmp/dir1'], { cwd: d['m']! });
  const c = new Collector();
  await writeLayerTar(d['u']!, c, { userxattr: true });
  assert.deepEqual((await readTar(c.data)).map((e) => e.name), ['tmp/', 'tmp/dir1/', 'tmp/dir1/.wh..wh..opq']);
  assert.deepEqual((await overlayChanges(d['u']!, lowers, { userxattr: true })).map((x) => `${x.kind} ${x.path}`),
    ['C /tmp', 'C /tmp/dir1', 'D /tmp/dir1/should_be_deleted']);
  // Read in trusted mode, the same upper has no opaque dir: the store's mode must match the mount's.
  const t2 = new Collector();
  await writeLayerTar(d['u']!, t2);
  assert.deepEqual((await readTar(t2.data)).map((e) => e.name), ['tmp/', 'tmp/dir1/']);
});
