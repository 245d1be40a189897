import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, symlinkSync, linkSync, chownSync, utimesSync, readFileSync, readlinkSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { exportChanges, findNativeDiffBlocker, writeLayerTar, writeTreeTar } from '../../src/archive/diff-layer.js';
import { changesDirs } from '../../src/archive/changes.js';
import { lsetxattr, lutimesNs, mknod, S_IFCHR, S_IFBLK, timespecFromNs } from '../../src/sys/libc.js';
import { hasCode } from '../../src/errors.js';
import { requiresCommand, requiresRoot, tempDir } from '../helpers/requires.js';
import { Collector, readTar } from './diff-tar-read.js';

async function tarOfUpper(dir: string, userxattr = false) {
  const c = new Collector();
  const r = await writeLayerTar(dir, c, { userxattr });
  assert.equal(r.tarSize, c.data.length);
  return { entries: await readTar(c.data), data: c.data, result: r };
}

test('writeLayerTar() of an empty dir is the 1024-byte empty layer', async (t) => {
  const c = new Collector();
  const r = await writeLayerTar(tempDir(t), c);
  assert.deepEqual(c.data, Buffer.alloc(1024));
  assert.equal(r.diffId, 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
});

test('writeLayerTar() walks in Go WalkDir order: bytes-sorted, a dir before its children, no root entry', async (t) => {
  const d = tempDir(t);
  for (const p of ['a/z', 'a.b', 'a-b', 'B', 'a/b/c']) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), p);
  }
  const { entries } = await tarOfUpper(d);
  // Per directory, not by full path: 'a' < 'a-b', so a's subtree comes before 'a-b' ('/' > '-').
  assert.deepEqual(entries.map((e) => e.name), ['B', 'a/', 'a/b/', 'a/b/c', 'a/z', 'a-b', 'a.b']);
  assert.equal(entries.find((e) => e.name === 'a/b/c')!.body.toString(), 'a/b/c');
});

test('B06: writeLayerTar() turns 0/0 char devices into .wh. regular files (0600, size 0, owner and mtime kept)', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  mknod(join(d, 'foo'), S_IFCHR, 0, 0);
  mknod(join(d, 'd'), S_IFCHR, 0, 0);
  chownSync(join(d, 'd'), 1234, 42);
  lutimesNs(join(d, 'd'), null, timespecFromNs(1_600_000_000_900_000_000n));
  mknod(join(d, 'null'), S_IFCHR | 0o666, 1, 3);
  execFileSync('chmod', ['666', join(d, 'null')]);
  const { entries } = await tarOfUpper(d);
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.mode, e.size]), [
    ['.wh.d', 'file', 0o600, 0], ['.wh.foo', 'file', 0o600, 0], ['null', 'character-device', 0o20666, 0],
  ]);
  const wd = entries[0]!;
  assert.deepEqual([wd.uid, wd.gid, wd.mtime], [1234, 42, 1600000000]);
  assert.ok(!entries.some((e) => e.type === 'character-device' && e.name !== 'null'));
});

test('B07/B25: opaque dirs become <dir>/.wh..wh..opq; no overlay xattr and only security.capability reach the tar', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  for (const p of ['foo', 'bar', 'd', 'e', 'etc/ssl']) mkdirSync(join(d, p), { recursive: true });
  writeFileSync(join(d, 'bar/x'), '');
  writeFileSync(join(d, 'etc/ssl/new'), '');
  writeFileSync(join(d, 'plain'), 'p');
  execFileSync('chmod', ['1750', join(d, 'foo')]);
  for (const p of ['foo', 'bar', 'etc/ssl', 'd']) lsetxattr(join(d, p), 'trusted.overlay.opaque', 'y');
  lsetxattr(join(d, 'e'), 'user.overlay.opaque', 'y');
  lsetxattr(join(d, 'plain'), 'trusted.overlay.impure', 'y');
  lsetxattr(join(d, 'plain'), 'trusted.overlay.origin', Buffer.from([0, 1, 2]));
  lsetxattr(join(d, 'plain'), 'user.mime', 'text/plain');
  const v2 = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  lsetxattr(join(d, 'plain'), 'security.capability', v2);
  lsetxattr(join(d, 'e'), 'trusted.overlay.opaque', 'x'); // only "y" means opaque

  const { entries } = await tarOfUpper(d);
  assert.deepEqual(entries.map((e) => e.name), [
    'bar/', 'bar/.wh..wh..opq', 'bar/x', 'd/', 'd/.wh..wh..opq', 'e/', 'etc/', 'etc/ssl/', 'etc/ssl/.wh..wh..opq', 'etc/ssl/new',
    'foo/', 'foo/.wh..wh..opq', 'plain',
  ]);
  const opq = entries.find((e) => e.name === 'foo/.wh..wh..opq')!;
  assert.deepEqual([opq.type, opq.mode, opq.mtime, opq.size], ['file', 0o750, 0, 0]); // perm bits only, epoch
  assert.equal(entries.find((e) => e.name === 'foo/')!.mode, 0o41750);
  for (const e of entries) {
    for (const k of Object.keys(e.pax)) assert.equal(k, 'SCHILY.xattr.security.capability', `${e.name} leaked ${k}`);
  }
  assert.equal(Buffer.from(entries.find((e) => e.name === 'plain')!.pax['SCHILY.xattr.security.capability']!, 'latin1').length, 20);

  // B08: in userxattr mode only user.overlay.opaque counts.
  const u = await tarOfUpper(d, true);
  assert.deepEqual(u.entries.filter((e) => e.name.endsWith('.wh..wh..opq')).map((e) => e.name), ['e/.wh..wh..opq']);
});

