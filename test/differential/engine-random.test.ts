/**
 * Property-based differential test: random op sequences (fast-check, fixed seed) over a fixed
 * three-layer stack run through the kernel overlay mount and through OverlayEngine; results,
 * errnos, merged views and uppers must be identical. Each sequence costs one mount.
 * CI default: ENGINE_FC_RUNS=800 sequences for the default options, scaled per variant (x1 redirect_dir=on,
 * x0.25 userxattr, x0.25 read-only, x0.5 metacopy=on, x0.5 + x0.25 over lowers with redirects and
 * xwhiteouts) = 3000 sequences, about 2 minutes on a 2-core VM. ENGINE_FC_SEED picks another seed,
 * ENGINE_FC_MAXLEN the longest sequence (default 12 ops).
 * Longer run, e.g.:
 *   ENGINE_FC_RUNS=5000 ENGINE_FC_SEED=7 node --test dist/test/differential/engine-random.test.js
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { differential, type LayerEntry, type Op } from '../engine/harness.js';

const RUNS = Number(process.env['ENGINE_FC_RUNS'] ?? 800);
const SEED = Number(process.env['ENGINE_FC_SEED'] ?? 20261203);
const MAXLEN = Number(process.env['ENGINE_FC_MAXLEN'] ?? 12);

const lowers: LayerEntry[][] = [
  [
    { t: 'file', p: 'a/b', data: 'top-ab' },
    { t: 'whiteout', p: 'c/a' },
    { t: 'dir', p: 'd', opaque: 'y' },
    { t: 'file', p: 'd/c', data: 'opaque-child' },
    { t: 'symlink', p: 'b/d', target: '../a' },
  ],
  [
    { t: 'file', p: 'a/c', data: 'mid-ac', mode: 0o444 },
    { t: 'file', p: 'b/a', data: 'mid-ba' },
    { t: 'symlink', p: 'c/b', target: 'd' },
    { t: 'file', p: 'd', data: 'file-under-dir' },
  ],
  [
    { t: 'file', p: 'a/a', data: 'low-aa', xattrs: { 'user.k': 'v' } },
    { t: 'file', p: 'c/a', data: 'hidden' },
    { t: 'file', p: 'c/c', data: 'low-cc' },
    { t: 'file', p: 'd/a', data: 'hidden-by-opaque' },
    { t: 'dir', p: 'b/c' },
  ],
];

function opsOver(names: string[]): fc.Arbitrary<Op> {
  const name = fc.constantFrom(...names);
  const plain = fc.oneof(name, fc.tuple(name, name).map(([x, y]) => `${x}/${y}`), fc.tuple(name, name, name).map(([x, y, z]) => `${x}/${y}/${z}`));
  // Now and then a trailing slash: the errno rules for it differ per call.
  const path = fc.oneof({ arbitrary: plain, weight: 9 }, { arbitrary: plain.map((p) => `${p}/`), weight: 1 });
  const data = fc.constantFrom('', 'x', 'hello', 'another');
  const slot = fc.constantFrom(1, 2);

  return fc.oneof(
    fc.record({ op: fc.constant('write' as const), p: path, data }),
    fc.record({ op: fc.constant('append' as const), p: path, data }),
    fc.record({ op: fc.constant('mkdir' as const), p: path }),
    fc.record({ op: fc.constant('rmdir' as const), p: path }),
    fc.record({ op: fc.constant('unlink' as const), p: path }),
    fc.record({ op: fc.constant('rename' as const), p: path, to: path }),
    // '..' must not leave the root: on the kernel mount it would reach the host (the engine clamps).
    fc.record({ op: fc.constant('symlink' as const), p: path, target: fc.constantFrom('a', '../b', 'c/a', 'b/../a', 'nowhere') })
      .filter((o) => !(o.target.startsWith('..') && !o.p.includes('/'))),
    fc.record({ op: fc.constant('link' as const), p: path, to: path }),
    fc.record({ op: fc.constant('chmod' as const), p: path, mode: fc.constantFrom(0o600, 0o755, 0o1777) }),
    fc.record({ op: fc.constant('lchown' as const), p: path, uid: fc.constantFrom(0, 1000), gid: fc.constantFrom(0, 100) }),
    fc.record({ op: fc.constant('chown' as const), p: path, uid: fc.constantFrom(0, 1000), gid: fc.constantFrom(0, 100) }),
    fc.record({ op: fc.constant('utimes' as const), p: path, ns: fc.constantFrom('0', '1234567890123456789', '-1000000001') }),
    fc.record({ op: fc.constant('lstat' as const), p: path }),
    fc.record({ op: fc.constant('truncate' as const), p: path, len: fc.constantFrom(0, 2) }),
    fc.record({ op: fc.constant('setxattr' as const), p: path, name: fc.constantFrom('user.k', 'trusted.t'), value: fc.constantFrom('1', 'v') }),
    fc.record({ op: fc.constant('removexattr' as const), p: path, name: fc.constantFrom('user.k', 'trusted.t') }),
    fc.record({ op: fc.constant('mkfifo' as const), p: path }),
    fc.record({ op: fc.constant('mknod' as const), p: path, kind: fc.constantFrom('chr' as const, 'blk' as const), major: fc.constantFrom(0, 1), minor: fc.constantFrom(0, 3) }),
    fc.record({ op: fc.constant('openrw' as const), p: path }),
    fc.record({ op: fc.constant('read' as const), p: path }),
    fc.record({ op: fc.constant('readdir' as const), p: path }),
    fc.record({ op: fc.constant('stat' as const), p: path }),
    fc.record({ op: fc.constant('readlink' as const), p: path }),
    fc.record({ op: fc.constant('access' as const), p: path, mode: fc.constantFrom(0, 2, 4, 1) }),
    fc.record({ op: fc.constant('getxattr' as const), p: path, name: fc.constantFrom('user.k', 'trusted.t', 'trusted.overlay.opaque') }),
    fc.record({ op: fc.constant('listxattr' as const), p: path }),
    fc.record({ op: fc.constant('statfs' as const), p: path }),
    // Open handles that stay open across later ops (copy-ups, renames, unlinks of their file).
    fc.record({ op: fc.constant('hopen' as const), h: slot, p: path, flags: fc.constantFrom('r' as const, 'r+' as const, 'a' as const) }),
    fc.record({ op: fc.constant('hread' as const), h: slot }),
    fc.record({ op: fc.constant('hwrite' as const), h: slot, data: fc.constantFrom('W', 'write!'), at: fc.constantFrom(0, 3) }),
    fc.record({ op: fc.constant('htruncate' as const), h: slot, len: fc.constantFrom(0, 1) }),
    fc.record({ op: fc.constant('hstat' as const), h: slot }),
    fc.record({ op: fc.constant('hclose' as const), h: slot }),
  );
}

/** Lowers as earlier mounts leave them: a renamed dir (absolute and relative redirects), xwhiteouts. */
const lowersWithRedirects: LayerEntry[][] = [
  [
    { t: 'dir', p: 'r', xattrs: { 'trusted.overlay.redirect': '/c' } },
    { t: 'file', p: 'r/b', data: 'rb' },
    { t: 'whiteout', p: 'c' },
    { t: 'dir', p: 'x', opaque: 'x' },
    { t: 'xwhiteout', p: 'x/a' },
    { t: 'file', p: 'x/b', data: 'xb' },
    { t: 'dir', p: 'x/r', xattrs: { 'trusted.overlay.redirect': 'c' } },
    { t: 'whiteout', p: 'x/c' },
  ],
  [
    { t: 'file', p: 'c/a', data: 'ca' },
    { t: 'file', p: 'c/b', data: 'cb-low' },
    { t: 'file', p: 'x/a', data: 'xa-low' },
    { t: 'file', p: 'x/c/a', data: 'xca' },
    { t: 'file', p: 'a/a', data: 'aa' },
  ],
];

