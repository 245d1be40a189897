/**
 * The store handing out the userspace engine instead of a kernel mount (`getEngine`): the same
 * changes made through the engine on one read-write layer and through `get`'s kernel mount on a
 * twin layer give the same `changes`, the same layer tar from `diff` (entry for entry) and the
 * same upper dir; committed and base layers come out read-only, as Docker mounts them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { OverlayError } from '../../src/errors.js';
import type { OverlayEngine } from '../../src/engine/index.js';
import { requiresOverlay } from '../helpers/requires.js';
import { snapshotDir } from '../engine/harness.js';
import { newDriver } from './fixture.js';

async function tarOf(d: Awaited<ReturnType<typeof newDriver>>['driver'], id: string, parent: string, out: string): Promise<string[]> {
  const ws = createWriteStream(out);
  await d.diff(id, parent, ws);
  ws.end();
  await finished(ws);
  // Names, types, modes, owners and sizes, without times (the changes were made at different moments).
  return execFileSync('tar', ['-tvf', out, '--numeric-owner']).toString().split('\n').filter(Boolean)
    .map((l) => l.split(/\s+/)).map((f) => [f[0], f[1], f[2], ...f.slice(5)].join(' ')).sort();
}

test('getEngine: a layer changed through the engine diffs like one changed through the kernel mount', async (t) => {
  if (!requiresOverlay(t)) return;
  const { driver: d, home } = await newDriver(t);
  await d.create('base', null);
  const b = join(home, 'base', 'diff');
  mkdirSync(join(b, 'etc'));
  writeFileSync(join(b, 'etc', 'conf'), 'conf');
  mkdirSync(join(b, 'lib', 'mod'), { recursive: true });
  writeFileSync(join(b, 'lib', 'mod', 'x.so'), 'so');
  writeFileSync(join(b, 'lib', 'keep'), 'k');
  writeFileSync(join(b, 'gone'), 'g');
  await d.createReadWrite('viaKernel', 'base');
  await d.createReadWrite('viaEngine', 'base');

  const m = await d.get('viaKernel');
  try {
    writeFileSync(join(m, 'etc', 'conf'), 'changed');
    chmodSync(join(m, 'lib', 'keep'), 0o600);
    unlinkSync(join(m, 'gone'));
    rmSync(join(m, 'lib', 'mod'), { recursive: true });
    mkdirSync(join(m, 'lib', 'mod'));
    writeFileSync(join(m, 'lib', 'mod', 'new'), 'n');
    symlinkSync('etc/conf', join(m, 'conf-link'));
    renameSync(join(m, 'etc', 'conf'), join(m, 'conf'));
  } finally {
    await d.put('viaKernel');
  }
  const e: OverlayEngine = await d.getEngine('viaEngine');
  await e.writeFile('/etc/conf', 'changed');
  await e.chmod('/lib/keep', 0o600);
  await e.unlink('/gone');
  await e.rm('/lib/mod', { recursive: true });
  await e.mkdir('/lib/mod', 0o755);
  await e.writeFile('/lib/mod/new', 'n');
  await e.symlink('etc/conf', '/conf-link');
  await e.rename('/etc/conf', '/conf');

  const byPath = (cs: Array<{ kind: string; path: string }>): string[] => cs.map((c) => `${c.kind} ${c.path}`).sort();
  const kc = byPath(await d.changes('viaKernel', 'base'));
  assert.deepEqual(kc, ['A /conf', 'A /conf-link', 'C /etc', 'D /etc/conf', 'C /lib', 'C /lib/keep', 'C /lib/mod', 'D /lib/mod/x.so', 'A /lib/mod/new', 'D /gone'].sort());
  assert.deepEqual(byPath(await d.changes('viaEngine', 'base')), kc);
  const dir = join(home, '..');
  assert.deepEqual(await tarOf(d, 'viaEngine', 'base', join(dir, 'e.tar')), await tarOf(d, 'viaKernel', 'base', join(dir, 'k.tar')));
  const strip = (s: Map<string, string>): string[] => [...s].filter(([p]) => p !== '/').map(([p, v]) => `${p} ${v.replace(/ mtime=\d+/, '').replace(/origin=[0-9a-f]+\/\d+/, 'origin')}`);
  assert.deepEqual(strip(snapshotDir(join(home, 'viaEngine', 'diff'))), strip(snapshotDir(join(home, 'viaKernel', 'diff'))));

  // Base and committed layers are read-only engines.
  const baseEngine = await d.getEngine('base');
  assert.equal(await baseEngine.readFile('/etc/conf', 'utf8'), 'conf');
  await assert.rejects(baseEngine.writeFile('/x', 'x'), (err: unknown) => err instanceof OverlayError && err.code === 'EROFS');
  await d.create('child', 'viaEngine');
  const committed = await d.getEngine('viaEngine');
  assert.equal(await committed.readFile('/conf', 'utf8'), 'changed');
  await assert.rejects(committed.unlink('/conf'), (err: unknown) => err instanceof OverlayError && err.code === 'EROFS');
  const ro = await d.getEngine('viaKernel', { readonly: true });
  await assert.rejects(ro.mkdir('/n'), (err: unknown) => err instanceof OverlayError && err.code === 'EROFS');
  await assert.rejects(d.getEngine('missing'), (err: unknown) => err instanceof OverlayError && err.code === 'ENOENT');
  assert.equal(readFileSync(join(home, 'viaEngine', 'diff', 'conf'), 'utf8'), 'changed');
});