test('B24: a v3 security.capability is written as v2 (20 bytes, rootid dropped)', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  writeFileSync(join(d, 'bin'), 'x');
  const v3 = Buffer.from('010000032000000000000000000000000000000000000000', 'hex'); // rootid 0
  v3.writeUInt32LE(1000, 20);
  lsetxattr(join(d, 'bin'), 'security.capability', v3);
  const { data } = await tarOfUpper(d);
  const want = Buffer.from(v3.subarray(0, 20));
  want[3] = 2;
  assert.ok(data.includes(Buffer.concat([Buffer.from('SCHILY.xattr.security.capability='), want, Buffer.from('\n')])));
});

test('B09: writeLayerTar() refuses an upper holding a redirect or metacopy entry (the driver must diff naively)', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  mknod(join(d, 'foo'), S_IFCHR, 0, 0);
  mkdirSync(join(d, 'foo2'));
  lsetxattr(join(d, 'foo2'), 'trusted.overlay.redirect', '/foo');
  assert.deepEqual(await findNativeDiffBlocker(d), { path: '/foo2', reason: 'upper-has-redirect' });
  await assert.rejects(writeLayerTar(d, new Collector()), (e) => hasCode(e, 'EOPNOTSUPP') && (e as { reason?: string }).reason === 'upper-has-redirect');
  const m = tempDir(t);
  writeFileSync(join(m, 'f'), '');
  lsetxattr(join(m, 'f'), 'trusted.overlay.metacopy', '');
  assert.deepEqual(await findNativeDiffBlocker(m), { path: '/f', reason: 'upper-has-metacopy' });
  assert.equal(await findNativeDiffBlocker(tempDir(t)), null);
});

test('B29: mtimes are truncated to whole seconds; pre-1970 and post-2242 times are kept through PAX', async (t) => {
  const d = tempDir(t);
  for (const n of ['ns', 'neg', 'zero', 'far']) writeFileSync(join(d, n), '');
  lutimesNs(join(d, 'ns'), null, timespecFromNs(1569617781_373654605n));
  lutimesNs(join(d, 'neg'), null, timespecFromNs(-3600_000_000_000n - 1n));
  utimesSync(join(d, 'zero'), 0, 0);
  lutimesNs(join(d, 'far'), null, timespecFromNs(8589934592_000000000n));
  const { entries } = await tarOfUpper(d);
  const by = Object.fromEntries(entries.map((e) => [e.name, e]));
  assert.deepEqual([by['ns']!.mtime, by['ns']!.pax], [1569617781, {}]);
  assert.deepEqual(by['neg']!.pax, { mtime: '-3601' }); // floor, like Go's Truncate
  assert.deepEqual([by['zero']!.mtime, by['zero']!.pax], [0, {}]);
  assert.deepEqual(by['far']!.pax, { mtime: '8589934592' });
});

