/** Layout, modes, get/put reference counting and adoption, remove, status, metadata, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { OverlayError } from '../../src/errors.js';
import { isOverlayMountPoint, readMountinfo } from '../../src/mount/index.js';
import { Overlay2Driver } from '../../src/store/driver.js';
import { fsName, fsMagicSync } from '../../src/sys/statfs.js';
import { mount, umount2, MS_BIND } from '../../src/sys/libc.js';
import { requiresOverlay } from '../helpers/requires.js';
import { modeOf, newDriver } from './fixture.js';
import { tarOf } from '../helpers/tar-builder.js';
import { Collector, readTar } from '../archive/diff-tar-read.js';

const mountsAt = (p: string): number => readMountinfo().filter((m) => m.mountPoint === p).length;

test('layout: Docker\'s dirs, files, modes, link ids, l/ symlinks and lower chain', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home, root } = await newDriver(t);
  const old = process.umask(0o077);
  try {
    await d.create('base', null);
    await d.create('mid', 'base');
    await d.createReadWrite('top', 'mid');
  } finally {
    process.umask(old);
  }
  assert.equal(modeOf(home), 0o710);
  assert.equal(modeOf(join(home, 'l')), 0o700);
  assert.deepEqual(readdirSync(join(home, 'base')).sort(), ['committed', 'diff', 'link']);
  assert.deepEqual(readdirSync(join(home, 'mid')).sort(), ['committed', 'diff', 'link', 'lower', 'work']);
  assert.deepEqual(readdirSync(join(home, 'top')).sort(), ['diff', 'link', 'lower', 'work']);
  const link: Record<string, string> = {};
  for (const id of ['base', 'mid', 'top']) {
    assert.equal(modeOf(join(home, id)), 0o710);
    assert.equal(modeOf(join(home, id, 'diff')), 0o755);
    assert.equal(modeOf(join(home, id, 'link')), 0o644);
    link[id] = readFileSync(join(home, id, 'link'), 'utf8');
    assert.match(link[id] ?? '', /^[A-Z2-7]{26}$/, 'no newline, 26 base32 chars');
    assert.equal(readlinkSync(join(home, 'l', link[id] ?? '')), `../${id}/diff`);
  }
  for (const id of ['mid', 'top']) {
    assert.equal(modeOf(join(home, id, 'work')), 0o700);
    assert.equal(modeOf(join(home, id, 'lower')), 0o644);
  }
  assert.equal(modeOf(join(home, 'base', 'committed')), 0o600);
  assert.equal(lstatSync(join(home, 'base', 'committed')).size, 0);
  assert.equal(readFileSync(join(home, 'mid', 'lower'), 'utf8'), `l/${link['base']}`);
  assert.equal(readFileSync(join(home, 'top', 'lower'), 'utf8'), `l/${link['mid']}:l/${link['base']}`);
  const m = await d.get('top');
  assert.equal(modeOf(m), 0o755, 'the mounted root shows the upper dir');
  // The mount point itself is 0700: look at it through a non-recursive bind of the layer dir.
  const bind = join(root, 'bind');
  mkdirSync(bind);
  mount(join(home, 'top'), bind, null, MS_BIND, null);
  try {
    assert.equal(modeOf(join(bind, 'merged')), 0o700);
  } finally {
    umount2(bind);
  }
  assert.equal(lstatSync(join(home, 'top', 'work', 'work')).uid, process.getuid?.(), 'work/work chowned after the rw mount');
  await d.put('top');
  assert.equal(existsSync(m), false, 'put removes merged');
  const leftovers = readdirSync(home).concat(...['base', 'mid', 'top'].map((id) => readdirSync(join(home, id)))).filter((n) => n.startsWith('.tmp-'));
  assert.deepEqual(leftovers, []);
});

test('get/put: read-write for a leaf, read-only for a committed layer, refcounted, put twice is harmless', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  writeFileSync(join(home, 'base', 'diff', 'a'), 'A');
  assert.equal(await d.get('base'), join(home, 'base', 'diff'), 'a base layer is not mounted');
  await d.put('base');
  await d.createReadWrite('rw', 'base');
  const m = await d.get('rw');
  assert.equal(await d.get('rw'), m);
  assert.equal(mountsAt(m), 1, 'a second get does not mount again');
  assert.equal(d.mountRefs('rw'), 2);
  writeFileSync(join(m, 'b'), 'B');
  assert.equal(readFileSync(join(home, 'rw', 'diff', 'b'), 'utf8'), 'B');
  await d.put('rw');
  assert.equal(isOverlayMountPoint(m), true);
  await d.put('rw');
  assert.equal(isOverlayMountPoint(m), false);
  await d.put('rw');
  await d.put('base');
  await d.put('never-created');
  // Creating a child commits rw: now its mount is read-only.
  await d.create('child', 'rw');
  const ro = await d.get('rw');
  assert.deepEqual(readdirSync(ro).sort(), ['a', 'b']);
  assert.throws(() => writeFileSync(join(ro, 'c'), 'C'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
  await d.put('rw');
  await assert.rejects(d.get('missing'), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
});

test('a live mount from a previous process is adopted as one reference (new driver instance and a real child process)', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: a, home } = await newDriver(t);
  await a.create('base', null);
  await a.createReadWrite('c', 'base');
  const m = await a.get('c');
  const b = await Overlay2Driver.init(home);
  assert.equal(b.mountRefs('c'), 1);
  assert.equal(await b.get('c'), m);
  assert.equal(mountsAt(m), 1);
  await b.put('c');
  assert.equal(isOverlayMountPoint(m), true, 'adopted reference + own reference - 1');
  await b.put('c');
  assert.equal(isOverlayMountPoint(m), false);
  // Another process mounts and exits; this one unmounts with a single put.
  const driverJs = fileURLToPath(new URL('../../src/store/driver.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { Overlay2Driver } from ${JSON.stringify(driverJs)}; const d = await Overlay2Driver.init(${JSON.stringify(home)}); console.log(await d.get('c'));`]);
  assert.equal(r.status, 0, r.stderr.toString());
  assert.equal(r.stdout.toString().trim(), m);
  assert.equal(isOverlayMountPoint(m), true);
  const c = await Overlay2Driver.init(home);
  await c.put('c');
  assert.equal(isOverlayMountPoint(m), false);
  assert.equal(existsSync(m), false);
});

test('remove(): unmounts a mounted layer, removes its dir and l/ link; unknown ids succeed; "" is refused', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.createReadWrite('c', 'base');
  const link = readFileSync(join(home, 'c', 'link'), 'utf8');
  const m = await d.get('c');
  await d.get('c');
  await d.remove('c');
  assert.equal(isOverlayMountPoint(m), false);
  assert.equal(existsSync(join(home, 'c')), false);
  assert.equal(existsSync(join(home, 'l', link)), false);
  assert.equal(existsSync(join(home, 'base', 'committed')), true, 'the parent stays committed');
  await d.remove('never-existed');
  await assert.rejects(d.remove(''), (e: unknown) => e instanceof OverlayError && e.message.endsWith('refusing to remove the directories: id is empty'));
  // An empty link file must not make remove delete home/l.
  await d.create('e', null);
  writeFileSync(join(home, 'e', 'link'), '');
  const logs: string[] = [];
  const d2 = await Overlay2Driver.init(home, { log: (s) => logs.push(s) });
  await d2.remove('e');
  assert.ok(existsSync(join(home, 'l')));
  assert.ok(logs.includes('refusing to remove empty link for layer e'));
});

test('invalid ids are refused before touching the disk', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  for (const id of ['../x', 'a/b', '.', '..', 'l', '.staging-x']) {
    await assert.rejects(d.create(id, null), (e: unknown) => e instanceof OverlayError && e.code === 'EINVAL' && e.reason === 'invalid-layer-id', id);
    assert.equal(await d.exists(id), false);
  }
  assert.deepEqual(readdirSync(home), ['l']);
});

test('create(): missing parent fails with "invalid output path" and leaves nothing; size opts follow Docker', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await assert.rejects(d.create('c', 'nope'), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT' && e.message.includes('invalid output path'));
  assert.deepEqual(readdirSync(home), ['l']);
  assert.deepEqual(readdirSync(join(home, 'l')), [], 'DIFFERS from Docker: no leaked l/ link');
  await assert.rejects(d.create('r', null, { storageOpt: { size: '1G' } }), /--storage-opt size is only supported for ReadWrite Layers/);
  await assert.rejects(d.createReadWrite('w', null, { storageOpt: { size: '1G' } }), /--storage-opt is supported only for overlay over xfs with 'pquota' mount option/);
  await assert.rejects(d.createReadWrite('w', null, { storageOpt: { inodes: '1' } }), /Unknown option inodes/);
  assert.equal(await d.exists('w'), false);
});

test('corrupt link/lower files give clear errors (B36)', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.create('c', 'base');
  writeFileSync(join(home, 'c', 'lower'), '');
  await assert.rejects(d.get('c'), (e: unknown) => e instanceof OverlayError && e.reason === 'corrupt-lower-file');
  writeFileSync(join(home, 'c', 'lower'), 'l/../../etc');
  await assert.rejects(d.get('c'), (e: unknown) => e instanceof OverlayError && e.reason === 'corrupt-lower-file');
  writeFileSync(join(home, 'base', 'link'), '');
  await assert.rejects(d.create('c2', 'base'), (e: unknown) => e instanceof OverlayError && e.reason === 'corrupt-link-file');
  assert.equal(await d.exists('c2'), false);
});

test('status(): Docker\'s five pairs in order', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  const s = await d.status();
  assert.deepEqual(s.map(([k]) => k), ['Backing Filesystem', 'Supports d_type', 'Using metacopy', 'Native Overlay Diff', 'userxattr']);
  assert.equal(s[0]?.[1], fsName(fsMagicSync(home)));
  assert.equal(s[1]?.[1], 'true');
  for (const [, v] of s.slice(1)) assert.ok(v === 'true' || v === 'false');
  assert.equal(s[3]?.[1], String(await d.usesNativeDiff()));
  assert.deepEqual(readdirSync(home), ['l'], 'the native-diff probe cleaned up');
});

test('metadata(): WorkDir/MergedDir/UpperDir always, LowerDir as real paths for children', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.create('mid', 'base');
  await d.createReadWrite('top', 'mid');
  assert.deepEqual(await d.metadata('base'), { WorkDir: join(home, 'base', 'work'), MergedDir: join(home, 'base', 'merged'), UpperDir: join(home, 'base', 'diff') });
  assert.deepEqual(await d.metadata('top'), {
    WorkDir: join(home, 'top', 'work'),
    MergedDir: join(home, 'top', 'merged'),
    UpperDir: join(home, 'top', 'diff'),
    LowerDir: `${join(home, 'mid', 'diff')}:${join(home, 'base', 'diff')}`,
  });
  await assert.rejects(d.metadata('nope'), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
  rmSync(join(home, 'l', readFileSync(join(home, 'base', 'link'), 'utf8')));
  await assert.rejects(d.metadata('top'), (e: unknown) => e instanceof OverlayError && e.reason === 'missing-lower-link');
});

test('cleanup(): unmounts everything under home and keeps the directories', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.createReadWrite('a', 'base');
  await d.createReadWrite('b', 'base');
  await d.get('a');
  await d.get('b');
  await d.cleanup();
  assert.equal(readMountinfo().filter((m) => m.mountPoint.startsWith(`${home}/`)).length, 0);
  assert.ok(existsSync(join(home, 'a', 'diff')));
});

test('init(): bad storage options and overlay2.size on a non-xfs backing fs are refused', async (t) => {
  if (!requiresOverlay(t)) return;
  const { root } = await newDriver(t);
  await assert.rejects(Overlay2Driver.init(join(root, 'x'), { storageOpts: ['overlay2.bogus=1'] }), /overlay2: unknown option overlay2.bogus/);
  await assert.rejects(
    Overlay2Driver.init(join(root, 'y'), { storageOpts: ['overlay2.size=1G'] }),
    (e: unknown) => e instanceof OverlayError && e.reason === 'quota-not-supported' && e.message.endsWith(`Storage Option overlay2.size only supported for backingFS XFS. Found ${fsName(fsMagicSync(root))}`),
  );
  mkdirSync(join(root, 'z'));
});

test('list() and repairLinks(): lost l/ links are re-created, dangling ones removed (B36)', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.create('c', 'base');
  mkdirSync(join(home, '.staging-x-1-abc'));
  assert.deepEqual(await d.list(), ['base', 'c']);
  const baseLink = readFileSync(join(home, 'base', 'link'), 'utf8');
  rmSync(join(home, 'l', baseLink));
  await assert.rejects(d.get('c'), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
  writeFileSync(join(home, 'l', 'AAAAAAAAAAAAAAAAAAAAAAAAAA'), '');
  rmSync(join(home, 'l', 'AAAAAAAAAAAAAAAAAAAAAAAAAA'));
  symlinkSync('../gone/diff', join(home, 'l', 'BBBBBBBBBBBBBBBBBBBBBBBBBB'));
  const r = await d.repairLinks();
  assert.deepEqual(r, { recreated: [baseLink], removed: ['BBBBBBBBBBBBBBBBBBBBBBBBBB'] });
  assert.equal(readlinkSync(join(home, 'l', baseLink)), '../base/diff');
  await d.get('c');
  await d.put('c');
  assert.deepEqual(await d.repairLinks(), { recreated: [], removed: [] });
});

test('B14: absolute symlinks are kept verbatim through applyDiff, native and naive diff, and resolve inside the layer root', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, root } = await newDriver(t);
  const host = join(root, 'host-only'); // an absolute path that exists on the host, not in the layers
  mkdirSync(host);
  writeFileSync(join(host, 'x.so'), 'host file');
  const long = `/${'p'.repeat(120)}/target`;
  const tarFile = join(root, 'base.tar');
  writeFileSync(tarFile, tarOf([
    { name: 'lib', type: 'symlink', linkname: '/usr/lib' },
    { name: 'usr/lib/x.so', body: 'layer file' },
    { name: 'hostlink', type: 'symlink', linkname: host },
    { name: `${host.slice(1)}/x.so`, body: 'inside the root' },
    { name: 'long', type: 'symlink', linkname: long },
  ]));
  await d.createFromTar('base', null, tarFile);
  const baseDiff = join(d.home, 'base', 'diff');
  assert.equal(readlinkSync(join(baseDiff, 'lib')), '/usr/lib');
  assert.equal(readlinkSync(join(baseDiff, 'hostlink')), host);
  assert.equal(readlinkSync(join(baseDiff, 'long')), long);
  await d.create('mid', 'base');
  await d.createReadWrite('top', 'mid');
  // The container adds absolute symlinks and writes through one (userspace engine: resolved in the root).
  const e = await d.getEngine('top');
  assert.equal(await e.readFile('/lib/x.so', 'utf8'), 'layer file');
  assert.equal(await e.readFile('/hostlink/x.so', 'utf8'), 'inside the root');
  await e.symlink('/usr/lib/x.so', '/abs-new');
  await e.writeFile('/hostlink/new', 'written through');
  assert.equal(readFileSync(join(host, 'x.so'), 'utf8'), 'host file');
  assert.deepEqual(readdirSync(host), ['x.so'], 'nothing written on the host');
  assert.equal(readFileSync(join(d.home, 'top', 'diff', host.slice(1), 'new'), 'utf8'), 'written through');
  const linksOf = async (id: string, parent: string | null): Promise<Record<string, string>> => {
    const c = new Collector();
    await d.diff(id, parent, c);
    return Object.fromEntries((await readTar(c.data)).filter((x) => x.type === 'symlink').map((x) => [x.name, x.linkname]));
  };
  assert.deepEqual(await linksOf('top', 'mid'), { 'abs-new': '/usr/lib/x.so' }, 'native diff');
  assert.deepEqual(await linksOf('top', 'base'), { 'abs-new': '/usr/lib/x.so' }, 'naive diff (non-direct parent)');
  assert.deepEqual(await linksOf('base', null), { hostlink: host, lib: '/usr/lib', long }, 'whole-tree diff');
  // Round trip: the native diff applied as a new layer keeps the target.
  const c = new Collector();
  await d.diff('top', 'mid', c);
  const again = join(root, 'again.tar');
  writeFileSync(again, c.data);
  await d.createFromTar('again', null, again);
  assert.equal(readlinkSync(join(d.home, 'again', 'diff', 'abs-new')), '/usr/lib/x.so');
});

test('a missing layer: every operation fails with ENOENT naming it (put is a no-op, as Docker\'s) and creates nothing', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home, root } = await newDriver(t);
  await d.create('base', null);
  const before = readdirSync(home).sort();
  const tar = join(root, 'empty.tar');
  writeFileSync(tar, Buffer.alloc(1024));
  const ops: Array<[string, () => Promise<unknown>]> = [
    ['get', () => d.get('missing')],
    ['metadata', () => d.metadata('missing')],
    ['diff', () => d.diff('missing', null, new PassThrough())],
    ['diff against a parent', () => d.diff('missing', 'base', new PassThrough())],
    ['changes', () => d.changes('missing', null)],
    ['changes against a parent', () => d.changes('missing', 'base')],
    ['diffSize', () => d.diffSize('missing', null)],
    ['diffSize against a parent', () => d.diffSize('missing', 'base')],
    ['applyDiff', () => d.applyDiff('missing', null, tar)],
  ];
  for (const [name, op] of ops) {
    await assert.rejects(op(), (e: unknown) => {
      assert.ok(e instanceof OverlayError, `${name}: ${String(e)}`);
      assert.equal(e.code, 'ENOENT', `${name}: ${e.message}`);
      assert.match(e.message, new RegExp(`${home}/missing`), name);
      return true;
    });
  }
  await d.put('missing');
  assert.equal(await d.exists('missing'), false);
  assert.deepEqual(readdirSync(home).sort(), before, 'nothing was created under home');
});

test('get(): the kernel mount carries Docker\'s data — absolute l/ lowers in `lower` order, upper/work for rw; own diff first and no upper for a committed layer', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  await d.create('mid', 'base');
  await d.createReadWrite('top', 'mid');
  const superOpts = (m: string): string[] => (readMountinfo().filter((x) => x.mountPoint === m).at(-1)?.superOptions ?? '').split(',');
  const lowerOf = (id: string): string[] => readFileSync(join(home, id, 'lower'), 'utf8').split(':').map((l) => join(home, l));
  const rw = await d.get('top');
  try {
    const o = superOpts(rw);
    assert.ok(o.includes(`lowerdir=${lowerOf('top').join(':')}`), o.join(','));
    assert.ok(o.includes(`upperdir=${join(home, 'top', 'diff')}`), o.join(','));
    assert.ok(o.includes(`workdir=${join(home, 'top', 'work')}`), o.join(','));
  } finally {
    await d.put('top');
  }
  const ro = await d.get('mid');
  try {
    const o = superOpts(ro);
    assert.ok(o.includes(`lowerdir=${[join(home, 'mid', 'diff'), ...lowerOf('mid')].join(':')}`), o.join(','));
    assert.ok(!o.some((x) => x.startsWith('upperdir=') || x.startsWith('workdir=')), o.join(','));
    assert.ok(o.includes('ro'), 'a lowers-only overlay is read-only');
  } finally {
    await d.put('mid');
  }
});
