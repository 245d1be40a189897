/**
 * How copy-up moves file data (issue 3): with FICLONE where the backing fs has reflinks (a
 * loop-mounted xfs with reflink=1: the upper file must share its extents with the lower one, as
 * the kernel's copy-up of the same file does), else copy_file_range (ext4: the syscalls of a
 * child process are traced), and never through JS buffers (no read of the lower file at all).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, dirname } from 'node:path';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { requiresCommand, requiresOverlay, tempDir } from '../helpers/requires.js';
import { makeLoopFs } from '../probe/loopfs.js';
import { OverlayEngine } from '../../src/engine/index.js';

const SIZE = 4 << 20;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), '..', 'engine', 'copyup-child.js');

function layers(base: string, data: Buffer): { lower: string; upper: string; work: string } {
  const d = { lower: join(base, 'l'), upper: join(base, 'u'), work: join(base, 'w') };
  for (const p of Object.values(d)) mkdirSync(p, { recursive: true });
  writeFileSync(join(d.lower, 'big'), data);
  return d;
}

/** FIEMAP of a file: [shared extent bytes, total extent bytes] (FIEMAP_EXTENT_SHARED = 0x2000). */
function sharedBytes(file: string): [number, number] {
  const r = spawnSync('xfs_io', ['-r', '-c', 'fiemap -v', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  let shared = 0;
  let total = 0;
  for (const m of r.stdout.matchAll(/^\s*\d+: \[(\d+)\.\.(\d+)\]:\s+\S+\s+\d+\s+(0x[0-9a-f]+)/gm)) {
    const bytes = (Number(m[2]) - Number(m[1]) + 1) * 512;
    total += bytes;
    if ((Number(m[3]) & 0x2000) !== 0) shared += bytes;
  }
  return [shared, total];
}

/** Append one byte to `/big` through an engine in a child process under strace; its trace lines. */
function tracedCopyUp(d: { lower: string; upper: string; work: string }, traceFile: string): string[] {
  const r = spawnSync('strace', ['-f', '-y', '-o', traceFile, '-e', 'trace=ioctl,copy_file_range,read,pread64,readv,preadv,preadv2,mmap',
    process.execPath, CHILD, d.lower, d.upper, d.work, '/big'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return readFileSync(traceFile, 'utf8').split('\n');
}

const FICLONE_OK = /ioctl\(\d+<[^>]*\/work\/[^>]*>, [^,]*FICLONE[^,]*, \d+\) = 0$/;

test('copy-up reflinks the data on xfs with reflink=1 (FICLONE), like the kernel', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'mkfs.xfs') || !requiresCommand(t, 'xfs_io') || !requiresCommand(t, 'strace')) return;
  const dir = tempDir(t);
  const fs = makeLoopFs(dir, 'xfs-reflink', ['mkfs.xfs', '-q', '-f', '-m', 'reflink=1'], 320);
  assert.ok(typeof fs !== 'string', fs as string);
  t.after(() => fs.close());
  const data = randomBytes(SIZE);
  const k = layers(join(fs.mnt, 'k'), data);
  const m = join(fs.mnt, 'k', 'm');
  mkdirSync(m);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `index=off,lowerdir=${k.lower},upperdir=${k.upper},workdir=${k.work}`, m], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  try {
    chmodSync(join(m, 'big'), 0o600);
  } finally {
    spawnSync('umount', [m]);
  }
  const [kShared] = sharedBytes(join(k.upper, 'big'));
  assert.equal(kShared, SIZE, 'the kernel reflinks here (the test premise)');
  const e = layers(join(fs.mnt, 'e'), data);
  // xfs also shares extents for copy_file_range, so the trace tells which call did it.
  const lines = tracedCopyUp(e, join(dir, 'strace.out'));
  assert.ok(lines.some((l) => FICLONE_OK.test(l)), `no successful FICLONE:\n${lines.filter((l) => l.includes('ioctl')).join('\n')}`);
  const lowerFile = join(e.lower, 'big');
  assert.deepEqual(lines.filter((l) => l.includes(`<${lowerFile}>`) && /copy_file_range|read|mmap/.test(l)), []);
  const [eShared, eTotal] = sharedBytes(join(e.upper, 'big'));
  assert.equal(eTotal, SIZE + 4096, 'the data plus the appended byte\'s block');
  assert.equal(eShared, SIZE, 'every extent of the copied data is shared with the lower file');
  assert.deepEqual(readFileSync(join(e.upper, 'big')), Buffer.concat([data, Buffer.from('!')]));
  const engine = new OverlayEngine({ lowers: [e.lower], upper: e.upper, work: e.work });
  // A write after the copy-up unshares only what it touches; the lower keeps its data.
  await engine.writeFile('/big', 'changed', { flag: 'r+' });
  assert.deepEqual(readFileSync(join(e.lower, 'big')), data);
});

test('without reflinks, copy-up copies with copy_file_range and never reads the lower file', async (t) => {
  if (!requiresOverlay(t) || !requiresCommand(t, 'strace')) return;
  const dir = tempDir(t);
  const data = randomBytes(SIZE);
  const e = layers(dir, data);
  const lines = tracedCopyUp(e, join(dir, 'strace.out'));
  assert.deepEqual(readFileSync(join(e.upper, 'big')), Buffer.concat([data, Buffer.from('!')]));
  const lowerFile = join(e.lower, 'big');
  const onLower = lines.filter((l) => l.includes(`<${lowerFile}>`));
  const copied = onLower
    .filter((l) => /copy_file_range\(/.test(l))
    .reduce((n, l) => n + Math.max(0, Number(/= (-?\d+)/.exec(l)?.[1] ?? 0)), 0);
  const cloned = lines.some((l) => FICLONE_OK.test(l));
  const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();
  if (cloned) {
    assert.fail(`FICLONE succeeded on ${fsType}: run this test on a temp dir without reflinks`);
  }
  assert.equal(copied, SIZE, `copy_file_range moved ${copied} bytes:\n${onLower.join('\n')}`);
  const reads = onLower.filter((l) => /^\d+\s+(read|pread64|readv|preadv2?|mmap)\(/.test(l));
  assert.deepEqual(reads, [], 'the lower file was read into the process');
  assert.equal(statSync(join(e.upper, 'big')).size, SIZE + 1);
});
