import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer } from '../../src/archive/apply-layer.js';
import { OverlayError } from '../../src/errors.js';
import { lgetxattr, major, minor } from '../../src/sys/libc.js';
import { requiresRoot, tempDir } from '../helpers/requires.js';
import { tarOf, type TarEntrySpec } from '../helpers/tar-builder.js';

/** Write `entries` as a tar and apply it into a fresh dir; returns the dir and the result. */
async function apply(t: import('node:test').TestContext, entries: TarEntrySpec[] | Buffer, opts: Parameters<typeof applyLayer>[2] = {}) {
  const root = tempDir(t);
  const tar = join(root, 'layer.tar');
  const bytes = Buffer.isBuffer(entries) ? entries : tarOf(entries);
  writeFileSync(tar, bytes);
  const dest = join(root, 'diff');
  mkdirSync(dest);
  const r = await applyLayer(tar, dest, opts);
  return { root, dest, tar, bytes, r };
}

async function applyError(t: import('node:test').TestContext, entries: TarEntrySpec[] | Buffer, opts: Parameters<typeof applyLayer>[2] = {}) {
  try {
    await apply(t, entries, opts);
  } catch (e) {
    assert.ok(e instanceof OverlayError, `expected OverlayError, got ${String(e)}`);
    return e;
  }
  assert.fail('applyLayer() should have failed');
}

