/** createFromTar atomicity (B37), concurrency (B35), and the crash-leftover sweep. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { OverlayError } from '../../src/errors.js';
import { Overlay2Driver, type ArchiveOps } from '../../src/store/driver.js';
import { requiresOverlay } from '../helpers/requires.js';
import { makeTar, modeOf, newDriver, tarApply } from './fixture.js';

const stagingDirs = (home: string): string[] => readdirSync(home).filter((n) => n.startsWith('.staging-'));

test('createFromTar(): the layer appears complete with Docker\'s layout; the parent is committed', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home, root } = await newDriver(t, { archive: { applyLayer: tarApply } });
  const t1 = makeTar(root, 'l1', { 'etc/hosts': 'h', 'bin/sh': 'sh' });
  const t2 = makeTar(root, 'l2', { 'etc/passwd': 'root' });
  const r1 = await d.createFromTar('L1', null, t1);
  assert.match(r1.diffId, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(readdirSync(join(home, 'L1')).sort(), ['diff', 'link']);
  assert.equal(modeOf(join(home, 'L1')), 0o710);
  assert.equal(modeOf(join(home, 'L1', 'diff')), 0o755);
  await d.createFromTar('L2', 'L1', t2);
  assert.deepEqual(readdirSync(join(home, 'L2')).sort(), ['diff', 'link', 'lower', 'work']);
  assert.ok(existsSync(join(home, 'L1', 'committed')));
  const link = readFileSync(join(home, 'L2', 'link'), 'utf8');
  assert.equal(readlinkSync(join(home, 'l', link)), '../L2/diff');
  assert.equal(readFileSync(join(home, 'L2', 'lower'), 'utf8'), `l/${readFileSync(join(home, 'L1', 'link'), 'utf8')}`);
  const m = await d.get('L2');
  assert.deepEqual(readdirSync(join(m, 'etc')).sort(), ['hosts', 'passwd']);
  await d.put('L2');
  assert.deepEqual(stagingDirs(home), []);
  await assert.rejects(d.createFromTar('L1', null, t1), (e: unknown) => e instanceof OverlayError && e.code === 'EEXIST' && e.reason === 'layer-exists');
  await assert.rejects(d.createFromTar('L3', 'nope', t1), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT');
  assert.deepEqual(readdirSync(home).sort(), ['L1', 'L2', 'l']);
});

test('B37: a failure mid-extraction (ENOSPC after the first file) leaves nothing visible; a retry succeeds', async (t) => {
  if (!requiresOverlay(t)) return;
  let failing = true;
  const applyLayer: ArchiveOps['applyLayer'] = async (tarFile, dest, opts) => {
    if (failing) {
      writeFileSync(join(dest, 'first'), '1');
      throw new OverlayError('ENOSPC', 'write', { path: join(dest, 'second') });
    }
    return tarApply(tarFile, dest, opts);
  };
  const { driver: d, home, root } = await newDriver(t, { archive: { applyLayer } });
  await d.create('base', null);
  const before = readdirSync(join(home, 'l')).sort();
  const tar = makeTar(root, 'three', { first: '1', second: '2', third: '3' });
  await assert.rejects(d.createFromTar('L', 'base', tar), (e: unknown) => e instanceof OverlayError && e.code === 'ENOSPC');
  assert.equal(await d.exists('L'), false);
  assert.deepEqual(readdirSync(home).sort(), ['base', 'l'], 'no staging dir, no layer dir');
  assert.deepEqual(readdirSync(join(home, 'l')).sort(), before, 'no new l/ link');
  failing = false;
  await d.createFromTar('L', 'base', tar);
  assert.deepEqual(readdirSync(join(home, 'L', 'diff')).sort(), ['first', 'second', 'third']);
});

test('B37: stale staging dirs of dead processes are swept at init; a live process\'s staging dir is kept', async (t) => {
  if (!requiresOverlay(t)) return;
  const { home } = await newDriver(t);
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)']).stdout.toString().trim();
  const stale = join(home, `.staging-L-${dead}-abc123`);
  mkdirSync(join(stale, 'diff'), { recursive: true });
  writeFileSync(join(stale, 'diff', 'first'), 'partial');
  const live = join(home, `.staging-M-${process.ppid}-def456`);
  mkdirSync(join(live, 'diff'), { recursive: true });
  await Overlay2Driver.init(home);
  assert.equal(existsSync(stale), false);
  assert.equal(existsSync(live), true);
});

test('B35: concurrent createFromTar of one id and tar share one extraction', async (t) => {
  if (!requiresOverlay(t)) return;
  let calls = 0;
  const applyLayer: ArchiveOps['applyLayer'] = async (tarFile, dest, opts) => {
    calls++;
    await new Promise((r) => setTimeout(r, 20));
    return tarApply(tarFile, dest, opts);
  };
  const { driver: d, home, root } = await newDriver(t, { archive: { applyLayer } });
  const tar = makeTar(root, 'l', { a: 'a' });
  const results = await Promise.all([d.createFromTar('L', null, tar), d.createFromTar('L', null, tar), d.createFromTar('L', null, tar)]);
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r.diffId === results[0]?.diffId));
  assert.deepEqual(readdirSync(home).sort(), ['L', 'l']);
  assert.equal(readdirSync(join(home, 'l')).length, 1);
});

test('B35: concurrent createFromTar of one id with different tars: one wins whole, the other gets EEXIST', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home, root } = await newDriver(t, { archive: { applyLayer: tarApply } });
  const ta = makeTar(root, 'a', { 'who': 'a', 'a-only': 'a' });
  const tb = makeTar(root, 'b', { 'who': 'b', 'b-only': 'b' });
  const rs = await Promise.allSettled([d.createFromTar('L', null, ta), d.createFromTar('L', null, tb)]);
  const ok = rs.filter((r) => r.status === 'fulfilled');
  const bad = rs.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  assert.equal(ok.length, 1);
  assert.equal(bad.length, 1);
  assert.ok(bad[0]?.reason instanceof OverlayError && bad[0].reason.code === 'EEXIST');
  const who = readFileSync(join(home, 'L', 'diff', 'who'), 'utf8');
  assert.deepEqual(readdirSync(join(home, 'L', 'diff')).sort(), ['who', `${who}-only`].sort(), 'no mix of the two tars');
  assert.deepEqual(readdirSync(home).sort(), ['L', 'l']);
  assert.equal(readdirSync(join(home, 'l')).length, 1);
});

test('B35: losing the final rename to another process gives EEXIST and keeps the winner intact', async (t) => {
  if (!requiresOverlay(t)) return;
  let home = '';
  const applyLayer: ArchiveOps['applyLayer'] = async (tarFile, dest, opts) => {
    const r = await tarApply(tarFile, dest, opts);
    // Another process finishes the same layer first.
    mkdirSync(join(home, 'L', 'diff'), { recursive: true });
    writeFileSync(join(home, 'L', 'diff', 'winner'), 'w');
    return r;
  };
  const env = await newDriver(t, { archive: { applyLayer } });
  home = env.home;
  const tar = makeTar(env.root, 'l', { mine: 'm' });
  await assert.rejects(env.driver.createFromTar('L', null, tar), (e: unknown) => e instanceof OverlayError && e.code === 'EEXIST' && e.reason === 'layer-exists');
  assert.deepEqual(readdirSync(join(home, 'L', 'diff')), ['winner']);
  assert.deepEqual(stagingDirs(home), []);
  assert.deepEqual(readdirSync(join(home, 'l')), []);
});

test('createFromTar(): max depth is checked before extracting', async (t) => {
  if (!requiresOverlay(t)) return;
  let calls = 0;
  const { driver: d, home, root } = await newDriver(t, { archive: { applyLayer: async (f, dd, o) => (calls++, tarApply(f, dd, o)) } });
  await d.create('c0', null);
  for (let i = 1; i <= 128; i++) await d.create(`c${i}`, `c${i - 1}`);
  await assert.rejects(d.createFromTar('deep', 'c128', makeTar(root, 'x', { x: 'x' })), /max depth exceeded/);
  assert.equal(calls, 0);
  assert.deepEqual(stagingDirs(home), []);
});

test('B37: a failure after the rename (l/ link cannot be created) removes the renamed layer too', async (t) => {
  if (!requiresOverlay(t)) return;
  let home = '';
  const applyLayer: ArchiveOps['applyLayer'] = async (tarFile, dest, opts) => {
    const r = await tarApply(tarFile, dest, opts);
    // Occupy the link name this layer is about to use, so symlink() fails with EEXIST.
    const link = readFileSync(join(dest, '..', 'link'), 'utf8');
    writeFileSync(join(home, 'l', link), 'squatter');
    return r;
  };
  const env = await newDriver(t, { archive: { applyLayer } });
  home = env.home;
  await assert.rejects(env.driver.createFromTar('L', null, makeTar(env.root, 'l', { a: 'a' })), (e: unknown) => e instanceof OverlayError && e.code === 'EEXIST');
  assert.equal(await env.driver.exists('L'), false);
  assert.deepEqual(readdirSync(home).sort(), ['l']);
  assert.equal(readdirSync(join(home, 'l')).length, 1, 'only the squatter, which is not ours to delete');
});
