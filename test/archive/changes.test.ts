import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, symlinkSync, linkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { changesDirs, changesSize, directorySize, overlayChanges, statDifferent } from '../../src/archive/changes.js';
import { lsetxattr, lutimesNs, mknod, S_IFCHR, S_IFBLK, timespecFromNs } from '../../src/sys/libc.js';
import { requiresRoot, tempDir } from '../helpers/requires.js';
import { lstatSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const fmt = (cs: Array<{ kind: string; path: string }>): string[] => cs.map((c) => `${c.kind} ${c.path}`);

function tree(root: string, files: Record<string, string | null>): void {
  for (const [p, content] of Object.entries(files)) {
    const abs = join(root, p);
    if (content === null) mkdirSync(abs, { recursive: true });
    else {
      mkdirSync(join(abs, '..'), { recursive: true });
      writeFileSync(abs, content);
    }
  }
}

test('changesDirs() reports A/C/D like Docker: a deleted dir once, a parent C before changed children, sorted', async (t) => {
  const o = tempDir(t);
  const n = tempDir(t);
  tree(o, { 'same/f': 'x', 'gone/a/b': 'x', 'mod/f': 'old', 'f2d': 'f', 'd2f/x': 'x', 'keep': 'k' });
  tree(n, { 'same/f': 'x', 'mod/f': 'new!', 'f2d/c': 'c', 'd2f': 'file', 'keep': 'k', 'new/deep/e': 'e' });
  for (const root of [o, n]) {
    for (const p of ['same', 'same/f', 'mod', 'keep']) lutimesNs(join(root, p), null, timespecFromNs(1_000_000_000_000_000_000n));
  }
  lutimesNs(join(n, 'mod'), null, timespecFromNs(1_000_000_007_000_000_000n)); // dir mtime alone is no change
  assert.deepEqual(fmt(await changesDirs(n, o)), [
    'C /d2f', 'C /f2d', 'A /f2d/c', 'D /gone', 'C /mod', 'C /mod/f', 'A /new', 'A /new/deep', 'A /new/deep/e',
  ]);
  assert.deepEqual(fmt(await changesDirs(n, null)).slice(0, 3), ['A /d2f', 'A /f2d', 'A /f2d/c']);
  assert.deepEqual(await changesDirs(o, o), []);
});

test('statDifferent(): same second with one side at 0 ns is equal; S_IFDIR-bit types ignore size and mtime', async (t) => {
  const d = tempDir(t);
  writeFileSync(join(d, 'a'), 'x');
  writeFileSync(join(d, 'b'), 'x');
  lutimesNs(join(d, 'a'), null, timespecFromNs(1_500_000_000_500_000_000n));
  lutimesNs(join(d, 'b'), null, timespecFromNs(1_500_000_000_000_000_000n));
  const st = (p: string) => lstatSync(join(d, p), { bigint: true });
  assert.equal(statDifferent(st('a'), st('b')), false);
  lutimesNs(join(d, 'b'), null, timespecFromNs(1_500_000_000_400_000_000n));
  assert.equal(statDifferent(st('a'), st('b')), true);
  if (!requiresRoot(t)) return;
  mknod(join(d, 'b1'), S_IFBLK | 0o600, 8, 0);
  mknod(join(d, 'b2'), S_IFBLK | 0o600, 8, 0);
  lutimesNs(join(d, 'b2'), null, timespecFromNs(1_000_000_000n));
  assert.equal(statDifferent(st('b1'), st('b2')), false);
});

test('changesDirs() sees a security.capability change alone', async (t) => {
  if (!requiresRoot(t)) return;
  const o = tempDir(t);
  const n = tempDir(t);
  for (const r of [o, n]) {
    writeFileSync(join(r, 'bin'), 'b');
    lutimesNs(join(r, 'bin'), null, timespecFromNs(1_000_000_000_000_000_000n));
  }
  lsetxattr(join(n, 'bin'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
  assert.deepEqual(fmt(await changesDirs(n, o)), ['C /bin']);
});

test('B04/B06/B07: overlayChanges() — whiteouts are exact-path D once, opaque dirs D their lower children, new opaque dirs are A', async (t) => {
  if (!requiresRoot(t)) return;
  const lower = tempDir(t);
  const upper = tempDir(t);
  tree(lower, {
    test: 't', 'root/test': 't', 'dir/file.txt': 'f', 'dir/sub/x': 'x', foo5: 'hello', 'd/x': 'x',
    'etc/ssl/certs/a.pem': 'pem', 'etc/passwd': 'p',
  });
  for (const p of ['etc', 'etc/ssl']) lutimesNs(join(lower, p), null, timespecFromNs(1_000_000_000_000_000_000n));
  mkdirSync(join(upper, 'etc/ssl'), { recursive: true });
  for (const p of ['test', 'dir', 'foo5', 'd', 'never-existed']) mknod(join(upper, p), S_IFCHR, 0, 0);
  writeFileSync(join(upper, 'etc/ssl/new'), '');
  mkdirSync(join(upper, 'foo'));
  tree(upper, { 'bar/x': '' });
  for (const p of ['foo', 'bar', 'etc/ssl']) lsetxattr(join(upper, p), 'trusted.overlay.opaque', 'y');
  const got = fmt(await overlayChanges(upper, [lower]));
  assert.deepEqual(got, [
    'A /bar', 'A /bar/x', 'D /d', 'D /dir', 'C /etc', 'C /etc/ssl', 'D /etc/ssl/certs', 'A /etc/ssl/new', 'A /foo', 'D /foo5', 'D /test',
  ]);
});

test('overlayChanges() honours whiteouts and opaque dirs inside the lowers themselves', async (t) => {
  if (!requiresRoot(t)) return;
  const l1 = tempDir(t);
  const l2 = tempDir(t);
  const upper = tempDir(t);
  tree(l1, { 'gone/x': 'x', 'opq/old': 'o', 'opq/both': 'b', 'f': 'f', 'shadow/inner': 'i' });
  mknod(join(l2, 'gone'), S_IFCHR, 0, 0); // deleted in l2: an upper whiteout for it deletes nothing
  tree(l2, { 'opq/new': 'n', 'opq/both': 'B' });
  lsetxattr(join(l2, 'opq'), 'trusted.overlay.opaque', 'y');
  writeFileSync(join(l2, 'shadow'), 'now a file'); // hides l1's dir
  mknod(join(upper, 'gone'), S_IFCHR, 0, 0);
  mkdirSync(join(upper, 'opq'));
  lsetxattr(join(upper, 'opq'), 'trusted.overlay.opaque', 'y');
  mkdirSync(join(upper, 'shadow'));
  const got = fmt(await overlayChanges(upper, [l2, l1]));
  // opq's lower view is {new, both} (l1's old is hidden by l2's opacity); shadow was a file.
  assert.deepEqual(got, ['C /opq', 'D /opq/both', 'D /opq/new', 'C /shadow']);
});

test('overlayChanges() refuses a redirect_dir upper', async (t) => {
  if (!requiresRoot(t)) return;
  const upper = tempDir(t);
  mkdirSync(join(upper, 'foo2'));
  lsetxattr(join(upper, 'foo2'), 'trusted.overlay.redirect', '/foo');
  await assert.rejects(overlayChanges(upper, [tempDir(t)]), { code: 'EOPNOTSUPP', reason: 'upper-has-redirect' });
});

test('directorySize() and changesSize() count st_size of non-dirs, each hard-linked inode once', async (t) => {
  const d = tempDir(t);
  tree(d, { 'a/b': '12345', c: '123', empty: '' });
  linkSync(join(d, 'a/b'), join(d, 'a/b2'));
  symlinkSync('0123456789', join(d, 'sym'));
  assert.equal(await directorySize(d), 5 + 3 + 10);
  assert.equal(await changesSize(d, [
    { path: '/a', kind: 'C' }, { path: '/a/b', kind: 'A' }, { path: '/a/b2', kind: 'A' }, { path: '/c', kind: 'D' },
    { path: '/sym', kind: 'C' }, { path: '/missing', kind: 'A' },
  ]), 5 + 10);
  rmSync(join(d, 'a'), { recursive: true });
  assert.equal(await directorySize(d), 13);
  await assert.rejects(directorySize(join(d, 'nope')), { code: 'ENOENT' });
});

const T = 1_600_000_000_000_000_000n;

/** Set mtime (and atime) of `p` without following symlinks. */
function at(p: string, ns: bigint): void {
  lutimesNs(p, timespecFromNs(ns), timespecFromNs(ns));
}

test('B28: changesDirs() sees a same-length symlink retarget and a same-size rewrite hidden by a truncated mtime', async (t) => {
  const o = tempDir(t);
  const n = tempDir(t);
  for (const [root, target, content, ns] of [[o, 'aaa', 'old!', T], [n, 'bbb', 'new!', T + 500_000_000n]] as const) {
    symlinkSync(target, join(root, 'l'));
    at(join(root, 'l'), T);
    writeFileSync(join(root, 'f'), content); // old mtime has 0 ns (as from a tar), new is 0.5 s later
    at(join(root, 'f'), ns);
    writeFileSync(join(root, 'g'), content); // both sides with ns, differing only in ns
    at(join(root, 'g'), root === o ? T + 1n : T + 2n);
    writeFileSync(join(root, 'same'), 'same'); // truncated mtime, same bytes: a copy, not a change
    at(join(root, 'same'), root === o ? T : T + 700_000_000n);
    symlinkSync('t', join(root, 'samelink'));
    at(join(root, 'samelink'), T);
    at(root, T);
  }
  for (const p of ['l', 'f', 'g', 'same']) {
    const a = lstatSync(join(o, p), { bigint: true });
    const b = lstatSync(join(n, p), { bigint: true });
    assert.equal(a.size, b.size, `${p}: same size`);
    assert.equal(a.mtimeNs / 1_000_000_000n, b.mtimeNs / 1_000_000_000n, `${p}: same second`);
  }
  assert.deepEqual(fmt(await changesDirs(n, o)), ['C /f', 'C /g', 'C /l']);
});

test('B28: overlayChanges() sees an upper symlink or file that differs from the lower only in target or bytes', async (t) => {
  if (!requiresRoot(t)) return;
  const lower = tempDir(t);
  const upper = tempDir(t);
  for (const [root, target, content] of [[lower, 'aaa', 'old!'], [upper, 'bbb', 'new!']] as const) {
    symlinkSync(target, join(root, 'l'));
    writeFileSync(join(root, 'f'), content);
    writeFileSync(join(root, 'copied'), 'unchanged'); // copied up (e.g. opened O_RDWR), never written
    symlinkSync('t', join(root, 'samelink'));
    for (const p of ['l', 'f', 'copied', 'samelink']) at(join(root, p), T);
    at(root, T);
  }
  assert.deepEqual(fmt(await overlayChanges(upper, [lower])), ['C /f', 'C /l']);
  // The naive diff of the mounted view sees the symlink too. A file whose size and mtime equal the
  // lower's to the nanosecond is beyond a naive diff that does not read every file (Docker's too):
  // only the upper walk, which knows the file was copied up, compares its bytes.
  const merged = tempDir(t);
  const m = join(merged, 'm');
  const w = join(merged, 'w');
  mkdirSync(m);
  mkdirSync(w);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${w}`, m]);
  assert.equal(r.status, 0, r.stderr.toString());
  try {
    assert.deepEqual(fmt(await changesDirs(m, lower)), ['C /l']);
  } finally {
    spawnSync('umount', [m]);
  }
});

test('B19: overlayChanges() and changesDirs() keep names that are not UTF-8 (pathBytes), sorted by bytes', async (t) => {
  if (!requiresRoot(t)) return;
  const lower = tempDir(t);
  const upper = tempDir(t);
  const raw = (s: string, ...bytes: number[]): Buffer => Buffer.concat([Buffer.from(s), Buffer.from(bytes)]);
  const at_ = (root: string, name: Buffer): Buffer => Buffer.concat([Buffer.from(`${root}/`), name]);
  writeFileSync(at_(lower, raw('gone', 0xfe)), 'g');
  writeFileSync(join(lower, 'z'), 'z');
  mknod(at_(upper, raw('gone', 0xfe)), S_IFCHR, 0, 0);
  mkdirSync(at_(upper, raw('d', 0xff)));
  writeFileSync(at_(upper, Buffer.concat([raw('d', 0xff), Buffer.from('/new\n'), Buffer.from([0x80])])), 'n');
  const got = await overlayChanges(upper, [lower]);
  assert.deepEqual(got.map((c) => [c.kind, (c.pathBytes ?? Buffer.from(c.path)).toString('hex')]), [
    ['A', raw('/d', 0xff).toString('hex')],
    ['A', Buffer.concat([raw('/d', 0xff), Buffer.from('/new\n'), Buffer.from([0x80])]).toString('hex')],
    ['D', raw('/gone', 0xfe).toString('hex')],
  ]);
  assert.ok(got.every((c) => c.pathBytes !== undefined && c.path.includes('\ufffd')), 'text form marks the invalid bytes');
  assert.equal(await changesSize(upper, got), 1);
});
