/** Copy-up details the snapshot comparison does not see: holes (case B30) and the work dir. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { closeSync, ftruncateSync, lstatSync, mkdirSync, openSync, readFileSync, writeSync, chmodSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { requiresOverlay, tempDir } from '../helpers/requires.js';
import { OverlayEngine } from '../../src/engine/index.js';
import { encodeOrigin } from '../../src/engine/origin.js';
import { lgetxattr } from '../../src/sys/libc.js';

const SIZE = 8 << 20;

function sparseLower(base: string): { lower: string; upper: string; work: string } {
  const lower = join(base, 'l');
  mkdirSync(lower, { recursive: true });
  const fd = openSync(join(lower, 'sparse'), 'w');
  writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
  writeSync(fd, Buffer.alloc(4096, 2), 0, 4096, SIZE - 4096);
  closeSync(fd);
  const tail = openSync(join(lower, 'tail'), 'w');
  writeSync(tail, Buffer.alloc(3 << 20, 3), 0, 3 << 20, 0);
  ftruncateSync(tail, SIZE);
  closeSync(tail);
  const upper = join(base, 'u');
  const work = join(base, 'w');
  mkdirSync(upper);
  mkdirSync(work);
  return { lower, upper, work };
}

test('copy-up keeps holes like the kernel does (B30)', async (t) => {
  if (!requiresOverlay(t)) return;
  const root = tempDir(t);
  const k = sparseLower(join(root, 'k'));
  const m = join(root, 'k', 'm');
  mkdirSync(m);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `index=off,lowerdir=${k.lower},upperdir=${k.upper},workdir=${k.work}`, m], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  try {
    chmodSync(join(m, 'sparse'), 0o600);
    chmodSync(join(m, 'tail'), 0o600);
  } finally {
    spawnSync('umount', [m]);
  }
  const e = sparseLower(join(root, 'e'));
  const engine = new OverlayEngine({ lowers: [e.lower], upper: e.upper, work: e.work });
  await engine.chmod('/sparse', 0o600);
  await engine.chmod('/tail', 0o600);
  for (const f of ['sparse', 'tail']) {
    const ks = lstatSync(join(k.upper, f));
    const es = lstatSync(join(e.upper, f));
    assert.equal(es.size, SIZE);
    assert.equal(es.blocks, ks.blocks, `${f}: kernel blocks ${ks.blocks}, engine blocks ${es.blocks}`);
    assert.ok(es.blocks < SIZE / 512 / 2, `${f}: holes filled: ${es.blocks} blocks`);
    assert.deepEqual(readFileSync(join(e.upper, f)), readFileSync(join(k.upper, f)));
  }
});

test('overlay.origin is byte-identical to the kernel\'s for the same lower object', async (t) => {
  if (!requiresOverlay(t)) return;
  const root = tempDir(t);
  const k = sparseLower(join(root, 'k'));
  mkdirSync(join(k.lower, 'dir'));
  const m = join(root, 'k', 'm');
  mkdirSync(m);
  const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `index=off,lowerdir=${k.lower},upperdir=${k.upper},workdir=${k.work}`, m], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  try {
    chmodSync(join(m, 'tail'), 0o600);
    chmodSync(join(m, 'dir'), 0o700);
  } finally {
    spawnSync('umount', [m]);
  }
  for (const f of ['tail', 'dir']) {
    const kernelOrigin = lgetxattr(join(k.upper, f), 'trusted.overlay.origin');
    assert.ok(kernelOrigin !== null, `kernel wrote no origin on ${f}`);
    assert.deepEqual(encodeOrigin(join(k.lower, f), k.lower), kernelOrigin);
  }
});
