/**
 * The real Docker-made images, applied once for the whole file: every layer of `edge` (14) and of
 * `realbase`, each into its own dir with a tar-split. Checks: exact re-assembly (sha256 of the
 * original layer.tar), the diffIDs of the image config, Docker's directory.Size, a differential
 * against GNU tar extracting the same layers, and the Docker-made listing of realbase.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { applyLayer, assembleLayer } from '../../src/archive/apply-layer.js';
import type { ApplyLayerResult } from '../../src/archive/types.js';
import { lgetxattr, llistxattr } from '../../src/sys/libc.js';
import { isRoot, kernelOverlayWorks } from '../helpers/requires.js';
import { realImageDir, realImageLayers, realImagesDir } from '../helpers/realimages.js';

interface Applied {
  layer: string;
  dir: string;
  split: string;
  result: ApplyLayerResult;
}

const work = mkdtempSync(join(tmpdir(), 'ovl2-real-'));
const applied: Record<'edge' | 'realbase', Applied[]> = { edge: [], realbase: [] };
let prepared = false;

async function fileSha(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

before(async () => {
  if (!isRoot()) return;
  for (const image of ['edge', 'realbase'] as const) {
    for (const [i, layer] of realImageLayers(image).entries()) {
      const dir = join(work, `${image}-${i}`, 'diff');
      mkdirSync(dir, { recursive: true });
      const split = join(work, `${image}-${i}.split`);
      const result = await applyLayer(layer, dir, { tarSplitPath: split, label: `${image} layer ${i}` });
      applied[image].push({ layer, dir, split, result });
    }
  }
  prepared = true;
});

after(() => rmSync(work, { recursive: true, force: true }));

function gate(t: import('node:test').TestContext): boolean {
  if (prepared) return true;
  if (process.env['CI'] === 'true') throw new Error('CI=true and this test needs root');
  t.skip('needs root');
  return false;
}

test('real layers: diffIDs match the image config and tar-split re-assembles every layer exactly', async (t) => {
  if (!gate(t)) return;
  for (const image of ['edge', 'realbase'] as const) {
    const manifest = JSON.parse(readFileSync(join(realImageDir(image), 'manifest.json'), 'utf8')) as Array<{ Config: string }>;
    const config = JSON.parse(readFileSync(join(realImageDir(image), manifest[0]?.Config ?? ''), 'utf8')) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(applied[image].map((a) => a.result.diffId), config.rootfs.diff_ids, image);
    for (const a of applied[image]) {
      const h = createHash('sha256');
      let n = 0;
      const out = new Writable({
        write(c: Buffer, _e, cb) {
          h.update(c);
          n += c.length;
          cb();
        },
      });
      await assembleLayer(a.split, a.dir, out);
      assert.equal(`sha256:${h.digest('hex')}`, `sha256:${await fileSha(a.layer)}`, `${image} ${a.layer}`);
      assert.equal(n, a.result.tarSize);
    }
  }
});

/** Docker's directory.Size: Σ st_size of non-dir, non-empty entries, each inode once. */
function directorySize(dir: string): number {
  const seen = new Set<bigint>();
  let size = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = lstatSync(p, { bigint: true });
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.size === 0n || seen.has(st.ino)) continue;
      seen.add(st.ino);
      size += Number(st.size);
    }
  };
  walk(dir);
  return size;
}

test('real layers: the returned size equals a directory.Size walk of the layer dir', (t) => {
  if (!gate(t)) return;
  for (const a of [...applied.edge, ...applied.realbase]) assert.equal(a.result.size, directorySize(a.dir), a.layer);
});

interface Info {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  nlink: bigint;
  rdev: bigint;
  link?: string;
  sha?: string;
  xattrs: string;
}

function listTree(root: string): Map<string, Info> {
  const out = new Map<string, Info>();
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const p = join(root, r);
      const st = lstatSync(p, { bigint: true });
      const type = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : '?';
      const xattrs = llistxattr(p)
        .sort()
        .map((x) => `${x}=${lgetxattr(p, x)?.toString('hex') ?? ''}`)
        .join(',');
      const info: Info = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: type === 'd' ? 0n : st.size, mtimeNs: st.mtimeNs, nlink: type === 'd' ? 0n : st.nlink, rdev: st.rdev, xattrs };
      if (type === 'l') info.link = readlinkSync(p);
      if (type === 'f') info.sha = createHash('sha256').update(readFileSync(p)).digest('hex');
      out.set(r, info);
      if (type === 'd') walk(r);
    }
  };
  walk('');
  return out;
}