const variants: Array<{ label: string; redirectDir?: boolean; userxattr?: boolean; readonly?: boolean; metacopy?: boolean; share: number; lowers?: LayerEntry[][]; names?: string[] }> = [
  { label: 'default options', share: 1 },
  { label: 'redirect_dir=on', redirectDir: true, share: 1 },
  { label: 'userxattr', userxattr: true, share: 0.25 },
  { label: 'read-only (no upper)', readonly: true, share: 0.25 },
  { label: 'metacopy=on', metacopy: true, share: 0.5 },
  { label: 'lowers with redirects and xwhiteouts', share: 0.5, lowers: lowersWithRedirects, names: ['a', 'b', 'c', 'r', 'x'] },
  { label: 'lowers with redirects and xwhiteouts, redirect_dir=on', redirectDir: true, share: 0.25, lowers: lowersWithRedirects, names: ['a', 'b', 'c', 'r', 'x'] },
];

variants.forEach((v, vi) => {
  test(`random op sequences: engine and kernel agree (${v.label})`, async (t) => {
    if (!requiresOverlay(t)) return;
    const root = tempDir(t);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opsOver(v.names ?? ['a', 'b', 'c', 'd']), { minLength: 1, maxLength: MAXLEN }), async (ops) => {
        const dir = join(root, String(n++));
        const diffs = await differential(dir, { lowers: v.lowers ?? lowers, ops, redirectDir: v.redirectDir, userxattr: v.userxattr, readonly: v.readonly, metacopy: v.metacopy });
        assert.deepEqual(diffs, [], JSON.stringify(ops));
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: Math.max(1, Math.round(RUNS * v.share)), seed: SEED + vi, endOnFailure: true, includeErrorInReport: true },
    );
  });
});
