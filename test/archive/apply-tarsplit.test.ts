import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { applyLayer, assembleLayer } from '../../src/archive/apply-layer.js';
import { OverlayError } from '../../src/errors.js';
import { requiresRoot, tempDir } from '../helpers/requires.js';
import { tarOf, type TarEntrySpec } from '../helpers/tar-builder.js';

function collector(): { out: Writable; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  return { out, bytes: () => Buffer.concat(chunks) };
}

async function roundTrip(t: import('node:test').TestContext, bytes: Buffer) {
  const root = tempDir(t);
  const tar = join(root, 'l.tar');
  writeFileSync(tar, bytes);
  const dest = join(root, 'diff');
  mkdirSync(dest);
  const split = join(root, 'l.split');
  await applyLayer(tar, dest, { tarSplitPath: split });
  const c = collector();
  await assembleLayer(split, dest, c.out);
  return { root, dest, split, assembled: c.bytes() };
}

test('assembleLayer() reproduces the tar byte for byte, padding, record blocks and trailing bytes included', async (t) => {
  if (!requiresRoot(t)) return;
  const entries: TarEntrySpec[] = [
    { name: 'd/', mode: 0o700 },
    { name: 'd/a', body: 'a'.repeat(513) },
    { name: 'd/big', body: Buffer.alloc(5 << 20, 7) },
    { name: 'd/empty', body: '' },
    { name: 'd/l', type: 'link', linkname: 'd/a' },
    { name: 'd/s', type: 'symlink', linkname: 'a' },
    { name: 'd/.wh.gone' },
    { name: 'd/x', body: 'x', xattrs: { 'user.k': 'v' }, paxMtime: '1.5' },
  ];
  for (const opts of [{}, { recordSize: 10240 }, { recordSize: 10240, trailing: Buffer.from('trailing garbage') }, { end: false }]) {
    const bytes = tarOf(entries, opts);
    const { assembled } = await roundTrip(t, bytes);
    assert.ok(assembled.equals(bytes), JSON.stringify(opts));
  }
});

test('assembleLayer() is exact when entries replace earlier ones in the same layer', async (t) => {
  if (!requiresRoot(t)) return;
  const bytes = tarOf([
    { name: 'f', body: 'first version' },
    { name: 'f', body: 'second, longer version' },
    { name: 'g', body: 'file then dir' },
    { name: 'g/', type: 'dir' },
    { name: 'g/in', body: 'inside' },
    { name: 'h/', type: 'dir' },
    { name: 'h/deep/x', body: 'subtree replaced by a symlink' },
    { name: 'h', type: 'symlink', linkname: 'g' },
    { name: 'i', body: 'linked' },
    { name: 'j', type: 'link', linkname: 'i' },
    { name: 'i', body: 'i replaced, j keeps the old inode' },
  ]);
  const { assembled } = await roundTrip(t, bytes);
  assert.ok(assembled.equals(bytes));
});

test('assembleLayer() leaves the output stream open and respects backpressure', async (t) => {
  if (!requiresRoot(t)) return;
  const bytes = tarOf([{ name: 'big', body: Buffer.alloc(3 << 20, 1) }, { name: 'small', body: 's' }]);
  const root = tempDir(t);
  const tar = join(root, 'l.tar');
  writeFileSync(tar, bytes);
  mkdirSync(join(root, 'diff'));
  await applyLayer(tar, join(root, 'diff'), { tarSplitPath: join(root, 'split') });
  const pt = new PassThrough({ highWaterMark: 1024 });
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const c of pt) chunks.push(c as Buffer);
  })();
  await assembleLayer(join(root, 'split'), join(root, 'diff'), pt);
  assert.equal(pt.writableEnded, false);
  pt.end();
  await reading;
  assert.ok(Buffer.concat(chunks).equals(bytes));
});

test('assembleLayer() detects content that no longer matches the record', async (t) => {
  if (!requiresRoot(t)) return;
  const bytes = tarOf([{ name: 'a', body: 'original' }]);
  const { dest, split } = await roundTrip(t, bytes);
  appendFileSync(join(dest, 'a'), 'tampered');
  await assert.rejects(assembleLayer(split, dest, collector().out), (e: unknown) => e instanceof OverlayError && e.code === 'EIO' && e.reason === 'tar-split-content-mismatch');
});

test('assembleLayer() rejects a corrupt record', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'bad'), 'not a tar-split record');
  await assert.rejects(assembleLayer(join(root, 'bad'), root, collector().out), (e: unknown) => e instanceof OverlayError && e.code === 'EINVAL' && e.reason === 'tar-split-corrupt');
});

test('assembleLayer() keeps the bodies of entries that are not extracted (whiteouts, opaque markers)', async (t) => {
  if (!requiresRoot(t)) return;
  const bytes = tarOf([
    { name: 'd/', type: 'dir' },
    { name: 'd/.wh..wh..opq', body: 'opaque body' },
    { name: 'd/.wh.gone', body: 'x'.repeat(700) },
  ]);
  const { assembled } = await roundTrip(t, bytes);
  assert.ok(assembled.equals(bytes));
});
