/** OverlayEngine behaviour beyond the differential suite: things the kernel cannot be the oracle for. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, lstatSync, writeFileSync } from 'node:fs';
import { requiresCommand, requiresRoot, tempDir } from '../helpers/requires.js';
import { makeLoopFs } from '../probe/loopfs.js';
import { OverlayEngine } from '../../src/engine/index.js';
import { OverlayError } from '../../src/errors.js';
import { lgetxattr, mknod, readdirTypes, S_IFCHR } from '../../src/sys/libc.js';
import { buildLayer, snapshotDir, type LayerEntry } from './harness.js';

function setup(t: Parameters<typeof tempDir>[0], lowers: LayerEntry[][], opts: { userxattr?: boolean; upper?: boolean; metacopy?: boolean } = {}): { e: OverlayEngine; dirs: { lowers: string[]; upper: string; work: string } } {
  const base = tempDir(t);
  const ls = lowers.map((entries, i) => {
    const d = join(base, `l${i}`);
    buildLayer(d, entries);
    return d;
  });
  const upper = join(base, 'u');
  const work = join(base, 'w');
  mkdirSync(upper);
  mkdirSync(work);
  const e = new OverlayEngine(opts.upper === false ? { lowers: ls } : { lowers: ls, upper, work, userxattr: opts.userxattr === true, metacopy: opts.metacopy === true });
  return { e, dirs: { lowers: ls, upper, work } };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof OverlayError, `not an OverlayError: ${String(e)}`);
    return e.code;
  }
}

test('a read-only handle opened before a copy-up sees the new data afterwards', async (t) => {
  if (!requiresRoot(t)) return;
  const { e } = setup(t, [[{ t: 'file', p: 'f', data: 'old data' }]]);
  const ro = await e.open('/f', 'r');
  const rw = await e.open('/f', 'r+');
  await rw.write('NEW');
  await rw.close();
  const buf = Buffer.alloc(8);
  const { bytesRead } = await ro.read(buf, 0, 8, 0);
  assert.equal(buf.subarray(0, bytesRead).toString(), 'NEW data');
  assert.equal((await ro.stat()).ino, (await e.stat('/f')).ino);
  await ro.close();
});

test('a copy-up through another engine on the same dirs re-points open read handles; another upper does not', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'f', data: 'old data' }]]);
  // A second engine on the same dirs (spelled differently), and a third on another upper.
  const e2 = new OverlayEngine({ lowers: dirs.lowers, upper: `${dirs.upper}/`, work: dirs.work });
  const otherUpper = join(dirs.upper, '..', 'u2');
  mkdirSync(otherUpper);
  mkdirSync(join(dirs.upper, '..', 'w2'));
  const other = new OverlayEngine({ lowers: dirs.lowers, upper: otherUpper, work: join(dirs.upper, '..', 'w2') });
  const ro = await e.open('/f', 'r');
  const roOther = await other.open('/f', 'r');
  await e2.writeFile('/f', 'NEW from e2');
  const buf = Buffer.alloc(32);
  const { bytesRead } = await ro.read(buf, 0, 32, 0);
  assert.equal(buf.subarray(0, bytesRead).toString(), 'NEW from e2');
  assert.equal((await ro.stat()).ino, (await e.stat('/f')).ino);
  const r2 = await roOther.read(buf, 0, 32, 0);
  assert.equal(buf.subarray(0, r2.bytesRead).toString(), 'old data');
  await ro.close();
  await roOther.close();
});

test('copy-up never changes the lower layer (B40)', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'f', data: 'abc' }, { t: 'file', p: 'ro', data: 'r', mode: 0o444 }, { t: 'file', p: 'd/x', data: 'x' }]]);
  const before = snapshotDir(dirs.lowers[0]!);
  await e.writeFile('/f', '0123456789');
  await e.chmod('/f', 0o600);
  await e.chmod('/ro', 0o644);
  await e.setxattr('/ro', 'user.x', '1');
  await e.unlink('/d/x');
  await e.rmdir('/d');
  assert.deepEqual(snapshotDir(dirs.lowers[0]!), before);
  assert.equal(readFileSync(join(dirs.upper, 'f'), 'utf8'), '0123456789');
  assert.equal((await e.stat('/f')).mode & 0o7777, 0o600);
  assert.equal((await e.getxattr('/ro', 'user.x')).toString(), '1');
});

test('absolute symlinks resolve against the merged root, never the host', async (t) => {
  if (!requiresRoot(t)) return;
  const { e } = setup(t, [[{ t: 'file', p: 'etc/passwd', data: 'inside' }, { t: 'symlink', p: 'abs', target: '/etc/passwd' }, { t: 'symlink', p: 'up', target: '../../../../etc/passwd' }]]);
  assert.equal(await e.readFile('/abs', 'utf8'), 'inside');
  assert.equal(await e.readFile('/up', 'utf8'), 'inside');
  assert.equal(await e.realpath('/abs'), '/etc/passwd');
  await e.writeFile('/abs', 'changed');
  assert.equal(await e.readFile('/etc/passwd', 'utf8'), 'changed');
  assert.notEqual(readFileSync('/etc/passwd', 'utf8'), 'changed');
});

test('symlink loops fail with ELOOP after 40 links', async (t) => {
  if (!requiresRoot(t)) return;
  const chain: LayerEntry[] = [{ t: 'symlink', p: 'self', target: 'self' }];
  for (let i = 0; i < 41; i++) chain.push({ t: 'symlink', p: `c${i}`, target: `c${i + 1}` });
  chain.push({ t: 'file', p: 'c41', data: 'end' });
  for (let i = 0; i < 40; i++) chain.push({ t: 'symlink', p: `k${i}`, target: `k${i + 1}` });
  chain.push({ t: 'file', p: 'k40', data: 'end' });
  const { e } = setup(t, [chain]);
  assert.equal(await code(e.stat('/self')), 'ELOOP');
  assert.equal(await code(e.readFile('/c0')), 'ELOOP');
  assert.equal(await e.readFile('/k0', 'utf8'), 'end');
  assert.equal((await e.lstat('/self')).isSymbolicLink(), true);
});

test('without an upper every write fails with EROFS and reads still work', async (t) => {
  if (!requiresRoot(t)) return;
  const { e } = setup(t, [[{ t: 'file', p: 'f', data: 'x' }], [{ t: 'dir', p: 'd' }]], { upper: false });
  assert.equal(await e.readFile('/f', 'utf8'), 'x');
  assert.deepEqual((await e.readdir('/')).sort(), ['d', 'f']);
  for (const p of [e.writeFile('/f', 'y'), e.writeFile('/new', 'y'), e.unlink('/f'), e.rmdir('/d'), e.chmod('/f', 0o600), e.rename('/f', '/g'), e.mkdir('/n'), e.truncate('/f', 0), e.setxattr('/f', 'user.a', 'b'), e.access('/f', 2)]) {
    assert.equal(await code(p), 'EROFS');
  }
  assert.equal(await code(e.mkdir('/d')), 'EEXIST');
  assert.equal(await code(e.unlink('/missing')), 'EROFS');
  assert.equal(await code(e.unlink('/nope/missing')), 'ENOENT');
});

test('userxattr writes user.overlay.* and hides them', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'd/x', data: 'x' }, { t: 'file', p: 'f', data: 'f' }]], { userxattr: true });
  await e.unlink('/d/x');
  await e.rmdir('/d');
  await e.mkdir('/d');
  await e.chmod('/f', 0o600);
  assert.equal(lgetxattr(join(dirs.upper, 'd'), 'user.overlay.opaque')?.toString(), 'y');
  assert.equal(lgetxattr(join(dirs.upper, 'd'), 'trusted.overlay.opaque'), null);
  assert.equal(lgetxattr(dirs.upper, 'user.overlay.impure')?.toString(), 'y');
  assert.deepEqual(await e.listxattr('/'), []);
  // The kernel (6.7+) escapes a caller's private name: this reads user.overlay.overlay.opaque.
  assert.equal(await code(e.getxattr('/d', 'user.overlay.opaque')), 'ENODATA');
  assert.deepEqual(await e.readdir('/d'), []);
});

test('readdir withFileTypes, statfs, access and the OverlayError shape', async (t) => {
  if (!requiresRoot(t)) return;
  const { e } = setup(t, [[{ t: 'file', p: 'f', data: 'x' }, { t: 'dir', p: 'd' }, { t: 'symlink', p: 'l', target: 'f' }, { t: 'fifo', p: 'p' }]]);
  const ents = await e.readdir('/', { withFileTypes: true });
  const kinds = Object.fromEntries(ents.map((d) => [d.name, d.isFile() ? 'f' : d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : d.isFIFO() ? 'p' : '?']));
  assert.deepEqual(kinds, { f: 'f', d: 'd', l: 'l', p: 'p' });
  assert.equal((await e.statfs('/')).type, 0x794c7630);
  await e.access('/f', 4);
  try {
    await e.readFile('/nope/x');
    assert.fail('no error');
  } catch (err) {
    assert.ok(err instanceof OverlayError);
    assert.equal(err.code, 'ENOENT');
    assert.equal(err.path, '/nope/x');
  }
  const st = await e.lstat('/f');
  assert.equal(typeof st.mtimeNs, 'bigint');
  assert.equal(st.size, 1n);
});

test('copy-up goes through the work dir and leaves it empty', async (t) => {
  if (!requiresRoot(t)) return;
  const big = 'z'.repeat(1 << 20);
  const base = tempDir(t);
  buildLayer(join(base, 'l'), [{ t: 'file', p: 'big', data: big }]);
  mkdirSync(join(base, 'u'));
  mkdirSync(join(base, 'w'));
  const e = new OverlayEngine({ lowers: [join(base, 'l')], upper: join(base, 'u'), work: join(base, 'w') });
  await e.appendFile('/big', '!');
  assert.equal(lstatSync(join(base, 'u', 'big')).size, (1 << 20) + 1);
  assert.deepEqual(snapshotDir(join(base, 'w', 'work')).size, 1);
  writeFileSync(join(base, 'u', 'offline'), 'edited while unmounted');
  assert.equal(await e.readFile('/offline', 'utf8'), 'edited while unmounted');
});

test('rm -r of a lower tree leaves one whiteout; mkdir -p and exists', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'dir/file.txt', data: 'a' }, { t: 'file', p: 'dir/sub/x', data: 'x' }, { t: 'file', p: 'keep', data: 'k' }]]);
  await e.rm('/dir', { recursive: true });
  for (const p of ['/dir', '/dir/file.txt', '/dir/sub/x']) assert.equal(await code(e.stat(p)), 'ENOENT');
  assert.deepEqual(await e.readdir('/'), ['keep']);
  const upper = snapshotDir(dirs.upper);
  assert.deepEqual([...upper.keys()].sort(), ['/', '/dir']);
  assert.equal(upper.get('/dir'), 'whiteout');
  assert.equal(await code(e.rm('/dir')), 'ENOENT');
  await e.rm('/dir', { force: true });
  assert.equal(await code(e.rm('/keep/')), 'ENOTDIR');
  await e.mkdir('/dir/a/b', { recursive: true });
  assert.equal(await e.exists('/dir/a/b'), true);
  assert.equal(await e.exists('/dir/sub'), false);
  assert.equal(lgetxattr(join(dirs.upper, 'dir'), 'trusted.overlay.opaque')?.toString(), 'y');
});

test('metacopy: a read handle follows the metadata copy-up and then the data copy-up', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'f', data: 'lower data' }]], { metacopy: true });
  const before = await e.open('/f', 'r');
  await e.chmod('/f', 0o600);
  assert.equal(lgetxattr(join(dirs.upper, 'f'), 'trusted.overlay.metacopy')?.length, 0);
  assert.deepEqual(readFileSync(join(dirs.upper, 'f')), Buffer.alloc(10)); // size only, no data yet
  const during = await e.open('/f', 'r');
  assert.equal((await during.stat()).mode & 0o7777, 0o600);
  assert.equal((await during.readFile()).toString(), 'lower data');
  const w = await e.open('/f', 'r+');
  await w.write('UPPER');
  await w.close();
  assert.equal(lgetxattr(join(dirs.upper, 'f'), 'trusted.overlay.metacopy'), null);
  for (const h of [before, during]) {
    const b = Buffer.alloc(10);
    await h.read(b, 0, 10, 0);
    assert.equal(b.toString(), 'UPPER data');
    await h.close();
  }
  assert.equal(readFileSync(join(dirs.lowers[0]!, 'f'), 'utf8'), 'lower data');
});

test('an xattr name outside the four namespaces fails before any copy-up, naming the merged path', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'dir', p: 'etc' }, { t: 'file', p: 'etc/f', data: 'x' }]]);
  await assert.rejects(e.setxattr('/etc/f', 'bogus', 'v'), (err: unknown) => err instanceof OverlayError && err.code === 'EOPNOTSUPP' && err.path === '/etc/f');
  assert.deepEqual([...snapshotDir(dirs.upper).keys()].filter((p) => p !== '/'), [], 'nothing was copied up');
});

test('a syscall failing on a layer file reports the merged path, not the host path', async (t) => {
  if (!requiresRoot(t)) return;
  const { e, dirs } = setup(t, [[{ t: 'file', p: 'f', data: 'x' }]]);
  // A value larger than any filesystem takes makes the lsetxattr on the copied-up file fail.
  const err = await e.setxattr('/f', 'user.big', Buffer.alloc(1 << 17)).then(() => null, (x: unknown) => x);
  assert.ok(err instanceof OverlayError, `expected an OverlayError, got ${String(err)}`);
  assert.equal(err.path, '/f');
  assert.ok(!err.message.includes(dirs.upper), err.message);
});

test('B14: absolute symlinks are kept verbatim and every path through them stays in the container root', async (t) => {
  if (!requiresRoot(t)) return;
  const hostDir = tempDir(t); // exists on the host at this absolute path; the layers have their own copy
  writeFileSync(join(hostDir, 'f'), 'host');
  const { e, dirs } = setup(t, [[
    { t: 'file', p: 'usr/lib/x.so', data: 'so' },
    { t: 'symlink', p: 'lib', target: '/usr/lib' },
    { t: 'symlink', p: 'lib64', target: '/lib' },
    { t: 'symlink', p: 'escape', target: '/../../../usr/lib' },
    { t: 'symlink', p: 'host', target: hostDir },
    { t: 'file', p: `${hostDir.slice(1)}/f`, data: 'container' },
  ]]);
  assert.equal(await e.readlink('/lib'), '/usr/lib');
  assert.equal(await e.readFile('/lib64/x.so', 'utf8'), 'so');
  assert.equal(await e.readFile('/escape/x.so', 'utf8'), 'so', '.. above the root stays at the root');
  assert.equal(await e.readFile('/host/f', 'utf8'), 'container');
  assert.equal(await e.realpath('/lib64/x.so'), '/usr/lib/x.so');
  // Writes, mkdir, link and rename through absolute links land in the upper at the resolved path.
  await e.writeFile('/lib64/new.so', 'n');
  await e.mkdir('/host/sub');
  await e.writeFile('/host/sub/g', 'g');
  await e.link('/lib/x.so', '/host/x-link');
  await e.rename('/host/f', '/lib/f-moved');
  await e.symlink('/usr/lib/x.so', '/lib/abs-new');
  assert.equal(readFileSync(join(dirs.upper, 'usr/lib/new.so'), 'utf8'), 'n');
  assert.equal(readFileSync(join(dirs.upper, hostDir.slice(1), 'sub/g'), 'utf8'), 'g');
  assert.equal(lstatSync(join(dirs.upper, hostDir.slice(1), 'x-link')).ino, lstatSync(join(dirs.upper, 'usr/lib/x.so')).ino);
  assert.equal(readFileSync(join(dirs.upper, 'usr/lib/f-moved'), 'utf8'), 'container');
  assert.equal(readlinkSync(join(dirs.upper, 'usr/lib/abs-new')), '/usr/lib/x.so', 'stored verbatim');
  assert.equal(await e.readFile('/lib/abs-new', 'utf8'), 'so');
  assert.equal(readFileSync(join(hostDir, 'f'), 'utf8'), 'host');
  assert.deepEqual(readdirSync(hostDir), ['f'], 'the host dir is untouched');
});

test('on a filesystem without d_type the engine stats entries and never lists a whiteout (B33)', async (t) => {
  if (!requiresRoot(t) || !requiresCommand(t, 'mkfs.ext4')) return;
  const fs = makeLoopFs(tempDir(t), 'nodtype', ['mkfs.ext4', '-q', '-F', '-O', '^filetype'], 64);
  assert.ok(typeof fs === 'object', String(fs));
  t.after(() => fs.close());
  const lower = join(fs.mnt, 'l');
  const upper = join(fs.mnt, 'u');
  mkdirSync(join(lower, 'd'), { recursive: true });
  mkdirSync(join(upper, 'd'), { recursive: true });
  mkdirSync(join(fs.mnt, 'w'));
  for (const dir of [lower, join(lower, 'd')]) writeFileSync(join(dir, 'a'), 'lower a');
  for (const dir of [upper, join(upper, 'd')]) {
    mknod(join(dir, 'a'), S_IFCHR, 0, 0);
    writeFileSync(join(dir, 'b'), 'upper b');
  }
  assert.ok(readdirTypes(upper).every((e) => e.type === 0), 'the premise: readdir gives DT_UNKNOWN here');
  const e = new OverlayEngine({ lowers: [lower], upper, work: join(fs.mnt, 'w') });
  assert.deepEqual((await e.readdir('/')).sort(), ['b', 'd']);
  assert.deepEqual(await e.readdir('/d'), ['b']);
  const kinds = (await e.readdir('/', { withFileTypes: true })).map((d) => `${d.name}:${d.isFile() ? 'f' : d.isDirectory() ? 'd' : '?'}`).sort();
  assert.deepEqual(kinds, ['b:f', 'd:d']);
  assert.equal(await code(e.stat('/a')), 'ENOENT');
  await e.rm('/d', { recursive: true });
  assert.deepEqual(await e.readdir('/'), ['b']);
});
