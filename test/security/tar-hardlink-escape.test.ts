import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { requiresRoot } from '../helpers/requires.js';
import { expectRefusal, sandbox } from './sandbox.js';

test('hard links whose target climbs out with .. are refused (tar-entry-link-escapes-root)', async (t) => {
  for (const linkname of ['../outside/victim', '/../outside/victim', 'a/../../outside/victim', '..']) {
    const sb = sandbox(t);
    await expectRefusal(sb, [{ name: 'a/', type: 'dir' }, { name: 'x', type: 'link', linkname }], 'EINVAL', 'tar-entry-link-escapes-root');
    assert.equal(lstatSync(join(sb.outside, 'victim')).nlink, 1);
  }
});

test('an absolute host path as hard link target resolves inside the layer (and is missing there)', async (t) => {
  const sb = sandbox(t);
  await expectRefusal(sb, [{ name: 'x', type: 'link', linkname: join(sb.outside, 'victim') }], 'ENOENT', 'hardlink-target-missing');
  assert.equal(lstatSync(join(sb.outside, 'victim')).nlink, 1);
  assert.deepEqual(readdirSync(sb.dest), []);
});

test('a hard link through a symlinked parent is refused (link(2) would follow it)', async (t) => {
  if (!requiresRoot(t)) return;
  const sb = sandbox(t);
  await expectRefusal(sb, [{ name: 's', type: 'symlink', linkname: sb.outside }, { name: 'x', type: 'link', linkname: 's/victim' }], 'EINVAL', 'tar-entry-link-through-symlink');
  assert.equal(lstatSync(join(sb.outside, 'victim')).nlink, 1);
});
