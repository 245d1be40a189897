/**
 * Ports of moby's graphtest cases (CreateEmpty, CreateBase, CreateSnap, DeepLayerRead(128),
 * DiffApply(10)) and the driver's depth limit, against real kernel overlay mounts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, existsSync, lchownSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { OverlayError } from '../../src/errors.js';
import { isOverlayMountPoint } from '../../src/mount/index.js';
import type { Overlay2Driver } from '../../src/store/driver.js';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { newDriver } from './fixture.js';

const S_ISVTX = 0o1000;
const S_ISUID = 0o4000;

async function createBase(d: Overlay2Driver, name: string): Promise<void> {
  const old = process.umask(0);
  try {
    await d.createReadWrite(name, null);
    const root = await d.get(name);
    const sub = join(root, 'a subdir');
    mkdirSync(sub, { mode: 0o705 | S_ISVTX });
    chmodSync(sub, 0o705 | S_ISVTX);
    lchownSync(sub, 1, 2);
    const f = join(root, 'a file');
    writeFileSync(f, 'Some data', { mode: 0o222 | S_ISUID });
    chmodSync(f, 0o222 | S_ISUID);
    await d.put(name);
  } finally {
    process.umask(old);
  }
}

async function verifyBase(d: Overlay2Driver, name: string): Promise<void> {
  const root = await d.get(name);
  try {
    const sub = lstatSync(join(root, 'a subdir'));
    assert.ok(sub.isDirectory());
    assert.equal(sub.mode & 0o7777, 0o705 | S_ISVTX);
    assert.equal(sub.uid, 1);
    assert.equal(sub.gid, 2);
    const f = lstatSync(join(root, 'a file'));
    assert.ok(f.isFile());
    assert.equal(f.mode & 0o7777, 0o222 | S_ISUID);
    assert.equal(f.uid, 0);
    assert.equal(f.gid, 0);
    assert.equal(readFileSync(join(root, 'a file'), 'utf8'), 'Some data');
    assert.deepEqual(readdirSync(root).filter((n) => n !== 'lost+found').sort(), ['a file', 'a subdir']);
  } finally {
    await d.put(name);
  }
}

test('CreateEmpty: an empty layer exists, is an empty 0755 root-owned dir, and is removed', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d } = await newDriver(t);
  await d.create('empty', null);
  assert.equal(await d.exists('empty'), true);
  const dir = await d.get('empty');
  const st = statSync(dir);
  assert.ok(st.isDirectory());
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, 0);
  assert.deepEqual(readdirSync(dir), []);
  await d.put('empty');
  await d.remove('empty');
  assert.equal(await d.exists('empty'), false);
});

test('CreateBase: sticky dir owned 1:2 and setuid file survive a get/put cycle', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d } = await newDriver(t);
  await createBase(d, 'Base');
  await verifyBase(d, 'Base');
  await d.remove('Base');
  assert.equal(await d.exists('Base'), false);
});

test('CreateSnap: the parent\'s content, modes and owners show through a child mount', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await createBase(d, 'Base');
  await d.create('Snap', 'Base');
  await verifyBase(d, 'Snap');
  assert.equal(isOverlayMountPoint(join(home, 'Snap', 'merged')), false, 'put unmounted the snapshot');
  await d.remove('Snap');
  await d.remove('Base');
  assert.deepEqual(readdirSync(home).sort(), ['l']);
  assert.deepEqual(readdirSync(join(home, 'l')), []);
});

async function addLayerFiles(d: Overlay2Driver, layer: string, parent: string, i: number): Promise<void> {
  const root = await d.get(layer);
  try {
    writeFileSync(join(root, 'top-id'), layer);
    mkdirSync(join(root, `layer-${i}`), { recursive: true });
    writeFileSync(join(root, `layer-${i}`, 'layer-id'), layer);
    writeFileSync(join(root, `layer-${i}`, 'parent-id'), parent);
  } finally {
    await d.put(layer);
  }
}

test('DeepLayerRead(128): 128 stacked layers mount (data over a page) and read; the 129th is "max depth exceeded"', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  const baseRoot = await d.get('base');
  writeFileSync(join(baseRoot, 'testfile.txt'), 'test content');
  await d.put('base');
  let last = 'base';
  for (let i = 1; i <= 128; i++) {
    const id = randomBytes(32).toString('hex');
    await d.create(id, last);
    await addLayerFiles(d, id, last, i);
    last = id;
  }
  const lower = readFileSync(join(home, last, 'lower'), 'utf8').split(':');
  assert.equal(lower.length, 128);
  const root = await d.get(last);
  try {
    assert.equal(d.lastMountMethod, 'fsmount', 'absolute data for 128 lowers is over a page');
    assert.equal(readFileSync(join(root, 'top-id'), 'utf8'), last);
    let cur = last;
    for (let i = 128; i >= 1; i--) {
      assert.equal(readFileSync(join(root, `layer-${i}`, 'layer-id'), 'utf8'), cur);
      cur = readFileSync(join(root, `layer-${i}`, 'parent-id'), 'utf8');
    }
    assert.equal(cur, 'base');
    assert.equal(readFileSync(join(root, 'testfile.txt'), 'utf8'), 'test content');
  } finally {
    await d.put(last);
  }
  await assert.rejects(d.create('too-deep', last), (e: unknown) => {
    assert.ok(e instanceof OverlayError);
    assert.equal(e.reason, 'chain-too-deep');
    assert.match(e.message, /: max depth exceeded$/);
    return true;
  });
  assert.equal(await d.exists('too-deep'), false, 'the failed create left nothing');
  assert.equal(readdirSync(join(home, 'l')).length, 129, 'and no l/ link');
});

test('B32: a 130-chain under a ~200-char data root; layer 120 mounts with its 120 lowers', async (t) => {
  if (!requiresOverlay(t)) return;
  const base = tempDir(t);
  const longRoot = join(base, 'r'.repeat(200 - base.length - 1));
  const { driver: d, home } = await newDriver(t, {}, join(longRoot, 'overlay2'));
  assert.ok(longRoot.length >= 195);
  await d.create('c0', null);
  writeFileSync(join(home, 'c0', 'diff', 'f0'), '0');
  let created = 1;
  for (let i = 1; i < 130; i++) {
    try {
      await d.create(`c${i}`, `c${i - 1}`);
      writeFileSync(join(home, `c${i}`, 'diff', `f${i}`), String(i));
      created++;
    } catch (e) {
      assert.ok(e instanceof OverlayError && e.reason === 'chain-too-deep', String(e));
      assert.equal(i, 129, 'only the 130th layer (129 lowers) is refused');
    }
  }
  assert.equal(created, 129);
  // c120 has a child, so it is committed: read-only mount of its diff + 120 lowers.
  const m = await d.get('c120');
  try {
    assert.equal(readdirSync(m).length, 121);
    assert.equal(readFileSync(join(m, 'f0'), 'utf8'), '0');
    assert.throws(() => writeFileSync(join(m, 'x'), 'x'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    const opts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.includes(`${home}/c120/merged`)) ?? '';
    assert.ok(!opts.includes('upperdir='), 'a committed layer has no upperdir');
  } finally {
    await d.put('c120');
  }
});

test('paths too long for fsconfig (≥ 256 bytes) fall back to Docker\'s relative-path mount from home', async (t) => {
  if (!requiresOverlay(t)) return;
  const base = tempDir(t);
  const home = join(base, 'h'.repeat(235 - base.length), 'overlay2');
  const { driver: d } = await newDriver(t, {}, home);
  assert.ok(join(home, 'l', 'X'.repeat(26)).length >= 256);
  await d.create('c0', null);
  writeFileSync(join(home, 'c0', 'diff', 'f0'), '0');
  for (let i = 1; i <= 16; i++) await d.create(`c${i}`, `c${i - 1}`);
  await d.createReadWrite('top', 'c16');
  const cwd = process.cwd();
  const m = await d.get('top');
  try {
    assert.equal(d.lastMountMethod, 'mount-relative');
    assert.equal(process.cwd(), cwd);
    assert.equal(readFileSync(join(m, 'f0'), 'utf8'), '0');
    writeFileSync(join(m, 'new'), 'x');
    assert.equal(readFileSync(join(home, 'top', 'diff', 'new'), 'utf8'), 'x');
  } finally {
    await d.put('top');
  }
});

/** graphtest's randomContent: `size` deterministic bytes for `seed` (any fixed generator will do). */
function content(size: number, seed: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < size; i++) out.push(createHash('sha256').update(`${seed}:${i}`).digest());
  return Buffer.concat(out).subarray(0, size);
}

