import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/fsutil/atomic.js';
import { OverlayError } from '../../src/errors.js';
import { tempDir } from '../helpers/requires.js';

test('writeFileAtomic() replaces the content with the exact mode, ignoring umask, no temp left', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'lower');
  writeFileSync(f, 'old-content-longer');
  const old = process.umask(0o077);
  try {
    await writeFileAtomic(f, 'l/ABC', 0o644);
  } finally {
    process.umask(old);
  }
  assert.equal(readFileSync(f, 'utf8'), 'l/ABC');
  assert.equal(statSync(f).mode & 0o7777, 0o644);
  await writeFileAtomic(join(d, 'committed'), '', 0o600);
  assert.equal(statSync(join(d, 'committed')).mode & 0o7777, 0o600);
  assert.deepEqual(readdirSync(d).sort(), ['committed', 'lower']);
});

test('writeFileAtomic() into a missing dir fails with ENOENT and the path', async (t) => {
  const d = tempDir(t);
  await assert.rejects(writeFileAtomic(join(d, 'nope', 'committed'), '', 0o600), (e: unknown) => e instanceof OverlayError && e.code === 'ENOENT' && e.path === join(d, 'nope', 'committed'));
});

test('writeFileAtomic() keeps the old file when the write cannot happen (target is a dir)', async (t) => {
  const d = tempDir(t);
  await assert.rejects(writeFileAtomic(d, 'x', 0o644));
  assert.deepEqual(readdirSync(d), [], 'no .tmp- file left behind');
});
