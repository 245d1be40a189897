/**
 * Seeded random operation sequences through real kernel overlay mounts (two stacked stages, so the
 * lowers carry kernel-made whiteouts and opaque dirs). For each seed, overlayChanges(upper, lowers)
 * must equal changesDirs(merged, read-only merged of the lowers), and the native layer tar of the
 * upper, and the naive tar of the change list (exportChanges over the merged mount), each extracted
 * as a new top layer, must reproduce the merged view.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { changesDirs, overlayChanges } from '../../src/archive/changes.js';
import { exportChanges, writeLayerTar } from '../../src/archive/diff-layer.js';
import { MS_RDONLY, S_IFIFO, mknod, mount, umount2 } from '../../src/sys/libc.js';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { gnuLayerDir } from '../helpers/gnu-layer.js';
import { treeListing } from '../helpers/tree-listing.js';

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function kindOf(p: string): 'none' | 'file' | 'dir' | 'other' {
  try {
    const st = fs.lstatSync(p);
    return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch (e) {
    void e;
    return 'none';
  }
}

/**
 * Random operations that never leave `root`: every parent component must be a real directory (no
 * symlink is ever traversed) and content/mode operations only touch regular files (never a FIFO,
 * whose open would block, nor a symlink, which would be followed).
 */
function randomOps(root: string, rnd: () => number, count: number): void {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const path = (): string[] => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(['a', 'b', 'c']));
  const safe = (parts: string[]): string | null => {
    for (let i = 1; i < parts.length; i++) if (kindOf(join(root, ...parts.slice(0, i))) !== 'dir') return null;
    return join(root, ...parts);
  };
  const contentOps = new Set(['write', 'append', 'chmod', 'truncate']);
  for (let i = 0; i < count; i++) {
    const op = pick(['write', 'write', 'append', 'mkdir', 'mkdir', 'rm', 'rename', 'chmod', 'chown', 'symlink', 'link', 'utimes', 'fifo', 'truncate']);
    const p = safe(path());
    const q = safe(path());
    if (p === null || q === null) continue;
    const k = kindOf(p);
    if (contentOps.has(op) && k !== 'file' && !(op === 'write' && k === 'none') && !(op === 'chmod' && k === 'dir')) continue;
    try {
      switch (op) {
        case 'write': fs.writeFileSync(p, 'x'.repeat(Math.floor(rnd() * 40))); break;
        case 'append': fs.appendFileSync(p, 'y'); break;
        case 'mkdir': fs.mkdirSync(p); break;
        case 'rm': fs.rmSync(p, { recursive: true }); break;
        case 'rename': fs.renameSync(p, q); break;
        case 'chmod': fs.chmodSync(p, pick([0o700, 0o755, 0o644, 0o4755, 0o600])); break;
        case 'chown': fs.lchownSync(p, pick([0, 1000, 3000000]), pick([0, 42])); break;
        case 'symlink': fs.symlinkSync(pick(['a', '../b', '/x']), p); break;
        case 'link': fs.linkSync(p, q); break;
        case 'utimes': fs.lutimesSync(p, 1e9, pick([1e9, 1e9 + 0.5, 2e9])); break;
        case 'fifo': mknod(p, S_IFIFO | 0o644); break;
        case 'truncate': fs.truncateSync(p, 3); break;
      }
    } catch (e) {
      void e; // most random operations fail (missing parent, EXDEV, ...): that is part of the game
    }
  }
}

const OPTS = 'index=off,redirect_dir=off,metacopy=off';

test('overlayChanges() equals changesDirs() over kernel mounts for random operation sequences', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'tar')) return;
  const kinds = new Map<string, number>();
  for (let seed = 1; seed <= 24; seed++) {
    const tmp = tempDir(t);
    const d = Object.fromEntries(['l1', 'u2', 'w2', 'm2', 'u3', 'w3', 'm3', 'ro', 'nat', 'mn', 'nv', 'mv'].map((n) => {
      fs.mkdirSync(join(tmp, n));
      return [n, join(tmp, n)];
    })) as Record<string, string>;
    const rnd = prng(seed);
    randomOps(d['l1']!, rnd, 100);
    mount('overlay', d['m2']!, 'overlay', 0, `lowerdir=${d['l1']},upperdir=${d['u2']},workdir=${d['w2']},${OPTS}`);
    try { randomOps(d['m2']!, rnd, 100); } finally { umount2(d['m2']!); }
    const lowers = [d['u2']!, d['l1']!];
    mount('overlay', d['m3']!, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${d['u3']},workdir=${d['w3']},${OPTS}`);
    mount('overlay', d['ro']!, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')}`);
    try {
      randomOps(d['m3']!, rnd, 150);
      const ours = await overlayChanges(d['u3']!, lowers);
      for (const c of ours) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
      assert.deepEqual(ours, await changesDirs(d['m3']!, d['ro']!), `seed ${seed}`);
      const tarPath = join(tmp, 'n.tar');
      await writeLayerTar(d['u3']!, fs.createWriteStream(tarPath));
      await gnuLayerDir(tarPath, d['nat']!);
      mount('overlay', d['mn']!, 'overlay', MS_RDONLY, `lowerdir=${[d['nat']!, ...lowers].join(':')}`);
      try {
        assert.deepEqual(treeListing(d['mn']!), treeListing(d['m3']!), `seed ${seed}: tar round trip`);
      } finally { umount2(d['mn']!); }
      const naivePath = join(tmp, 'v.tar');
      await exportChanges(d['m3']!, ours, fs.createWriteStream(naivePath));
      await gnuLayerDir(naivePath, d['nv']!);
      mount('overlay', d['mv']!, 'overlay', MS_RDONLY, `lowerdir=${[d['nv']!, ...lowers].join(':')}`);
      try {
        assert.deepEqual(treeListing(d['mv']!), treeListing(d['m3']!), `seed ${seed}: naive tar round trip`);
      } finally { umount2(d['mv']!); }
    } finally {
      umount2(d['ro']!);
      umount2(d['m3']!);
    }
  }
  // The sequences must actually exercise every kind of change, or the comparison proves little.
  for (const k of ['A', 'C', 'D']) assert.ok((kinds.get(k) ?? 0) >= 5, `too few ${k}: ${JSON.stringify([...kinds])}`);
  t.diagnostic(JSON.stringify([...kinds]));
});