/** graphtest's addManyFiles: `directory-<i>` per 100 files, `file-<n>` of 64 bytes, mode 0755. */
async function addManyFiles(d: Overlay2Driver, layer: string, count: number, seed: number): Promise<void> {
  const root = await d.get(layer);
  try {
    for (let i = 0; i < count; i += 100) {
      const dir = join(root, `directory-${i}`);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      for (let j = 0; i + j < count && j < 100; j++) writeFileSync(join(dir, `file-${i + j}`), content(64, seed + i + j), { mode: 0o755 });
    }
  } finally {
    await d.put(layer);
  }
}

async function checkManyFiles(d: Overlay2Driver, layer: string, count: number, seed: number): Promise<void> {
  const root = await d.get(layer);
  try {
    for (let i = 0; i < count; i += 100) {
      for (let j = 0; i + j < count && j < 100; j++) {
        assert.ok(readFileSync(join(root, `directory-${i}`, `file-${i + j}`)).equals(content(64, seed + i + j)), `${layer}: file-${i + j} has seed ${seed}`);
      }
    }
  } finally {
    await d.put(layer);
  }
}

test('DiffApply(10): Diff(upper, base) applied onto a sibling of upper returns DiffSize(upper, "") and reproduces the upper\'s files and deletions', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, root: tmp } = await newDriver(t);
  assert.equal(await d.usesNativeDiff(), true, 'graphtest skips this with naive diff; this kernel runs native');
  const deleteFile = 'file-remove.txt';
  const deleteContent = 'This file should get removed in upper!';
  const base = randomBytes(32).toString('hex');
  const upper = randomBytes(32).toString('hex');
  const diff = randomBytes(32).toString('hex');
  await d.create(base, null);
  await addManyFiles(d, base, 10, 3);
  let root = await d.get(base);
  writeFileSync(join(root, deleteFile), deleteContent, { mode: 0o755 });
  mkdirSync(join(root, 'var/lib'), { recursive: true, mode: 0o755 });
  await d.put(base);

  await d.create(upper, base);
  await addManyFiles(d, upper, 10, 6);
  root = await d.get(upper);
  rmSync(join(root, deleteFile), { recursive: true });
  rmSync(join(root, 'var/lib'), { recursive: true });
  await d.put(upper);

  const diffSize = await d.diffSize(upper, null);
  assert.equal(diffSize, 10 * 64, 'naive size: the files of the flattened upper, whiteouts and dirs count 0');

  await d.create(diff, base);
  await checkManyFiles(d, diff, 10, 3);
  root = await d.get(diff);
  assert.equal(readFileSync(join(root, deleteFile), 'utf8'), deleteContent);
  await d.put(diff);

  const tarFile = join(tmp, 'upper.tar');
  const out = createWriteStream(tarFile);
  const closed = new Promise<void>((res, rej) => { out.on('close', res); out.on('error', rej); });
  await d.diff(upper, base, out);
  out.end();
  await closed;
  const applied = await d.applyDiff(diff, base, tarFile);
  assert.equal(applied.size, diffSize, 'ApplyDiff returns the size DiffSize reported');

  await checkManyFiles(d, diff, 10, 6);
  root = await d.get(diff);
  try {
    assert.equal(existsSync(join(root, deleteFile)), false);
    assert.equal(existsSync(join(root, 'var/lib')), false);
    assert.ok(existsSync(join(root, 'var')));
  } finally {
    await d.put(diff);
  }
});