test('real layers: every entry matches GNU tar extracting the same layer (whiteouts converted)', (t) => {
  if (!gate(t)) return;
  if (spawnSync('sh', ['-c', 'command -v tar']).status !== 0) {
    if (process.env['CI'] === 'true') throw new Error('CI=true and this test needs tar');
    t.skip('needs tar');
    return;
  }
  for (const [i, a] of applied.edge.entries()) {
    const gnu = join(work, `gnu-${i}`);
    mkdirSync(gnu);
    execFileSync('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=*', '-xpf', a.layer, '-C', gnu], { stdio: ['ignore', 'ignore', 'ignore'] });
    const ours = listTree(a.dir);
    const theirs = listTree(gnu);
    const opaque = new Set<string>();
    const whiteouts = new Map<string, Info>();
    for (const [p, info] of theirs) {
      const base = p.slice(p.lastIndexOf('/') + 1);
      const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (base === '.wh..wh..opq') opaque.add(parent);
      else if (base.startsWith('.wh.')) whiteouts.set(parent === '' ? base.slice(4) : `${parent}/${base.slice(4)}`, info);
      else continue;
      theirs.delete(p);
    }
    for (const [p, info] of whiteouts) {
      const mine = ours.get(p);
      assert.ok(mine, `layer ${i}: whiteout ${p} exists`);
      assert.deepEqual([mine.type, mine.rdev, mine.uid, mine.gid], ['c', 0n, info.uid, info.gid], `layer ${i}: whiteout ${p}`);
      ours.delete(p);
    }
    for (const [p, mine] of ours) {
      const want = theirs.get(p);
      assert.ok(want, `layer ${i}: ${p} only in our extraction`);
      const isOpaque = opaque.has(p);
      const ourX = mine.xattrs.split(',').filter((x) => x !== '' && !x.startsWith('trusted.overlay.opaque=')).join(',');
      assert.equal(mine.xattrs.includes('trusted.overlay.opaque=79'), isOpaque, `layer ${i}: opaque ${p}`);
      // Documented choice: a pre-1970 mtime is stored as the epoch (GNU tar keeps it negative).
      const wantMtime = want.mtimeNs < 0n ? 0n : want.mtimeNs;
      const a1 = { ...mine, xattrs: ourX, mtimeNs: mine.mtimeNs };
      const b1 = { ...want, mtimeNs: wantMtime };
      // A dir that received our whiteout devices / GNU's .wh. files has the same mtime either way (set last).
      assert.deepEqual(a1, b1, `layer ${i}: ${p}`);
      theirs.delete(p);
    }
    assert.deepEqual([...theirs.keys()], [], `layer ${i}: entries only in GNU tar's extraction`);
  }
});

function hasPython(t: import('node:test').TestContext): boolean {
  if (spawnSync('sh', ['-c', 'command -v python3']).status === 0) return true;
  if (process.env['CI'] === 'true') throw new Error('CI=true and this test needs python3');
  t.skip('needs python3');
  return false;
}

/** tree-manifest.py of `dir` vs a Docker-made listing; the root line's mtime is Docker's dir creation time (README). */
function assertListing(dir: string, expected: string): void {
  const got = execFileSync('python3', [join(realImagesDir(), 'tree-manifest.py'), dir], { maxBuffer: 64 << 20 }).toString().trim().split('\n');
  const want = readFileSync(join(realImagesDir(), expected), 'utf8').trim().split('\n');
  const noRootMtime = (lines: string[]) => lines.map((l) => (l.startsWith('d / ') ? l.replace(/ mtime=\d+/, '') : l));
  assert.equal(got.length, want.length);
  assert.deepEqual(noRootMtime(got), noRootMtime(want));
}

test('real layers: the applied realbase layer lists exactly as Docker\'s own merged view', (t) => {
  if (!gate(t) || !hasPython(t)) return;
  assertListing(applied.realbase[0]?.dir as string, 'realbase.expected-tree.txt');
});

test('real layers: a kernel overlay of the 14 applied edge layers lists exactly as Docker\'s merged view', (t) => {
  if (!gate(t) || !hasPython(t)) return;
  if (!kernelOverlayWorks()) {
    if (process.env['CI'] === 'true') throw new Error('CI=true and this test needs a kernel overlay mount');
    t.skip('needs a kernel overlay mount');
    return;
  }
  const merged = join(work, 'merged');
  mkdirSync(merged);
  const lowers = applied.edge.map((a) => a.dir).reverse().join(':');
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lowers}`, merged]);
  try {
    // Includes /opt/perms/mtime-1969 at mtime 0: our pre-1970 policy is Docker's.
    assertListing(merged, 'edge.expected-tree.txt');
  } finally {
    execFileSync('umount', [merged]);
  }
});