test('applyLayer() creates every file type with exact type, mode, owner, mtime and content', async (t) => {
  if (!requiresRoot(t)) return;
  const { dest, r } = await apply(t, [
    { name: 'd/', type: 'dir', mode: 0o750, uid: 7, gid: 8, mtime: 1000000000 },
    { name: 'd/f', body: 'hello', mode: 0o640, uid: 1000, gid: 1001, paxMtime: '1569617781.373654605' },
    { name: 'd/sym', type: 'symlink', linkname: '../target/x' },
    { name: 'd/hard', type: 'link', linkname: 'd/f', mode: 0o640, uid: 1000, gid: 1001, paxMtime: '1569617781.373654605' },
    { name: 'fifo', type: 'fifo', mode: 0o600 },
    { name: 'null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
    { name: 'sda', type: 'block', mode: 0o660, devmajor: 8, devminor: 0, gid: 6 },
    { name: 'exec', body: '#!/bin/sh\n', mode: 0o777 },
  ]);
  const d = lstatSync(join(dest, 'd'), { bigint: true });
  assert.ok(d.isDirectory());
  assert.equal(Number(d.mode & 0o7777n), 0o750);
  assert.equal([d.uid, d.gid].join(':'), '7:8');
  assert.equal(d.mtimeNs, 1000000000n * 1000000000n);
  const f = lstatSync(join(dest, 'd/f'), { bigint: true });
  assert.equal(readFileSync(join(dest, 'd/f'), 'utf8'), 'hello');
  assert.equal(Number(f.mode & 0o7777n), 0o640);
  assert.equal([f.uid, f.gid].join(':'), '1000:1001');
  assert.equal(f.mtimeNs, 1569617781373654605n);
  assert.equal(f.atimeNs, 1569617781373654605n, 'atime defaults to mtime');
  assert.equal(f.nlink, 2n);
  assert.equal(lstatSync(join(dest, 'd/hard')).ino, lstatSync(join(dest, 'd/f')).ino);
  assert.equal(readlinkSync(join(dest, 'd/sym')), '../target/x');
  assert.ok(lstatSync(join(dest, 'fifo')).isFIFO());
  assert.equal(lstatSync(join(dest, 'fifo')).mode & 0o7777, 0o600);
  const n = lstatSync(join(dest, 'null'));
  assert.ok(n.isCharacterDevice());
  assert.deepEqual([major(n.rdev), minor(n.rdev), n.mode & 0o7777], [1, 3, 0o666]);
  const b = lstatSync(join(dest, 'sda'));
  assert.ok(b.isBlockDevice());
  assert.deepEqual([major(b.rdev), minor(b.rdev), b.mode & 0o7777, b.gid], [8, 0, 0o660, 6]);
  assert.equal(lstatSync(join(dest, 'exec')).mode & 0o7777, 0o777, 'mode is exact whatever the umask');
  assert.equal(r.entries, 8);
});

test('applyLayer() reports the diffID, tar size, entry count and Docker-style size', async (t) => {
  if (!requiresRoot(t)) return;
  const { bytes, r } = await apply(t, [
    { name: 'a', body: 'x'.repeat(1000) },
    { name: 'b', type: 'link', linkname: 'a' },
    { name: 'c', type: 'symlink', linkname: 'abcdef' },
    { name: 'dir/', type: 'dir' },
    { name: 'e', body: '' },
    { name: 'f', body: 'y'.repeat(10) },
    { name: 'f', body: 'z'.repeat(20) },
    { name: '.wh.gone' },
  ]);
  assert.equal(r.diffId, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  assert.equal(r.tarSize, bytes.length);
  assert.equal(r.compression, 'none');
  assert.equal(r.entries, 8);
  // a counted once (hard link), the symlink's target length, f's final 20 bytes; dirs and devices 0.
  assert.equal(r.size, 1000 + 6 + 20);
});

test('applyLayer() sets xattrs from SCHILY.xattr records, security.capability included', async (t) => {
  if (!requiresRoot(t)) return;
  const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
  const { dest } = await apply(t, [
    { name: 'bin', body: 'b', mode: 0o755, xattrs: { 'security.capability': cap, 'user.comment': 'hello xattr' } },
    { name: 'dir/', type: 'dir', xattrs: { 'user.d': 'v' } },
  ]);
  assert.deepEqual(lgetxattr(join(dest, 'bin'), 'security.capability'), cap);
  assert.equal(lgetxattr(join(dest, 'bin'), 'user.comment')?.toString(), 'hello xattr');
  assert.equal(lgetxattr(join(dest, 'dir'), 'user.d')?.toString(), 'v');
});

test('applyLayer() turns .wh.<name> into a 0/0 char device with the header owner', async (t) => {
  if (!requiresRoot(t)) return;
  const { dest } = await apply(t, [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/.wh.passwd', mode: 0o600, uid: 5, gid: 6 },
    { name: '.wh.top', mode: 0o600 },
  ]);
  for (const [p, owner] of [['etc/passwd', '5:6'], ['top', '0:0']] as const) {
    const st = lstatSync(join(dest, p));
    assert.ok(st.isCharacterDevice(), p);
    assert.equal(st.rdev, 0);
    assert.equal(`${st.uid}:${st.gid}`, owner);
  }
  assert.deepEqual(readdirSync(join(dest, 'etc')), ['passwd'], 'no .wh. file is written');
});

test('applyLayer() turns .wh..wh..opq into the opaque xattr (trusted, or user with userxattr)', async (t) => {
  if (!requiresRoot(t)) return;
  const entries: TarEntrySpec[] = [{ name: 'a/', type: 'dir' }, { name: 'a/x', body: '1' }, { name: 'a/.wh..wh..opq' }];
  const trusted = await apply(t, entries);
  assert.equal(lgetxattr(join(trusted.dest, 'a'), 'trusted.overlay.opaque')?.toString(), 'y');
  assert.equal(lgetxattr(join(trusted.dest, 'a'), 'user.overlay.opaque'), null);
  assert.deepEqual(readdirSync(join(trusted.dest, 'a')), ['x']);
  const user = await apply(t, entries, { userxattr: true });
  assert.equal(lgetxattr(join(user.dest, 'a'), 'user.overlay.opaque')?.toString(), 'y');
  assert.equal(lgetxattr(join(user.dest, 'a'), 'trusted.overlay.opaque'), null);
});

test('applyLayer() gives the same tree and result on a worker and inline', async (t) => {
  if (!requiresRoot(t)) return;
  const entries: TarEntrySpec[] = [
    { name: 'x/', type: 'dir', mode: 0o700 },
    { name: 'x/y', body: 'content', uid: 3, gid: 4 },
    { name: 'x/z', type: 'symlink', linkname: 'y' },
  ];
  const a = await apply(t, entries, { worker: true });
  const b = await apply(t, entries, { worker: false });
  assert.deepEqual(a.r, b.r);
  for (const p of ['x', 'x/y', 'x/z']) {
    const sa = lstatSync(join(a.dest, p), { bigint: true });
    const sb = lstatSync(join(b.dest, p), { bigint: true });
    assert.deepEqual([sa.mode, sa.uid, sa.gid, sa.size, sa.mtimeNs], [sb.mode, sb.uid, sb.gid, sb.size, sb.mtimeNs], p);
  }
});

test('applyLayer() replaces an existing path unless both are directories', async (t) => {
  if (!requiresRoot(t)) return;
  const { dest } = await apply(t, [
    { name: 'd/', type: 'dir', mode: 0o700, mtime: 100 },
    { name: 'd/keep', body: 'k' },
    { name: 'd/', type: 'dir', mode: 0o751, mtime: 200 },
    { name: 'f', body: 'file' },
    { name: 'f/', type: 'dir' },
    { name: 'f/inner', body: 'i' },
    { name: 'g/', type: 'dir' },
    { name: 'g/child', body: 'c' },
    { name: 'g', type: 'symlink', linkname: 'd' },
  ]);
  assert.deepEqual(readdirSync(join(dest, 'd')), ['keep']);
  const d = lstatSync(join(dest, 'd'));
  assert.equal(d.mode & 0o7777, 0o751, 'the later directory entry wins');
  assert.equal(d.mtimeMs, 200000);
  assert.ok(lstatSync(join(dest, 'f')).isDirectory());
  assert.equal(readlinkSync(join(dest, 'g')), 'd');
});

test('applyLayer() skips PAX global headers and reads base-256 numbers', async (t) => {
  if (!requiresRoot(t)) return;
  const global = tarOf([{ name: 'pax_global_header', type: 'g', body: '28 comment=global header\n' }], { end: false });
  const rest = tarOf([{ name: 'big', body: 'b', uid: 3000000, gid: 3000001, mtime: 4102444800, numeric: 'base256' }]);
  const { dest, r } = await apply(t, Buffer.concat([global, rest]));
  const st = lstatSync(join(dest, 'big'));
  assert.deepEqual([st.uid, st.gid, st.mtimeMs], [3000000, 3000001, 4102444800000]);
  assert.deepEqual(readdirSync(dest), ['big']);
  assert.equal(r.entries, 1);
});

test('applyLayer() rejects a bad header checksum, naming the layer and the byte offset', async (t) => {
  const e = await applyError(t, [{ name: 'a', body: 'x' }, { name: 'b', body: 'y', badChecksum: true }], { label: 'layer sha256:abc' });
  assert.equal(e.code, 'EINVAL');
  assert.equal(e.reason, 'tar-bad-checksum');
  assert.match(e.message, /layer sha256:abc/);
  assert.match(e.message, /byte offset 1024/);
});

test('applyLayer() rejects a truncated archive with the offset', async (t) => {
  const full = tarOf([{ name: 'a', body: 'x'.repeat(3000) }]);
  const e = await applyError(t, full.subarray(0, 2000));
  assert.equal(e.reason, 'tar-truncated');
  assert.match(e.message, /byte offset 2000/);
  const e2 = await applyError(t, full.subarray(0, 300));
  assert.equal(e2.reason, 'tar-truncated');
});

test('applyLayer() rejects unknown typeflags and sparse entries with clear errors', async (t) => {
  const e = await applyError(t, [{ name: 'weird', type: 'V' }]);
  assert.equal(e.code, 'EINVAL');
  assert.equal(e.reason, 'tar-entry-unsupported-type');
  const s = await applyError(t, [{ name: 'sparse', type: 'S', body: 'x' }]);
  assert.equal(s.code, 'EOPNOTSUPP');
  assert.equal(s.reason, 'tar-sparse-unsupported');
  const p = await applyError(t, [{ name: 'sparse2', body: 'x', pax: { 'GNU.sparse.major': '1' } }]);
  assert.equal(p.reason, 'tar-sparse-unsupported');
});

test('applyLayer() reports hard-link and parent errors from the worker as OverlayError', async (t) => {
  if (!requiresRoot(t)) return;
  const e = await applyError(t, [{ name: 'f', body: 'x' }, { name: 'f/child', body: 'y' }]);
  assert.equal(e.code, 'ENOTDIR');
  assert.equal(e.reason, 'tar-entry-parent-not-dir');
});

test('applyLayer() into a non-empty dir still refuses to write through a pre-existing symlink', async (t) => {
  if (!requiresRoot(t)) return;
  const root = tempDir(t);
  const dest = join(root, 'diff');
  const outside = join(root, 'outside');
  mkdirSync(dest);
  mkdirSync(outside);
  symlinkSync(outside, join(dest, 'link'));
  const tar = join(root, 'l.tar');
  writeFileSync(tar, tarOf([{ name: 'link/pwned', body: 'x' }]));
  await assert.rejects(applyLayer(tar, dest), (e: unknown) => e instanceof OverlayError && e.reason === 'tar-entry-through-symlink');
  assert.deepEqual(readdirSync(outside), []);
});
