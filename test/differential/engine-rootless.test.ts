/**
 * Unprivileged use (the engine's reason to exist): the same ops run as uid 1000 in a child
 * process, once on a kernel overlay mounted by root with `userxattr`, once through an engine the
 * user owns (upper/work owned by uid 1000, `userxattr`). Outcomes/errnos, merged views and uppers
 * must match, including refused writes (EACCES/EPERM with no copy-up left behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { OverlayEngine } from '../../src/engine/index.js';
import {
  buildLayer, comparable, diffSnapshots, snapshotDir, snapshotEngine, snapshotMount, type LayerEntry, type Op,
} from '../engine/harness.js';

const USER = 1000;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'engine', 'ops-child.js');

function chownTree(p: string, uid: number): void {
  lchownSync(p, uid, uid);
  if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) chownTree(join(p, n), uid);
}

function prepare(base: string, lowers: LayerEntry[][], rootOwned: string[]): { lowers: string[]; upper: string; work: string } {
  mkdirSync(base, { recursive: true });
  chmodSync(base, 0o755);
  const ls = lowers.map((entries, i) => {
    const d = join(base, `l${i}`);
    buildLayer(d, entries, 'user.overlay.');
    chownTree(d, USER);
    for (const r of rootOwned) {
      try {
        lchownSync(join(d, r), 0, 0);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT') throw e;
      }
    }
    return d;
  });
  const upper = join(base, 'u');
  const work = join(base, 'w');
  mkdirSync(upper);
  mkdirSync(work);
  lchownSync(upper, USER, USER);
  lchownSync(work, USER, USER);
  return { lowers: ls, upper, work };
}

function runChild(jobFile: string, job: object): string[] {
  writeFileSync(jobFile, JSON.stringify(job));
  const r = spawnSync(process.execPath, [CHILD, jobFile], { uid: USER, gid: USER, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

const lowers: LayerEntry[][] = [
  [
    { t: 'file', p: 'f', data: 'mine' },
    { t: 'file', p: 'rootf', data: 'root owns me' },
    { t: 'file', p: 'rootf2', data: 'root owns me too' },
    { t: 'file', p: 'secret', data: 'root only', mode: 0o600 },
    { t: 'dir', p: 'ro', mode: 0o555 },
    { t: 'file', p: 'd/x', data: 'x' },
    { t: 'file', p: 'd/sub/y', data: 'y' },
  ],
  [{ t: 'file', p: 'd/low', data: 'low' }, { t: 'file', p: 'e/z', data: 'z' }],
];
const rootOwned = ['rootf', 'rootf2', 'secret'];

const ops: Op[] = [
  { op: 'write', p: 'f', data: 'changed by the user' },
  { op: 'write', p: 'rootf', data: 'nope' },
  { op: 'chmod', p: 'rootf', mode: 0o777 },
  { op: 'truncate', p: 'rootf2', len: 0 },
  { op: 'read', p: 'secret' },
  { op: 'unlink', p: 'rootf' },
  { op: 'mkdir', p: 'ro/x' },
  { op: 'write', p: 'ro/y', data: '' },
  { op: 'unlink', p: 'd/x' },
  { op: 'unlink', p: 'd/sub/y' },
  { op: 'rmdir', p: 'd/sub' },
  { op: 'mkdir', p: 'd/sub' },
  { op: 'setxattr', p: 'f', name: 'user.k', value: 'v' },
  { op: 'setxattr', p: 'f', name: 'trusted.t', value: 'v' },
  { op: 'rename', p: 'e', to: 'e2' },
  { op: 'rename', p: 'd/low', to: 'low2' },
  { op: 'symlink', p: 'd/s', target: '../f' },
  { op: 'mkfifo', p: 'd/p' },
  { op: 'link', p: 'f', to: 'd/fl' },
  { op: 'chmod', p: 'f', mode: 0o600 },
  { op: 'lchown', p: 'f', uid: 0, gid: 0 },
  { op: 'utimes', p: 'e/z', ns: '5000000000' },
  { op: 'readdir', p: 'd' },
];

test('as uid 1000 with userxattr, the engine matches a root-mounted kernel overlay', async (t) => {
  if (!requiresOverlay(t)) return;
  // The child runs the compiled engine as uid 1000: the checkout must be readable by it.
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(CHILD)}, 4)`], { uid: USER, gid: USER });
  if (probe.status !== 0) {
    t.skip(`uid ${USER} cannot read ${CHILD} (checkout not world-readable)`);
    return;
  }
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const k = prepare(join(base, 'k'), lowers, rootOwned);
  const m = join(base, 'k', 'm');
  mkdirSync(m);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `index=off,userxattr,lowerdir=${k.lowers.join(':')},upperdir=${k.upper},workdir=${k.work}`, m], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  let kResults: string[];
  let kMerged: Map<string, string>;
  try {
    kResults = runChild(join(base, 'k.json'), { kind: 'kernel', mount: m, ops });
    kMerged = snapshotMount(m);
  } finally {
    spawnSync('umount', [m]);
  }
  const e = prepare(join(base, 'e'), lowers, rootOwned);
  const eResults = runChild(join(base, 'e.json'), { kind: 'engine', ...e, ops });
  const eMerged = await snapshotEngine(new OverlayEngine({ ...e, readonly: true, userxattr: true }));

  const touched = new Set<string>(['/']);
  for (const o of ops) for (const p of 'to' in o ? [o.p, o.to] : 'p' in o ? [o.p] : []) {
    touched.add(`/${p}`);
    touched.add(dirname(`/${p}`));
  }
  assert.deepEqual(eResults, kResults);
  assert.ok(kResults.includes('E:EACCES') && kResults.includes('E:EPERM'), `scenario lost its refusals: ${kResults.join(' ')}`);
  assert.deepEqual(diffSnapshots(comparable(kMerged, touched), comparable(eMerged, touched)), []);
  assert.deepEqual(
    diffSnapshots(comparable(snapshotDir(k.upper, 'user.overlay.'), touched), comparable(snapshotDir(e.upper, 'user.overlay.'), touched)),
    [],
  );
});
