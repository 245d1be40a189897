import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { applyLayer } from '../../src/archive/apply-layer.js';
import { compressionOf, detectCompression, forceZstdFallback, openDecompressed } from '../../src/archive/compression.js';
import { OverlayError } from '../../src/errors.js';
import { requiresCommand, requiresRoot, tempDir } from '../helpers/requires.js';
import { tarOf } from '../helpers/tar-builder.js';

const TAR = tarOf([
  { name: 'etc/', type: 'dir' },
  { name: 'etc/hosts', body: '127.0.0.1 localhost\n'.repeat(200) },
  { name: 'bin/sh', type: 'symlink', linkname: 'dash' },
]);
const DIFF_ID = `sha256:${createHash('sha256').update(TAR).digest('hex')}`;

function zstd(data: Buffer): Buffer {
  const r = spawnSync('zstd', ['-q', '-c'], { input: data });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout;
}

/** A zstd skippable frame (magic 0x184D2A5?, little-endian) in front of the data frame. */
function withSkippable(z: Buffer, nibble = 0xa): Buffer {
  const skip = Buffer.alloc(8 + 6);
  skip.writeUInt32LE(0x184d2a50 + nibble, 0);
  skip.writeUInt32LE(6, 4);
  skip.write('meta!!', 8);
  return Buffer.concat([skip, z]);
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('compressionOf() goes by the magic bytes only', () => {
  assert.equal(compressionOf(Buffer.from([0x1f, 0x8b, 8, 0])), 'gzip');
  assert.equal(compressionOf(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  for (let n = 0; n < 16; n++) assert.equal(compressionOf(Buffer.from([0x50 + n, 0x2a, 0x4d, 0x18])), 'zstd');
  assert.equal(compressionOf(Buffer.from([0x60, 0x2a, 0x4d, 0x18])), 'none');
  assert.equal(compressionOf(Buffer.alloc(0)), 'none');
  assert.equal(compressionOf(Buffer.from('ustar')), 'none');
});

test('B22: gzip, zstd, zstd behind a skippable frame and plain tar all apply with the diffID of the tar', async (t) => {
  if (!requiresRoot(t) || !requiresCommand(t, 'zstd')) return;
  const root = tempDir(t);
  const blobs: Array<[string, Buffer, string]> = [
    ['gzip', gzipSync(TAR), 'gzip'],
    ['zstd', zstd(TAR), 'zstd'],
    ['zstd-skippable', withSkippable(zstd(TAR)), 'zstd'],
    ['plain', TAR, 'none'],
  ];
  for (const fallback of [false, true]) {
    forceZstdFallback(fallback);
    try {
      for (const [name, blob, compression] of blobs) {
        const file = join(root, `${name}-${fallback}.blob`);
        writeFileSync(file, blob);
        assert.equal(await detectCompression(file), compression);
        const parent = join(root, `${name}-${fallback}`);
        const dest = join(parent, 'diff');
        mkdirSync(dest, { recursive: true });
        const r = await applyLayer(file, dest);
        assert.equal(r.diffId, DIFF_ID, `${name} (fzstd fallback: ${fallback})`);
        assert.equal(r.compression, compression);
        assert.equal(r.tarSize, TAR.length);
        assert.equal(readFileSync(join(dest, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n'.repeat(200));
        assert.deepEqual(readdirSync(parent), ['diff'], 'the temp tar next to the destination is removed');
        const { stream, compression: c2 } = await openDecompressed(file);
        assert.equal(c2, compression);
        assert.ok((await readAll(stream)).equals(TAR));
      }
    } finally {
      forceZstdFallback(false);
    }
  }
});

test('applyLayer() reports a corrupt compressed layer as layer-decompress-failed and cleans up', async (t) => {
  const root = tempDir(t);
  const gz = gzipSync(TAR);
  const bad = Buffer.concat([gz.subarray(0, 20), Buffer.alloc(200, 0x55)]);
  const file = join(root, 'bad.gz');
  writeFileSync(file, bad);
  const parent = join(root, 'p');
  mkdirSync(join(parent, 'diff'), { recursive: true });
  await assert.rejects(applyLayer(file, join(parent, 'diff'), { label: 'layer sha256:bad' }), (e: unknown) => {
    assert.ok(e instanceof OverlayError);
    assert.equal(e.code, 'EINVAL');
    assert.equal(e.reason, 'layer-decompress-failed');
    assert.match(e.message, /layer sha256:bad/);
    return true;
  });
  assert.deepEqual(readdirSync(parent), ['diff']);
});

test('applyLayer() reports a corrupt zstd layer through the CLI and through fzstd', async (t) => {
  if (!requiresCommand(t, 'zstd')) return;
  const root = tempDir(t);
  const z = zstd(TAR);
  const bad = Buffer.concat([z.subarray(0, 12), Buffer.alloc(100, 0x77)]);
  const file = join(root, 'bad.zst');
  writeFileSync(file, bad);
  for (const fallback of [false, true]) {
    forceZstdFallback(fallback);
    try {
      const parent = join(root, `p-${fallback}`);
      mkdirSync(join(parent, 'diff'), { recursive: true });
      await assert.rejects(applyLayer(file, join(parent, 'diff')), (e: unknown) => e instanceof OverlayError && e.reason === 'layer-decompress-failed');
      assert.deepEqual(readdirSync(parent), ['diff']);
    } finally {
      forceZstdFallback(false);
    }
  }
});