test('writeLayerTar() links 2nd+ names of an inode to the first, skips sockets, writes devices and FIFOs', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  writeFileSync(join(d, 'b'), 'data');
  linkSync(join(d, 'b'), join(d, 'a'));
  linkSync(join(d, 'b'), join(d, 'c'));
  symlinkSync('/etc/passwd', join(d, 's'));
  mknod(join(d, 'blk'), S_IFBLK | 0o640, 8, 1);
  execFileSync('mkfifo', [join(d, 'p')]);
  execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind('${join(d, 'sock')}')`]);
  const { entries } = await tarOfUpper(d);
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.mode, e.size, e.linkname]), [
    ['a', 'file', 0o100644, 4, ''], ['b', 'link', 0o100644, 0, 'a'], ['blk', 'block-device', 0o60640, 0, ''],
    ['c', 'link', 0o100644, 0, 'a'], ['p', 'fifo', 0o10644, 0, ''], ['s', 'symlink', 0o120777, 0, '/etc/passwd'],
  ]);
});

test('writeLayerTar() streams a large file in chunks with backpressure and hashes exactly what it wrote', async (t) => {
  const d = tempDir(t);
  const big = Buffer.alloc(5 * 1024 * 1024 + 7);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  writeFileSync(join(d, 'big'), big);
  const c = new Collector({ highWaterMark: 1024 });
  const r = await writeLayerTar(d, c, { chunkSize: 64 * 1024 });
  const entries = await readTar(c.data);
  assert.deepEqual(entries[0]!.body, big);
  const { createHash } = await import('node:crypto');
  assert.equal(r.diffId, `sha256:${createHash('sha256').update(c.data).digest('hex')}`);
  assert.equal(c.data.length % 512, 0);
});

test('exportChanges() writes Docker naive-diff entries: sorted, deletions as mode-0 .wh. files owned 0:0 at now', async (t) => {
  if (!requiresRoot(t)) return;
  const root = tempDir(t);
  mkdirSync(join(root, 'dir'));
  writeFileSync(join(root, 'dir/new'), 'n');
  linkSync(join(root, 'dir/new'), join(root, 'dir/alias'));
  chownSync(join(root, 'dir/new'), 1000, 1000);
  const before = Math.floor(Date.now() / 1000);
  const c = new Collector();
  await exportChanges(root, [
    { path: '/dir/new', kind: 'A' }, { path: '/gone', kind: 'D' }, { path: '/dir', kind: 'C' },
    { path: '/dir/alias', kind: 'A' }, { path: '/dir/old', kind: 'D' }, { path: '/vanished', kind: 'A' },
  ], c);
  const entries = await readTar(c.data);
  assert.deepEqual(entries.map((e) => [e.name, e.type, e.mode, e.uid, e.gid, e.linkname]), [
    ['dir/', 'directory', 0o40755, 0, 0, ''], ['dir/alias', 'file', 0o100644, 1000, 1000, ''],
    ['dir/new', 'link', 0o100644, 1000, 1000, 'dir/alias'], ['dir/.wh.old', 'file', 0, 0, 0, ''],
    ['.wh.gone', 'file', 0, 0, 0, ''],
  ]);
  const wh = entries[3]!;
  assert.ok(wh.mtime >= before && wh.mtime <= Math.round(Date.now() / 1000));
  assert.deepEqual([wh.uname, wh.gname], ['', '']);
});

test('B19: names are bytes — an invalid-UTF-8 name with a newline goes out verbatim in PAX path', async (t) => {
  const d = tempDir(t);
  const raw = Buffer.from([0x66, 0xff, 0x0a, 0x67]);
  writeFileSync(Buffer.concat([Buffer.from(`${d}/`), raw]), 'x');
  const { data } = await tarOfUpper(d);
  const rec = Buffer.concat([Buffer.from('13 path='), raw, Buffer.from('\n')]);
  assert.ok(data.includes(rec), 'PAX path record with the raw bytes');
  assert.equal(data.subarray(512 * 2, 512 * 2 + 4).toString('latin1'), 'f\ng\0'); // main header: ASCII only
});

test('writeTreeTar() tars a tree literally: no whiteout or opaque conversion', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  mkdirSync(join(d, 'o'));
  lsetxattr(join(d, 'o'), 'trusted.overlay.opaque', 'y');
  writeFileSync(join(d, 'o/f'), 'f');
  const c = new Collector();
  await writeTreeTar(d, c);
  assert.deepEqual((await readTar(c.data)).map((e) => e.name), ['o/', 'o/f']);
});

test('B18: long names and link targets round-trip through GNU tar (ustar prefix split, PAX path, PAX linkpath)', async (t) => {
  if (!requiresCommand(t, 'tar')) return;
  const d = tempDir(t);
  const p150 = `${'p'.repeat(60)}/${'q'.repeat(89)}`;
  const p300 = `${'r'.repeat(120)}/${'s'.repeat(120)}/${'t'.repeat(58)}`;
  for (const p of [p150, p300]) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), p);
  }
  const target = `../${'u'.repeat(177)}`;
  symlinkSync(target, join(d, 'longlink'));
  const { entries, data } = await tarOfUpper(d);
  const by = Object.fromEntries(entries.map((e) => [e.name, e]));
  assert.deepEqual(by[p150]!.pax, {});
  assert.deepEqual(Object.keys(by[p300]!.pax), ['path']);
  assert.deepEqual([by['longlink']!.linkname, Object.keys(by['longlink']!.pax)], [target, ['linkpath']]);
  const out = tempDir(t);
  const tarFile = join(out, 'l.tar');
  writeFileSync(tarFile, data);
  mkdirSync(join(out, 'x'));
  execFileSync('tar', ['-xf', tarFile, '-C', join(out, 'x')]);
  assert.equal(readFileSync(join(out, 'x', p300), 'utf8'), p300);
  assert.equal(readFileSync(join(out, 'x', p150), 'utf8'), p150);
  assert.equal(readlinkSync(join(out, 'x', 'longlink')), target);
  assert.ok(!execFileSync('tar', ['-tf', tarFile]).toString().includes('LongLink'));
});

test('B30 (Docker parity): a sparse file is written at its full length, holes as zeros', async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, 'sparse'), '');
  truncateSync(join(d, 'sparse'), 16 * 1024 * 1024);
  writeFileSync(join(d, 'sparse'), 'end', { flag: 'r+' });
  const { entries } = await tarOfUpper(d);
  assert.equal(entries[0]!.size, 16 * 1024 * 1024);
  assert.equal(entries[0]!.body.subarray(0, 3).toString(), 'end');
  assert.equal(entries[0]!.body.subarray(3).every((b) => b === 0), true);
});

test('B14: absolute symlink targets go out verbatim (native and naive diff, short and PAX-long)', async (t) => {
  const d = tempDir(t);
  const long = `/${'x'.repeat(120)}/lib.so`;
  mkdirSync(join(d, 'usr'));
  symlinkSync('/usr/lib', join(d, 'lib'));
  symlinkSync('/etc/passwd', join(d, 'usr/passwd'));
  symlinkSync(long, join(d, 'long'));
  symlinkSync('/../../outside', join(d, 'up'));
  const want = { lib: '/usr/lib', long, up: '/../../outside', 'usr/passwd': '/etc/passwd' };
  const links = (entries: Awaited<ReturnType<typeof readTar>>) => Object.fromEntries(entries.filter((e) => e.type === 'symlink').map((e) => [e.name, e.linkname]));
  assert.deepEqual(links((await tarOfUpper(d)).entries), want);
  const c = new Collector();
  await exportChanges(d, Object.keys(want).map((p) => ({ path: `/${p}`, kind: 'A' as const })), c);
  assert.deepEqual(links(await readTar(c.data)), want);
});

test('B19: the naive diff keeps byte names too — an invalid-UTF-8 name with a newline is listed and exported verbatim', async (t) => {
  const o = tempDir(t);
  const n = tempDir(t);
  const raw = Buffer.from([0x66, 0xff, 0x0a, 0x67]);
  writeFileSync(join(o, 'keep'), 'k');
  writeFileSync(join(n, 'keep'), 'k');
  utimesSync(join(o, 'keep'), 1000, 1000);
  utimesSync(join(n, 'keep'), 1000, 1000);
  mkdirSync(join(n, 'dir'));
  writeFileSync(Buffer.concat([Buffer.from(`${n}/dir/`), raw]), 'bytes');
  const changes = await changesDirs(n, o);
  assert.equal(changes.length, 2, JSON.stringify(changes));
  const c = new Collector();
  await exportChanges(n, changes, c);
  const { data } = c;
  const rec = Buffer.concat([Buffer.from('17 path=dir/'), raw, Buffer.from('\n')]);
  assert.ok(data.includes(rec), 'PAX path record with the raw bytes');
  const entries = await readTar(data);
  assert.deepEqual(entries.map((e) => [e.type, e.body.toString()]), [['directory', ''], ['file', 'bytes']]);
});

test('B24: the naive diff (exportChanges) downgrades a v3 security.capability to v2 as well', async (t) => {
  if (!requiresRoot(t)) return;
  const d = tempDir(t);
  writeFileSync(join(d, 'bin'), 'x');
  const v3 = Buffer.from('010000030004000000000000000000000000000000000000', 'hex');
  v3.writeUInt32LE(1000, 20);
  lsetxattr(join(d, 'bin'), 'security.capability', v3);
  const c = new Collector();
  await exportChanges(d, [{ path: '/bin', kind: 'A' }], c);
  const want = Buffer.from(v3.subarray(0, 20));
  want[3] = 2;
  assert.ok(c.data.includes(Buffer.concat([Buffer.from('SCHILY.xattr.security.capability='), want, Buffer.from('\n')])));
  assert.ok(!c.data.includes(v3), 'the v3 bytes are not written');
});
