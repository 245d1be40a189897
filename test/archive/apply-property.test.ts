/**
 * Property test over random (often hostile) layers built with the tar builder: applyLayer either
 * succeeds or fails with an OverlayError, never touches anything outside the destination, and when
 * it succeeds the tar-split re-assembles the exact input bytes and the size matches a disk walk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { applyLayer, assembleLayer } from '../../src/archive/apply-layer.js';
import { OverlayError } from '../../src/errors.js';
import { requiresRoot, tempDir } from '../helpers/requires.js';
import { tarOf, type TarEntrySpec } from '../helpers/tar-builder.js';

const segment = fc.constantFrom('a', 'b', 'c', '..', '.', '.wh.a', '.wh..wh..opq', '');
const name = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/'));
const entry: fc.Arbitrary<TarEntrySpec> = fc.record({
  name: fc.oneof(name, name.map((n) => `/${n}`), name.map((n) => `./${n}`)),
  type: fc.constantFrom('file', 'dir', 'symlink', 'link', 'fifo'),
  body: fc.constantFrom('', 'x', 'hello world'),
  linkname: fc.oneof(name, fc.constant('../outside/victim'), fc.constant('/etc')),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o700),
  uid: fc.constantFrom(0, 1000),
  mtime: fc.constantFrom(0, 1700000000, -5),
});

function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      out.push(`${p} ${st.mode} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

test('random layers: applied or refused with OverlayError, never escaping, exact re-assembly', async (t) => {
  if (!requiresRoot(t)) return;
  const root = tempDir(t);
  const outside = join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'victim'), 'precious');
  const before = snapshot(outside);
  let n = 0;
  let applied = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(entry, { maxLength: 12 }), async (entries) => {
      const work = join(root, `w${n++}`);
      const dest = join(work, 'diff');
      mkdirSync(dest, { recursive: true });
      const bytes = tarOf(entries.map((e) => (e.type === 'file' ? e : { ...e, body: '' })));
      writeFileSync(join(work, 'l.tar'), bytes);
      try {
        const r = await applyLayer(join(work, 'l.tar'), dest, { tarSplitPath: join(work, 'split'), worker: n % 2 === 0 });
        applied++;
        assert.equal(r.diffId, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
        const chunks: Buffer[] = [];
        await assembleLayer(join(work, 'split'), dest, new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }));
        assert.ok(Buffer.concat(chunks).equals(bytes), 're-assembled bytes equal the input');
      } catch (e) {
        if (!(e instanceof OverlayError)) throw e;
      }
      assert.deepEqual(snapshot(outside), before);
      assert.deepEqual(readdirSync(work).sort().filter((x) => x !== 'split'), ['diff', 'l.tar']);
      rmSync(work, { recursive: true, force: true });
    }),
    { numRuns: 300, seed: 20261203 },
  );
  assert.ok(applied > 10, `enough random layers applied successfully (${applied})`);
});
